//! [`RunPlan`]: the validated, fully resolved description of one run. Built once from a loaded
//! scenario; every default is filled in and every impossible combination rejected here, so the
//! modules that run the lab only ever see typed values.

use std::collections::BTreeMap;
use std::time::Duration;

use crate::error::Failure;
use crate::scenario::expect::Expectation;
use crate::scenario::{AcceptKind, ArrivalKind, Loaded};
use crate::topo::sysctl;

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

/// The wire between the hosts. All zero: a plain veth pair. Anything else: the delay line.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct LinkPlan {
    /// Round-trip time; each direction holds packets for half of it.
    pub rtt: Duration,
    /// Each packet's hold varies uniformly by ± this much, drawn per packet (so packets closer
    /// together than that may be reordered, as with netem).
    pub jitter: Duration,
    /// Probability that a packet towards the server (client → server) is dropped.
    pub loss_to_server: f64,
    /// Probability that a packet towards the client is dropped.
    pub loss_to_client: f64,
    /// Seeds the loss and jitter draws (the storm's seed), so reruns are alike.
    pub seed: u64,
}

impl LinkPlan {
    /// True when the link needs no emulation: the lab uses veth, as fast as the machine allows.
    pub fn is_ideal(&self) -> bool {
        self.rtt.is_zero()
            && self.jitter.is_zero()
            && self.loss_to_server == 0.0
            && self.loss_to_client == 0.0
    }
}

/// Raw SYNs from spoofed sources in [`crate::topo::link::FLOOD_NET`], sent from the client
/// namespace at a steady rate alongside the storm.
#[derive(Debug, Clone, PartialEq)]
pub struct FloodPlan {
    pub rate: f64,
    pub count: u64,
    /// From the storm's time zero.
    pub start: Duration,
}

/// Who talks first on a connection.
#[derive(Debug, Clone, PartialEq)]
pub enum Talk {
    /// The client sends a request of this many bytes (an HTTP GET, padded), then reads the
    /// response (HTTP, Redis...).
    ClientFirst { request_bytes: u32 },
    /// The server sends its response (a greeting) as soon as it accepts; the client sends
    /// nothing (MySQL, SMTP, SSH...).
    ServerFirst,
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
}

