//! One run, start to end: plan → topology → server → sampler → storm → record → teardown.
//!
//! Data is written before anything is drawn or judged, and the topology is dropped (which frees
//! both namespaces) on every path out of [`run`], errors included.

use std::collections::BTreeMap;
use std::io::{IsTerminal, Write};
use std::net::SocketAddrV4;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use serde::Serialize;

use crate::client::flood::{Flood, FloodStats};
use crate::client::{self, AttemptSpec, Storm, StormResult};
use crate::counters::{
    CounterFiles, ListenDiag, Probes, QueueSample, Sample, Sampler, SamplingStats, Series, Snapshot,
};
use crate::drops::{self, DropStats};
use crate::error::Failure;
use crate::export::{self, CounterPair};
use crate::plan::{AcceptPolicy, Arrival, RunPlan};
use crate::record::summary::{self, Listen, Summary};
use crate::report;
use crate::server::Server;
use crate::topo::{link, sysctl, LinkStats, Topology};

/// How the result is shown; what is measured does not depend on it.
#[derive(Debug, Clone, Default)]
pub struct Display {
    /// A progress line on stderr while the storm runs (only if stderr is a terminal).
    pub progress: bool,
    /// What goes to stdout at the end.
    pub print: Print,
}

/// What a run prints on stdout when it ends.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub enum Print {
    /// The summary table and the verdict.
    #[default]
    Table,
    /// `summary.json`.
    Json,
    Nothing,
}

/// What `backlog-lab run` returns to `main`.
pub struct RunResult {
    pub dir: PathBuf,
    pub summary: Summary,
}

impl RunResult {
    /// 0 when every expectation held, 1 when one failed, 130 when interrupted.
    pub fn exit_code(&self) -> u8 {
        if self.summary.interrupted {
            130
        } else if self.summary.expectations.iter().all(|e| e.pass) {
            0
        } else {
            1
        }
    }
}

/// Facts about where a run happened, saved as `environment.json`.
#[derive(Debug, Serialize)]
struct Environment {
    tool: String,
    kernel_release: String,
    started_at: String,
    scenario: String,
    server_address: String,
    client_address: String,
    namespace_inodes: BTreeMap<&'static str, u64>,
    /// `ulimit -n` during the run: the most connections that can be in flight at once.
    rlimit_nofile: u64,
    sysctl: BTreeMap<String, BTreeMap<String, String>>,
    /// The host namespace's own values of the same keys, read (never written) for comparison.
    host_sysctl: BTreeMap<String, String>,
}

/// The lab standing, before any traffic: both hosts with their sysctls read back, the server
/// listening (connections queue but nothing is accepted until [`Server::begin`]), and the
/// counter and queue probes open. Dropping it frees everything.
pub struct Lab {
    pub topo: Topology,
    pub server: Server,
    pub probes: Probes,
    pub target: SocketAddrV4,
    /// The listener's queue right after `listen()`: its `accept_queue_limit` is the kernel's clamp.
    pub initial_queue: QueueSample,
}

impl Lab {
    /// Builds the hosts, starts the server and opens the probes. The namespaces exist only as
    /// descriptors, so a failure here (a sysctl the kernel refuses) leaves nothing behind.
    pub fn stand_up(plan: &RunPlan) -> Result<Lab, Failure> {
        let topo = Topology::build(&plan.server.sysctl, &plan.client.sysctl, &plan.link)?;
        let target = SocketAddrV4::new(link::SERVER_ADDR, plan.server.port);
        let server = Server::start(&topo.server, target, &plan.server)?;
        let mut probes = Probes {
            server: CounterFiles::open(&topo.server)?,
            client: CounterFiles::open(&topo.client)?,
            diag: ListenDiag::open(&topo.server, plan.server.port)?,
        };
        let initial_queue = probes
            .diag
            .sample()
            .map_err(|e| Failure::environment(format!("sock_diag: {e}")))?;
        Ok(Lab {
            topo,
            server,
            probes,
            target,
            initial_queue,
        })
    }

    fn sysctls(&self) -> BTreeMap<String, BTreeMap<String, String>> {
        BTreeMap::from([
            ("server".to_string(), self.topo.server_sysctl.clone()),
            ("client".to_string(), self.topo.client_sysctl.clone()),
        ])
    }
}

