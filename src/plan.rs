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

#[derive(Debug, Clone)]
pub struct ServerPlan {
    /// The exact value passed to `listen()`; -1 and values above somaxconn included.
    pub backlog: i32,
    pub accept: AcceptPolicy,
    pub port: u16,
    pub response_bytes: u32,
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
    pub server: ServerPlan,
    pub client: ClientPlan,
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
            Duration::from_millis(100),
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
            server: ServerPlan {
                backlog: s.backlog.unwrap_or(128),
                accept,
                port,
                response_bytes,
                sysctl: sysctls("server", &s.sysctl, &[])?,
            },
            client: ClientPlan {
                arrival,
                connections,
                duration: dur,
                connect_timeout,
                response_timeout,
                seed: c.seed.unwrap_or(1),
                sysctl: sysctls("client", &c.sysctl, CLIENT_SYSCTL_DEFAULTS)?,
            },
            expect,
        })
    }
}