#[derive(Debug, Clone)]
pub struct RunPlan {
    pub name: String,
    pub description: String,
    pub incident: String,
    /// The TOML actually run (file plus `--set`), saved with the results.
    pub scenario_text: String,
    pub origin: String,
    pub sample_interval: Duration,
    /// Whether to record drop reasons from tracefs (`drops.csv`).
    pub trace_drops: bool,
    pub server: ServerPlan,
    pub client: ClientPlan,
    pub link: LinkPlan,
    pub flood: Option<FloodPlan>,
    pub expect: Vec<Expectation>,
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

fn bad(msg: String) -> Failure {
    Failure::bad_input(msg)
}

fn duration(key: &str, v: &Option<String>, default: Duration) -> Result<Duration, Failure> {
    match v {
        None => Ok(default),
        Some(s) => humantime::parse_duration(s.trim()).map_err(|e| {
            bad(format!(
                "{key} = \"{s}\": {e}; expected a duration such as 3s, 250ms or 1m"
            ))
        }),
    }
}

/// A rate per second, between one per 1000 s and 10 million.
fn positive(key: &str, v: Option<f64>) -> Result<f64, Failure> {
    match v {
        Some(r) if (0.001..=1e7).contains(&r) => Ok(r),
        Some(r) => Err(bad(format!(
            "{key} = {r}: must be a rate per second from 0.001 to 1e7"
        ))),
        None => Err(bad(format!("{key} is required here"))),
    }
}

fn unused<T>(key: &str, v: &Option<T>, why: &str) -> Result<(), Failure> {
    match v {
        Some(_) => Err(bad(format!(
            "{key} is only used {why}; remove it or change the mode"
        ))),
        None => Ok(()),
    }
}

/// `"0.5s-0.8s"` (or plain seconds, `"0.5-0.8"`) -> a window within the longest possible run.
fn parse_window(s: &str) -> Result<(Duration, Duration), Failure> {
    let err = || {
        bad(format!(
            "server.pauses: `{s}`: expected START-END within 0-600s, e.g. \"0.5s-0.8s\""
        ))
    };
    let point = |t: &str| {
        let t = t.trim();
        humantime::parse_duration(t)
            .ok()
            .or_else(|| {
                t.parse::<f64>()
                    .ok()
                    .and_then(|f| Duration::try_from_secs_f64(f).ok())
            })
            .filter(|d| *d <= MAX_DURATION)
    };
    let (a, b) = s.split_once('-').ok_or_else(err)?;
    match (point(a), point(b)) {
        (Some(a), Some(b)) if b > a => Ok((a, b)),
        (Some(_), Some(_)) => Err(bad(format!(
            "server.pauses: `{s}`: the end must come after the start"
        ))),
        _ => Err(err()),
    }
}

fn probability(key: &str, v: Option<f64>) -> Result<Option<f64>, Failure> {
    match v {
        Some(p) if !(0.0..1.0).contains(&p) => Err(bad(format!(
            "{key} = {p}: a probability from 0 (no loss) to below 1, e.g. 0.01 for 1 %"
        ))),
        other => Ok(other),
    }
}

fn link_plan(l: &crate::scenario::LinkFile, seed: u64) -> Result<LinkPlan, Failure> {
    let rtt = duration("link.rtt", &l.rtt, Duration::ZERO)?;
    let jitter = duration("link.jitter", &l.jitter, Duration::ZERO)?;
    if rtt > MAX_RTT {
        return Err(bad(format!("link.rtt: at most {}s", MAX_RTT.as_secs())));
    }
    if jitter > rtt / 2 {
        return Err(bad(format!(
            "link.jitter = {:?} is more than half of link.rtt = {:?}: each direction holds a \
             packet for rtt/2 ± jitter, which cannot go below zero",
            jitter, rtt
        )));
    }
    let both = probability("link.loss", l.loss)?;
    let to_server = probability("link.loss_to_server", l.loss_to_server)?;
    let to_client = probability("link.loss_to_client", l.loss_to_client)?;
    Ok(LinkPlan {
        rtt,
        jitter,
        loss_to_server: to_server.or(both).unwrap_or(0.0),
        loss_to_client: to_client.or(both).unwrap_or(0.0),
        seed,
    })
}

fn flood_plan(f: &crate::scenario::FloodFile) -> Result<FloodPlan, Failure> {
    let rate = positive("flood.rate", f.rate)?;
    let count = match f.count {
        Some(n) if (1..=MAX_FLOOD_COUNT).contains(&n) => n,
        Some(n) => {
            return Err(bad(format!(
                "flood.count = {n}: must be between 1 and {MAX_FLOOD_COUNT}"
            )))
        }
        None => return Err(bad("flood.count is required: every flood is bounded".into())),
    };
    let start = duration("flood.start", &f.start, Duration::ZERO)?;
    if start > MAX_DURATION || Duration::from_secs_f64(count as f64 / rate) > MAX_DURATION {
        return Err(bad(format!(
            "flood: start and count/rate must each stay within {}s",
            MAX_DURATION.as_secs()
        )));
    }
    Ok(FloodPlan { rate, count, start })
}

fn sysctls(
    side: &str,
    values: &BTreeMap<String, crate::scenario::SysctlValue>,
    defaults: &[(&str, &str)],
) -> Result<BTreeMap<String, String>, Failure> {
    let mut out: BTreeMap<String, String> = defaults
        .iter()
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect();
    for (k, v) in values {
        sysctl::validate_key(k).map_err(|e| bad(format!("{side}.sysctl: {}", e.message)))?;
        out.insert(k.clone(), v.to_string());
    }
    Ok(out)
}

impl RunPlan {
    pub fn from_scenario(loaded: &Loaded) -> Result<RunPlan, Failure> {
        let f = &loaded.file;
        let s = &f.server;
        let c = &f.client;

        let accept_kind = s.accept.unwrap_or(AcceptKind::Fast);
        let accept = match accept_kind {
            AcceptKind::Fast => AcceptPolicy::Fast,
            AcceptKind::Never => AcceptPolicy::Never,
            AcceptKind::Rate => AcceptPolicy::Rate {
                per_sec: positive("server.accept_rate", s.accept_rate)?,
            },
            AcceptKind::Pause => {
                let windows = s
                    .pauses
                    .as_ref()
                    .filter(|p| !p.is_empty())
                    .ok_or_else(|| bad("server.pauses is required with accept = \"pause\", e.g. [\"0.5s-0.8s\"]".into()))?
                    .iter()
                    .map(|w| parse_window(w))
                    .collect::<Result<Vec<_>, _>>()?;
                AcceptPolicy::Pause { windows }
            }
            AcceptKind::Workers => AcceptPolicy::Workers {
                count: match s.workers {
                    Some(n) if n >= 1 => n,
                    _ => {
                        return Err(bad(
                            "server.workers must be at least 1 with accept = \"workers\"".into(),
                        ))
                    }
                },
                service: duration("server.service_time", &s.service_time, Duration::ZERO)?,
            },
        };
        if accept_kind != AcceptKind::Rate {
            unused(
                "server.accept_rate",
                &s.accept_rate,
                "with accept = \"rate\"",
            )?;
        }
        if accept_kind != AcceptKind::Pause {
            unused("server.pauses", &s.pauses, "with accept = \"pause\"")?;
        }
        if accept_kind != AcceptKind::Workers {
            unused("server.workers", &s.workers, "with accept = \"workers\"")?;
            unused(
                "server.service_time",
                &s.service_time,
                "with accept = \"workers\"",
            )?;
        }

        let arrival = match c.arrival.unwrap_or(ArrivalKind::Constant) {
            ArrivalKind::Constant => Arrival::Constant {
                rate: positive("client.rate", c.rate.or(Some(1000.0)))?,
            },
            ArrivalKind::Poisson => Arrival::Poisson {
                rate: positive("client.rate", c.rate.or(Some(1000.0)))?,
            },
            ArrivalKind::Burst => {
                unused(
                    "client.rate",
                    &c.rate,
                    "with arrival = \"constant\" or \"poisson\"",
                )?;
                let size = match c.burst_size {
                    Some(n) if n >= 1 => n,
                    _ => {
                        return Err(bad(
                            "client.burst_size must be at least 1 with arrival = \"burst\"".into(),
                        ))
                    }
                };
                let interval = match &c.burst_interval {
                    None => None,
                    Some(_) => Some(duration(
                        "client.burst_interval",
                        &c.burst_interval,
                        Duration::ZERO,
                    )?)
                    .filter(|d| !d.is_zero()),
                };
                Arrival::Burst { size, interval }
            }
        };
        if !matches!(arrival, Arrival::Burst { .. }) {
            unused(
                "client.burst_size",
                &c.burst_size,
                "with arrival = \"burst\"",
            )?;
            unused(
                "client.burst_interval",
                &c.burst_interval,
                "with arrival = \"burst\"",
            )?;
        }

        let connections = c.connections.unwrap_or(1000);
        if connections == 0 || connections > MAX_CONNECTIONS {
            return Err(bad(format!(
                "client.connections = {connections}: must be between 1 and {MAX_CONNECTIONS}"
            )));
        }
        let dur = duration("client.duration", &c.duration, Duration::from_secs(10))?;
        if dur > MAX_DURATION {
            return Err(bad(format!(
                "client.duration: at most {}s, so every storm stops by itself",
                MAX_DURATION.as_secs()
            )));
        }
        let connect_timeout = duration(
            "client.connect_timeout",
            &c.connect_timeout,
            Duration::from_secs(3),
        )?;
        let response_timeout = duration(
            "client.response_timeout",
            &c.response_timeout,
            Duration::from_secs(3),
        )?;
        for (k, d) in [
            ("client.connect_timeout", connect_timeout),
            ("client.response_timeout", response_timeout),
        ] {
            if d.is_zero() || d > Duration::from_secs(300) {
                return Err(bad(format!("{k}: must be above 0 and at most 300s")));
            }
        }
        let sample_interval = duration(
            "sample_interval",
            &f.sample_interval,
            Duration::from_millis(10),
        )?;
        if !(Duration::from_millis(1)..=Duration::from_secs(10)).contains(&sample_interval) {
            return Err(bad("sample_interval: from 1ms to 10s".into()));
        }
        let response_bytes = s.response_bytes.unwrap_or(128);
        if response_bytes > MAX_RESPONSE_BYTES {
            return Err(bad(format!(
                "server.response_bytes: at most {MAX_RESPONSE_BYTES}"
            )));
        }
        let port = s.port.unwrap_or(8080);
        if port == 0 {
            return Err(bad("server.port: must be 1-65535".into()));
        }

        if !f.matrix.is_empty() || !f.case.is_empty() {
            return Err(bad(
                "this scenario is a comparison ([matrix] or [[case]]): it runs as several plans; \
                 use `backlog-lab run`, or pick one combination with --set"
                    .into(),
            ));
        }
        let seed = c.seed.unwrap_or(1);
        let link = link_plan(&f.link, seed)?;
        let flood = f.flood.as_ref().map(flood_plan).transpose()?;
        let talk = match c.request_bytes {
            Some(0) => Talk::ServerFirst,
            None => Talk::ClientFirst {
                request_bytes: crate::client::attempt::REQUEST.len() as u32,
            },
            Some(n)
                if (crate::client::attempt::REQUEST.len() as u32..=MAX_REQUEST_BYTES)
                    .contains(&n) =>
            {
                Talk::ClientFirst { request_bytes: n }
            }
            Some(n) => {
                return Err(bad(format!(
                    "client.request_bytes = {n}: use 0 (the server speaks first) or {} to \
                     {MAX_REQUEST_BYTES} (an HTTP request, padded)",
                    crate::client::attempt::REQUEST.len()
                )))
            }
        };

        let mut expect = Vec::new();
        for (path, conds) in &f.expect {
            // One condition ("> 0") or several (["> 0", "< 10"]) on the same value.
            let conds: Vec<&toml::Value> = match conds {
                toml::Value::Array(a) => a.iter().collect(),
                one => vec![one],
            };
            for cond in conds {
                let cond = cond.as_str().ok_or_else(|| {
                    bad(format!(
                        "expect.\"{path}\": a condition is a string such as \"> 0\", or a list of them"
                    ))
                })?;
                expect.push(Expectation::parse(path, cond)?);
            }
        }

        Ok(RunPlan {
            name: f.name.clone().unwrap_or_else(|| loaded.stem.clone()),
            description: f.description.clone().unwrap_or_default(),
            incident: f.incident.clone().unwrap_or_default(),
            scenario_text: loaded.text.clone(),
            origin: loaded.origin.clone(),
            sample_interval,
            trace_drops: f.trace_drops.unwrap_or(true),
            server: ServerPlan {
                backlog: s.backlog.unwrap_or(128),
                accept,
                port,
                response_bytes,
                talk: talk.clone(),
                sysctl: sysctls("server", &s.sysctl, &[])?,
            },
            client: ClientPlan {
                arrival,
                connections,
                duration: dur,
                connect_timeout,
                response_timeout,
                seed,
                talk,
                sysctl: sysctls("client", &c.sysctl, CLIENT_SYSCTL_DEFAULTS)?,
            },
            link,
            flood,
            expect,
        })
    }
}