/// Runs `plan`, writes its result folder, prints the summary, and returns it.
pub fn run(plan: &RunPlan, out: Option<&Path>, display: &Display) -> anyhow::Result<RunResult> {
    let nofile = raise_nofile_limit();
    let started_at = humantime::format_rfc3339_seconds(std::time::SystemTime::now()).to_string();
    let lab = Lab::stand_up(plan)?;
    let sysctls = lab.sysctls();
    let Lab {
        mut topo,
        mut server,
        mut probes,
        target,
        initial_queue,
    } = lab;
    // Only now that the lab stands is the result folder created.
    let dir = export::create_dir(out, &plan.name)?;
    std::fs::write(dir.join("scenario.toml"), &plan.scenario_text)?;
    let env = Environment {
        tool: format!("backlog-lab {}", env!("CARGO_PKG_VERSION")),
        kernel_release: nix::sys::utsname::uname()
            .map(|u| u.release().to_string_lossy().into_owned())
            .unwrap_or_default(),
        started_at,
        scenario: plan.origin.clone(),
        server_address: target.to_string(),
        client_address: link::CLIENT_ADDR.to_string(),
        namespace_inodes: BTreeMap::from([
            ("server", topo.server.inode()),
            ("client", topo.client.inode()),
        ]),
        rlimit_nofile: nofile,
        sysctl: sysctls.clone(),
        host_sysctl: sysctl::read_host(),
    };
    export::write_json(&dir, "environment.json", &env)?;

    // Tracing starts before the first counter reading and stops after the last, so every event
    // the counters saw is in the trace.
    let tracing = drops::Recording::start(target, plan.trace_drops);
    // Time zero comes after every setup step, so the first arrivals are not a catch-up burst.
    let t0 = Instant::now() + Duration::from_millis(20);
    let t0_mono_ns = drops::monotonic_ns(t0);
    tracing.open_window();
    let before = probes.sample(t0)?;
    let ring_drops_before = topo.ring_drops();
    server.begin(t0);
    let sampler = Sampler::start(probes, t0, plan.sample_interval);
    let spec = AttemptSpec {
        target,
        connect_timeout: plan.client.connect_timeout,
        response_timeout: plan.client.response_timeout,
        t0,
        request: client::attempt::request(&plan.client.talk).into(),
    };
    let flood = plan
        .flood
        .as_ref()
        .map(|f| Flood::start(&topo.client, f, target, t0, plan.client.seed))
        .transpose()?;
    let storm = Storm::start(&topo.client, &plan.client, spec)?;
    let bar = report::progress_bar(
        storm.progress.clone(),
        !display.progress || !std::io::stderr().is_terminal(),
    );
    while !storm.is_finished() {
        bar.tick();
        std::thread::sleep(Duration::from_millis(100));
    }
    bar.finish();
    let storm = storm.join()?;
    let flood = flood.map(Flood::stop);
    // The connections first: whatever fails after this, they are on disk.
    export::write_connections(&dir, &storm.records)?;
    let (mut probes, series, sampling) = sampler.stop();
    tracing.close_window();
    let after = match probes.sample(t0) {
        Ok(a) => a,
        Err(e) => {
            eprintln!("warning: final counter reading failed ({e}); using the last sample");
            match (series.last_snapshots(), series.points.last()) {
                (Some((server, client)), Some(p)) => Sample {
                    t_us: p.t_us,
                    server,
                    client,
                    queue: p.queue,
                },
                _ => before.clone(),
            }
        }
    };
    let mut trace = tracing.stop();
    let server_stats = server.stop();
    let link = topo.stop_link(ring_drops_before);
    drop(probes);
    drop(topo);

    let pairs = [
        CounterPair {
            namespace: "server",
            before: &before.server,
            after: &after.server,
        },
        CounterPair {
            namespace: "client",
            before: &before.client,
            after: &after.client,
        },
    ];
    export::write_counters(&dir, &pairs)?;
    export::write_timeseries(&dir, &series, &pairs[0], &pairs[1])?;
    let drop_rows = drops::attribute(&mut trace, &storm.records, t0_mono_ns);
    if trace.unavailable.is_none() {
        export::write_drops(&dir, &drop_rows)?;
    }

    let measured = Measured {
        storm: &storm,
        before: &before,
        after: &after,
        series: &series,
        sampling,
        link,
        flood,
        drops: DropStats::of(&trace, &drop_rows),
        reasons_known: &trace.reasons_known,
    };
    let s = summarize(plan, &measured, initial_queue, server_stats, sysctls)?;
    export::write_summary(&dir, &s)?;
    // Pictures last: the data above is complete, so a drawing failure only warns.
    crate::postmortem::render_after_run(&dir);

    let mut stdout = std::io::stdout().lock();
    match display.print {
        Print::Json => writeln!(stdout, "{}", serde_json::to_string_pretty(&s)?)?,
        Print::Table => report::print(&mut stdout, plan, &s, &dir)?,
        Print::Nothing => {}
    }
    Ok(RunResult { dir, summary: s })
}

