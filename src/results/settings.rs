//! A run's knobs as text: the scenario's listen backlog, accept policy and storm, and the
//! effective sysctls that decide what a full queue does. Plot captions and the reports' "settings"
//! table are both made from [`RunFolder::knobs`], so they never disagree.

use crate::plan::{AcceptPolicy, Arrival, RunPlan};

use super::RunFolder;

/// Server sysctls that decide what a full queue does, shown when present.
const SERVER_KEYS: &[(&str, &str)] = &[
    ("net.core.somaxconn", "somaxconn"),
    ("net.ipv4.tcp_max_syn_backlog", "tcp_max_syn_backlog"),
    ("net.ipv4.tcp_syncookies", "syncookies"),
    ("net.ipv4.tcp_abort_on_overflow", "abort_on_overflow"),
    ("net.ipv4.tcp_synack_retries", "synack_retries"),
];
const CLIENT_KEYS: &[(&str, &str)] = &[
    ("net.ipv4.tcp_syn_retries", "client syn_retries"),
    (
        "net.ipv4.tcp_syn_linear_timeouts",
        "client syn_linear_timeouts",
    ),
];

pub use crate::units::seconds;

/// `rate 1000/s`, `pause 0.5s-800ms`, `workers 4 x 200ms` ...
pub fn describe_accept(a: &AcceptPolicy) -> String {
    match a {
        AcceptPolicy::Fast => "fast".into(),
        AcceptPolicy::Never => "never (no accept() at all)".into(),
        AcceptPolicy::Rate { per_sec } => format!("rate {per_sec}/s"),
        AcceptPolicy::Pause { windows } => format!(
            "fast, paused {}",
            windows
                .iter()
                .map(|(a, b)| {
                    let a = seconds(*a);
                    format!("{}–{}", a.trim_end_matches(" s"), seconds(*b))
                })
                .collect::<Vec<_>>()
                .join(", ")
        ),
        AcceptPolicy::Workers { count, service } => {
            format!("{count} workers x {} service time", seconds(*service))
        }
    }
}

/// `constant 2500/s`, `burst of 1500 every 1s` ...
pub fn describe_arrival(a: &Arrival) -> String {
    match a {
        Arrival::Constant { rate } => format!("constant {rate}/s"),
        Arrival::Poisson { rate } => format!("poisson {rate}/s"),
        Arrival::Burst {
            size,
            interval: None,
        } => format!("one burst of {size}"),
        Arrival::Burst {
            size,
            interval: Some(i),
        } => format!("bursts of {size} every {}", seconds(*i)),
    }
}

/// Windows in which the server did not accept, in seconds from time zero (pause policy only).
pub fn pause_windows(plan: &RunPlan) -> Vec<(f64, f64)> {
    match &plan.server.accept {
        AcceptPolicy::Pause { windows } => windows
            .iter()
            .map(|(a, b)| (a.as_secs_f64(), b.as_secs_f64()))
            .collect(),
        _ => Vec::new(),
    }
}

/// The plan's own knobs, as the report's Settings table and `check` both show them: the accept
/// policy, the arrivals, how many connections and their timeouts.
pub fn plan_knobs(p: &RunPlan) -> Vec<(String, String)> {
    let mut knobs = vec![match &p.server.program {
        Some(prog) => (
            "server".into(),
            format!(
                "{} (a program of your own{})",
                prog.argv.join(" "),
                env_words(&prog.env)
            ),
        ),
        None => ("accept".into(), describe_accept(&p.server.accept)),
    }];
    if let Some(prog) = &p.client.program {
        knobs.push((
            "client".into(),
            format!(
                "{} (a program of your own, for at most {})",
                prog.argv.join(" "),
                seconds(p.client.duration)
            ),
        ));
        return knobs;
    }
    knobs.extend([
        ("arrivals".into(), describe_arrival(&p.client.arrival)),
        (
            "connections".into(),
            format!(
                "{} (at most, within {})",
                p.client.connections,
                seconds(p.client.duration)
            ),
        ),
        (
            "client timeouts".into(),
            format!(
                "connect {}, response {}",
                seconds(p.client.connect_timeout),
                seconds(p.client.response_timeout)
            ),
        ),
        (
            "client close".into(),
            match p.client.close {
                crate::wire::Close::Fin => "fin (close)".into(),
                crate::wire::Close::Rst => "rst (SO_LINGER 0)".into(),
            },
        ),
    ]);
    knobs
}

