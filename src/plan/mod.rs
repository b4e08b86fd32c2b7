//! [`RunPlan`]: the validated, fully resolved description of one run. Built once from a loaded
//! scenario; every default is filled in and every impossible combination rejected here, so the
//! modules that run the lab only ever see typed values.
//!
//! The builders, one per part of the scenario, each own their keys' defaults and checks:
//! `server` (accept policy, backlog, port, response size), `client` (arrivals, counts,
//! durations, timeouts, request size), `link` (the link and the flood), `expectations` (the
//! `[expect]` table), `sizing` (the `[plan]` table: targets, range, repetitions), and `values`,
//! the small parsers they share.

mod client;
mod expectations;
mod link;
pub mod preflight;
mod program;
pub mod queues;
pub mod retries;
mod server;
pub mod sizing;
mod values;

use std::collections::BTreeMap;
use std::time::Duration;

use crate::error::Failure;
use crate::family::Family;
use crate::scenario::expect::Expectation;
use crate::scenario::{Loaded, ScenarioFile};
use values::{bad, duration};

/// How the deliberately slow server takes connections off the accept queue.
#[derive(Debug, Clone, PartialEq)]
pub enum AcceptPolicy {
    /// Accept and serve as fast as possible (a healthy server).
    Fast,
    /// Never call `accept()`: the accept queue fills and stays full.
    Never,
    /// `per_sec` accepts per second while connections are waiting (credit is kept across
    /// scheduling stalls, dropped when the accept queue is empty).
    Rate { per_sec: f64 },
    /// Accept fast, except inside these windows (from the storm's time zero): a GC pause or a
    /// blocked event loop. After each window the queue drains. A window opens up to 2 ms early
    /// (Tokio timers tick in milliseconds), never late.
    Pause { windows: Vec<(Duration, Duration)> },
    /// A pool of `count` workers, each holding a connection for `service` before answering; the
    /// accept loop takes a connection only when a worker is free.
    Workers { count: u32, service: Duration },
}

/// How much earlier than its start a pause window may begin: Tokio timers fire up to a tick
/// (1 ms) late, so the server stops accepting this much early rather than letting in connections
/// that arrive at the window's start. The model counts the window from here too.
pub const PAUSE_OPENS_EARLY: Duration = Duration::from_millis(2);

/// When connection attempts start, as an absolute schedule from time zero.
#[derive(Debug, Clone, PartialEq)]
pub enum Arrival {
    /// Evenly spaced at `rate` per second.
    Constant { rate: f64 },
    /// Exponential gaps with mean 1/`rate` (seeded, so reruns are identical).
    Poisson { rate: f64 },
    /// `size` attempts at once, repeated every `interval` if given.
    Burst {
        size: u64,
        interval: Option<Duration>,
    },
}

pub use crate::topo::LinkPlan;

/// Raw SYNs from spoofed sources in [`crate::topo::link::FLOOD_NET`], sent from the client
/// namespace at a steady rate alongside the storm.
#[derive(Debug, Clone, PartialEq)]
pub struct FloodPlan {
    pub rate: f64,
    pub count: u64,
    /// From the storm's time zero.
    pub start: Duration,
}

pub use crate::wire::Talk;

/// A program of the user's own, run as the server instead of the lab's (`server.command`).
#[derive(Debug, Clone, PartialEq)]
pub struct ProgramPlan {
    /// argv with `{port}` and `{scenario_dir}` filled in; `{addr}` is filled in when the lab
    /// has its address.
    pub argv: Vec<String>,
    /// Added to the lab's own environment.
    pub env: BTreeMap<String, String>,
    pub cwd: std::path::PathBuf,
    /// How long it may take to listen on the port.
    pub startup_timeout: Duration,
}

#[derive(Debug, Clone)]
pub struct ServerPlan {
    /// The exact value passed to `listen()`; -1 and values above somaxconn included.
    pub backlog: i32,
    pub accept: AcceptPolicy,
    pub port: u16,
    pub response_bytes: u32,
    /// Whether the server waits for a request or greets first.
    pub talk: Talk,
    pub sysctl: BTreeMap<String, String>,
    /// A program of the user's own instead of the lab's server (then `backlog` and `accept`
    /// are unused: the program decides, and the run reports what it did).
    pub program: Option<ProgramPlan>,
}

#[derive(Debug, Clone)]
pub struct ClientPlan {
    pub arrival: Arrival,
    /// Upper bound on attempts.
    pub connections: u64,
    /// Upper bound on the arrival window: no attempt is scheduled later than this.
    pub duration: Duration,
    pub connect_timeout: Duration,
    pub response_timeout: Duration,
    pub seed: u64,
    pub talk: Talk,
    pub sysctl: BTreeMap<String, String>,
    /// The most connections open at once (`client.max_in_flight`); by default, and at most,
    /// what the open-files limit allows ([`crate::client::in_flight_budget`]).
    pub max_in_flight: Option<u64>,
    /// How each connection ends once its response is in (`client.close`).
    pub close: crate::wire::Close,
    /// A program of the user's own instead of the lab's storm (`client.command`): it runs for
    /// at most `duration`, and the run has no per-connection records.
    pub program: Option<ProgramPlan>,
}