/// Everything a storm produced, as recorded.
struct Measured<'a> {
    storm: &'a StormResult,
    before: &'a Sample,
    after: &'a Sample,
    series: &'a Series,
    sampling: SamplingStats,
    link: Option<LinkStats>,
    flood: Option<FloodStats>,
    drops: DropStats,
    /// Drop reasons this kernel names, for expectations on `drops.by_reason.*`.
    reasons_known: &'a std::collections::BTreeSet<String>,
}

/// The summary of a run, with its warnings and the verdict on each expectation.
fn summarize(
    plan: &RunPlan,
    m: &Measured,
    initial_queue: QueueSample,
    server: crate::server::ServerStats,
    sysctl: BTreeMap<String, BTreeMap<String, String>>,
) -> anyhow::Result<Summary> {
    let records = &m.storm.records;
    let (connect, connect_from_start, response) = summary::latencies(records);
    let queue = m
        .series
        .points
        .iter()
        .map(|p| p.queue)
        .chain([m.after.queue]);
    let mut s = Summary {
        scenario: plan.name.clone(),
        connections: records.len() as u64,
        planned: m.storm.planned,
        interrupted: m.storm.interrupted,
        abandoned: m.storm.abandoned,
        duration_s: records.iter().map(|r| r.finished_us).max().unwrap_or(0) as f64 / 1e6,
        outcomes: summary::outcome_counts(records),
        connect_latency_ms: connect,
        connect_latency_from_start_ms: connect_from_start,
        response_latency_ms: response,
        by_outcome: summary::by_outcome(records),
        schedule: summary::schedule(records),
        retransmits: summary::retransmits(records),
        counters: BTreeMap::from([
            (
                "server".to_string(),
                Snapshot::moved(&m.before.server, &m.after.server),
            ),
            (
                "client".to_string(),
                Snapshot::moved(&m.before.client, &m.after.client),
            ),
        ]),
        sysctl,
        listen: Listen {
            backlog_requested: plan.server.backlog,
            accept_queue_limit: initial_queue.accept_queue_limit,
            accept_queue_capacity: initial_queue.accept_queue_limit.map(|l| l + 1),
            accept_queue_max_seen: queue.clone().map(|q| q.accept_queue).max().unwrap_or(0),
            syn_recv_max_seen: queue.map(|q| q.syn_recv).max().unwrap_or(0),
        },
        server,
        sampling: m.sampling.clone(),
        link: m.link.clone(),
        flood: m.flood.clone(),
        drops: m.drops.clone(),
        warnings: Vec::new(),
        expectations: Vec::new(),
    };
    let overflow_expected = !matches!(plan.server.accept, AcceptPolicy::Fast);
    let bursty = matches!(plan.client.arrival, Arrival::Burst { .. });
    s.warnings = summary::warnings(&s, records, overflow_expected, bursty);
    // Expectations on the trace cannot be judged when nothing was traced: they are set aside
    // with a warning rather than failed (the run's other evidence still counts).
    let (judged, unjudged): (Vec<_>, Vec<_>) = plan
        .expect
        .iter()
        .partition(|e| s.drops.recorded || !e.reads("drops."));
    if !unjudged.is_empty() {
        s.warnings.push(format!(
            "{} expectation(s) on drops.* not checked, because drop reasons were not recorded ({}): {}",
            unjudged.len(),
            s.drops.unavailable.as_deref().unwrap_or("unknown"),
            unjudged
                .iter()
                .map(|e| e.text.as_str())
                .collect::<Vec<_>>()
                .join("; ")
        ));
    }
    let value = serde_json::to_value(&s)?;
    // A counter name, or `drops.by_reason.<REASON>` for a drop reason this kernel names.
    let known = |name: &str| match name.strip_prefix("drops.by_reason.") {
        Some(reason) => s.drops.recorded && m.reasons_known.contains(reason),
        None => m.before.server.get(name).is_some(),
    };
    s.expectations = judged.iter().map(|e| e.check(&value, &known)).collect();
    Ok(s)
}

/// Raises the soft open-files limit to the hard one (and the hard one too, where allowed), since
/// every connection in flight is a descriptor. Returns the soft limit in force.
fn raise_nofile_limit() -> u64 {
    use nix::sys::resource::{getrlimit, setrlimit, Resource};
    let Ok((soft, hard)) = getrlimit(Resource::RLIMIT_NOFILE) else {
        return 1024;
    };
    let want = 1 << 20;
    if hard < want && setrlimit(Resource::RLIMIT_NOFILE, want, want).is_ok() {
        return want;
    }
    if setrlimit(Resource::RLIMIT_NOFILE, hard, hard).is_ok() {
        return hard;
    }
    soft
}