/// `; env A=1 B=2`, or nothing.
fn env_words(env: &std::collections::BTreeMap<String, String>) -> String {
    if env.is_empty() {
        return String::new();
    }
    let pairs: Vec<String> = env.iter().map(|(k, v)| format!("{k}={v}")).collect();
    format!("; env {}", pairs.join(" "))
}

/// The link as a person says it: `veth (no delay)`, `rtt 20 ms, jitter 2 ms, loss 1% to the
/// server`.
pub fn describe_link(l: &crate::plan::LinkPlan) -> String {
    if l.is_ideal() {
        return "veth (no delay, no loss)".into();
    }
    let short = |d: std::time::Duration| match d.as_secs_f64() {
        s if s < 1.0 => format!("{} ms", (s * 1e6).round() / 1e3),
        _ => seconds(d),
    };
    let mut parts = vec![format!("rtt {}", short(l.rtt))];
    if !l.jitter.is_zero() {
        parts.push(format!("jitter ±{}", short(l.jitter)));
    }
    for (p, way) in [
        (l.loss_to_server, "to the server"),
        (l.loss_to_client, "to the client"),
    ] {
        if p > 0.0 {
            parts.push(format!("loss {}% {way}", p * 100.0));
        }
    }
    format!("delay line: {}", parts.join(", "))
}

impl RunFolder {
    /// The knobs as (name, value) pairs, most important first.
    pub fn knobs(&self) -> Vec<(String, String)> {
        let mut k: Vec<(String, String)> = Vec::new();
        if let Some(w) = &self.summary.watched {
            k.push((
                "watched".into(),
                format!("TCP port {} in {} (net:[{}])", w.port, w.namespace, w.inode),
            ));
            let l = &self.summary.listen;
            let limits = if l.listeners.is_empty() {
                l.accept_queue_limit.into_iter().collect()
            } else {
                l.listeners.clone()
            };
            let limits: Vec<String> = limits.iter().map(|v| v.to_string()).collect();
            k.push(("listening sockets' limits".into(), limits.join(", ")));
            self.sysctl_knobs(&mut k);
            return k;
        }
        // The plan says what was passed to listen(); the summary says the same of a real run.
        let backlog = match &self.plan {
            Ok(p) => p.server.backlog,
            Err(_) => self.summary.listen.backlog_requested,
        };
        let limit = match (self.accept_queue_limit(), self.accept_queue_capacity()) {
            (Some(l), Some(c)) => format!(" → limit {l}, holds {c}"),
            _ => String::new(),
        };
        k.push(("listen backlog".into(), format!("{backlog}{limit}")));
        match &self.plan {
            Ok(p) => k.extend(plan_knobs(p)),
            Err(why) => k.push(("scenario".into(), format!("not readable: {why}"))),
        }
        self.sysctl_knobs(&mut k);
        k
    }

    /// The sysctls that shape the queues, as read back in each namespace.
    fn sysctl_knobs(&self, k: &mut Vec<(String, String)>) {
        for (ns, keys) in [("server", SERVER_KEYS), ("client", CLIENT_KEYS)] {
            for (key, short) in keys {
                if let Some(v) = self.sysctl(ns, key) {
                    k.push((short.to_string(), v.to_string()));
                }
            }
        }
    }

    /// The knobs on one or two lines of a plot caption: `name value · name value ...`.
    pub fn caption(&self) -> String {
        let knobs: Vec<String> = self
            .knobs()
            .into_iter()
            .map(|(k, v)| format!("{k} {v}"))
            .collect();
        format!("{}: {}", self.name(), knobs.join(" · "))
    }

    /// When clients retransmit an unanswered SYN (see [`crate::plan::retries::syn_retransmissions`]),
    /// from the client namespace's effective sysctls (kernel defaults 4 and 6 where unknown).
    pub fn syn_retry_times(&self) -> Vec<f64> {
        let get = |key, default| {
            self.sysctl("client", key)
                .and_then(|v| v.trim().parse().ok())
                .unwrap_or(default)
        };
        crate::plan::retries::syn_retransmissions(
            get("net.ipv4.tcp_syn_linear_timeouts", 4),
            get("net.ipv4.tcp_syn_retries", 6),
        )
    }

    /// Whether the SYN queue holds backlog + 1 (Linux 6.14 and later) rather than backlog.
    pub fn syn_queue_capacity(&self) -> Option<u64> {
        let limit = self.accept_queue_limit()?;
        let newer =
            crate::plan::queues::syn_queue_holds_one_more(self.kernel_release().unwrap_or(""));
        Some(if newer { limit + 1 } else { limit })
    }
}