#[derive(Debug, Clone)]
pub struct RunPlan {
    pub name: String,
    pub description: String,
    pub incident: String,
    /// The `--set`s that make this run differ from the scenario as written (`key=value`).
    pub overrides: Vec<String>,
    /// The TOML actually run (file plus `--set`), saved with the results.
    pub scenario_text: String,
    pub origin: String,
    /// The address family of the lab's hosts (`family`).
    pub family: Family,
    pub sample_interval: Duration,
    /// Whether to record drop reasons from tracefs (`drops.csv`).
    pub trace_drops: bool,
    /// After the last connection: the longest wait for the link to empty plus one RTT, so the
    /// counters' last reading includes what the storm's last packets caused.
    pub settle: Duration,
    pub server: ServerPlan,
    pub client: ClientPlan,
    pub link: LinkPlan,
    pub flood: Option<FloodPlan>,
    pub expect: Vec<Expectation>,
    /// What `backlog-lab plan` sizes for (the `[plan]` table).
    pub sizing: sizing::SizingPlan,
}

/// Client-namespace sysctls applied unless the scenario sets them: a wide port range and TIME_WAIT
/// reuse, so that storms of 100k short connections are not limited by local ports.
pub const CLIENT_SYSCTL_DEFAULTS: &[(&str, &str)] = &[
    ("net.ipv4.ip_local_port_range", "1024 65535"),
    ("net.ipv4.tcp_tw_reuse", "1"),
];

const MAX_CONNECTIONS: u64 = 2_000_000;
const MAX_DURATION: Duration = Duration::from_secs(600);
const MAX_RESPONSE_BYTES: u32 = 1 << 20;
const MAX_REQUEST_BYTES: u32 = 1 << 20;
const MAX_RTT: Duration = Duration::from_secs(10);
const MAX_FLOOD_COUNT: u64 = 10_000_000;

impl RunPlan {
    /// Checks the scenario and fills in every default. The checks run in this order, so that when
    /// several settings are wrong the same one is always reported: the family, the accept policy, the arrivals,
    /// the client's counts and timeouts, the sample interval, the server's response size and port,
    /// the single-combination check, the link, the flood, the request size, the expectations, the
    /// `[plan]` table, and last the server's then the client's sysctls.
    pub fn from_scenario(loaded: &Loaded) -> Result<RunPlan, Failure> {
        let f = &loaded.file;
        let family = family(f)?;
        let accept = server::accept_policy(&f.server)?;
        let arrival = client::arrival(&f.client)?;
        let bounds = client::bounds(&f.client)?;
        let sample_interval = sample_interval(f)?;
        let listen = server::listen(&f.server)?;
        single_combination(f)?;
        let link = link::link_plan(&f.link, client::seed(&f.client))?;
        let settle = settle(f, &link)?;
        let flood = f.flood.as_ref().map(link::flood_plan).transpose()?;
        let talk = client::talk(&f.client)?;
        let expect = expectations::parse(&f.expect)?;
        let sizing = sizing::plan(&f.plan)?;
        let program = server::program(&f.server, &loaded.origin)?;
        let mut server = server::plan(&f.server, accept, listen, talk.clone())?;
        server.program = program;
        let mut client = client::plan(&f.client, arrival, bounds, talk)?;
        client.program = client::program(&f.client, &f.server, &loaded.origin, &expect)?;
        Ok(RunPlan {
            name: f.name.clone().unwrap_or_else(|| loaded.stem.clone()),
            description: f.description.clone().unwrap_or_default(),
            incident: f.incident.clone().unwrap_or_default(),
            overrides: loaded.overrides.clone(),
            scenario_text: loaded.text.clone(),
            origin: loaded.origin.clone(),
            family,
            sample_interval,
            trace_drops: f.trace_drops.unwrap_or(true),
            settle,
            server,
            client,
            link,
            flood,
            expect,
            sizing,
        })
    }
}

/// `family`: `ipv4` unless set.
fn family(f: &ScenarioFile) -> Result<Family, Failure> {
    match &f.family {
        None => Ok(Family::default()),
        Some(name) => Family::parse(name).ok_or_else(|| {
            bad(format!(
                "family = {name:?}: the lab speaks {} (e.g. --set family=ipv6, or \
                 --set family=ipv4,ipv6 to compare the two)",
                crate::family::FAMILY_NAMES.join(" or ")
            ))
        }),
    }
}

/// `sample_interval`: from 1 ms to 10 s, 10 ms unless set.
fn sample_interval(f: &ScenarioFile) -> Result<Duration, Failure> {
    let sample_interval = duration(
        "sample_interval",
        &f.sample_interval,
        Duration::from_millis(10),
    )?;
    if !(Duration::from_millis(1)..=Duration::from_secs(10)).contains(&sample_interval) {
        return Err(bad("sample_interval: from 1ms to 10s".into()));
    }
    Ok(sample_interval)
}

/// `settle`: up to 60 s; by default 2 × RTT + 1 s on an emulated link (packets held for half an
/// RTT each way, and the answers to them), nothing on veth, where nothing is ever held.
fn settle(f: &ScenarioFile, link: &LinkPlan) -> Result<Duration, Failure> {
    let default = if link.is_ideal() {
        Duration::ZERO
    } else {
        link.rtt * 2 + Duration::from_secs(1)
    };
    let settle = duration("settle", &f.settle, default)?;
    if settle > Duration::from_secs(60) {
        return Err(bad("settle: at most 60s".into()));
    }
    Ok(settle)
}

/// A comparison runs as several plans (one per combination), never as one.
fn single_combination(f: &ScenarioFile) -> Result<(), Failure> {
    if !f.matrix.is_empty() || !f.case.is_empty() {
        return Err(bad(
            "this scenario is a comparison ([matrix] or [[case]]): it runs as several plans; \
             use `backlog-lab run`, or pick one combination with --set"
                .into(),
        ));
    }
    Ok(())
}
