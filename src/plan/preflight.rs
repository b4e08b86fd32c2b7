//! What can be told about a plan before it runs, from its numbers and this machine's limits:
//! a storm that needs more descriptors than the process may open, a schedule far beyond what
//! the machine can start, and arrivals faster than the server can ever accept, which no backlog
//! absorbs. `check` prints them; `run` prints them before it builds anything.

use std::fmt;
use std::time::Duration;

use super::{AcceptPolicy, Arrival, RunPlan};
use crate::units::thousands;

/// Connections one CPU of this machine kind starts per second (the storm topped out near
/// 10,000/s per core; docs/NOTES.md, "The generator on this machine").
pub const STARTS_PER_CPU: f64 = 10_000.0;

/// Descriptors the lab needs beside the storm's sockets (the server's, netlink, files).
const RESERVED_FDS: u64 = 200;

/// One thing the plan's numbers say before it runs.
#[derive(Debug, Clone, PartialEq)]
pub enum Preflight {
    /// Up to `need` connections may be open at once (every attempt waiting out both timeouts),
    /// beyond the `limit` descriptors the process may have.
    Descriptors {
        need: u64,
        limit: u64,
        rate: f64,
        wait: Duration,
    },
    /// The schedule asks for `rate` starts a second; this machine manages about `can`.
    TooFast { rate: f64, can: f64, cpus: usize },
    /// Arrivals average `arrive`/s and the server accepts at most `accept`/s: the queue grows by
    /// the difference whatever the backlog, for `over`.
    Outpaced {
        arrive: f64,
        accept: f64,
        over: Duration,
        holds: u32,
    },
}

impl Preflight {
    /// Whether the run would measure the machine rather than the queue (a warning), or only
    /// behave as designed (a note: most bundled scenarios outpace their server on purpose).
    pub fn is_warning(&self) -> bool {
        !matches!(self, Preflight::Outpaced { .. })
    }

    /// How the line is headed where it is printed: `warning` or `note`.
    pub fn kind(&self) -> &'static str {
        if self.is_warning() {
            "warning"
        } else {
            "note"
        }
    }
}

impl fmt::Display for Preflight {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Preflight::Descriptors {
                need,
                limit,
                rate,
                wait,
            } => write!(
                f,
                "up to {} connections may be open at once ({}/s, each waiting up to {:.1} s for \
                 its connect and response timeouts), beyond the {} files this process may open \
                 (ulimit -n): the excess would not start (outcome not_started, the client's \
                 limit); lower client.rate, client.connections or the timeouts",
                thousands(*need),
                thousands(rate.round() as u64),
                wait.as_secs_f64(),
                thousands(*limit)
            ),
            Preflight::TooFast { rate, can, cpus } => write!(
                f,
                "the schedule starts {}/s, and this machine ({cpus} CPUs) starts about {}/s at \
                 most: the storm would fall behind and measure the client, not the queue; lower \
                 client.rate",
                thousands(rate.round() as u64),
                thousands(can.round() as u64)
            ),
            Preflight::Outpaced {
                arrive,
                accept,
                over,
                holds,
            } => outpaced(f, *arrive, *accept, *over, *holds),
        }
    }
}

fn outpaced(
    f: &mut fmt::Formatter<'_>,
    arrive: f64,
    accept: f64,
    over: Duration,
    holds: u32,
) -> fmt::Result {
    let excess = ((arrive - accept) * over.as_secs_f64()).round() as u64;
    write!(
        f,
        "connections arrive at {}/s on average and the server accepts {}/s: the queue grows by \
         {}/s",
        thousands(arrive.round() as u64),
        thousands(accept.round() as u64),
        thousands((arrive - accept).round() as u64),
    )?;
    let secs = over.as_secs_f64();
    let (excess_text, holds_text) = (thousands(excess), thousands(u64::from(holds)));
    if excess > u64::from(holds) {
        write!(
            f,
            " whatever the backlog: over these {secs:.1} s, {excess_text} more than it drains, \
             beyond the {holds_text} the accept queue holds"
        )
    } else {
        write!(
            f,
            "; over these {secs:.1} s that is {excess_text} more than it drains, which the \
             accept queue's {holds_text} absorb (each connection waiting longer), but a longer \
             storm would overflow any backlog"
        )
    }
}

/// The average arrival rate, where the arrivals have one (a single burst has none).
fn mean_arrival_rate(a: &Arrival) -> Option<f64> {
    match a {
        Arrival::Constant { rate } | Arrival::Poisson { rate } => Some(*rate),
        Arrival::Burst {
            size,
            interval: Some(i),
        } if !i.is_zero() => Some(*size as f64 / i.as_secs_f64()),
        Arrival::Burst { .. } => None,
    }
}

/// The most connections a second the server takes off its queue, where it is bounded (`never`
/// is left out: it overflows by design, and says so itself).
fn accept_capacity(a: &AcceptPolicy) -> Option<f64> {
    match a {
        AcceptPolicy::Rate { per_sec } => Some(*per_sec),
        AcceptPolicy::Workers { count, service } if !service.is_zero() => {
            Some(f64::from(*count) / service.as_secs_f64())
        }
        _ => None,
    }
}

/// What `plan`'s numbers say, given the descriptors the process may open and the CPUs.
pub fn check(plan: &RunPlan, fd_limit: u64, cpus: usize) -> Vec<Preflight> {
    let c = &plan.client;
    let mut out = Vec::new();
    // A client of the user's own: its numbers are its own, none of these can be said.
    if c.program.is_some() {
        return out;
    }
    let wait = c.connect_timeout + c.response_timeout;
    let rate = mean_arrival_rate(&c.arrival);
    // Open at once, at worst: every attempt of the last `wait` still waiting.
    let need = match &c.arrival {
        Arrival::Burst { size, interval } => {
            let bursts = interval.map_or(1.0, |i| (wait.as_secs_f64() / i.as_secs_f64()).ceil());
            (*size as f64 * bursts.max(1.0)) as u64
        }
        _ => (rate.unwrap_or(0.0) * wait.as_secs_f64()).ceil() as u64,
    }
    .min(c.connections);
    if need + RESERVED_FDS > fd_limit {
        out.push(Preflight::Descriptors {
            need,
            limit: fd_limit,
            rate: rate.unwrap_or(c.connections as f64),
            wait,
        });
    }
    let can = STARTS_PER_CPU * cpus.max(1) as f64;
    if let Some(rate) = rate.filter(|r| *r > 2.0 * can) {
        out.push(Preflight::TooFast { rate, can, cpus });
    }
    if let (Some(arrive), Some(accept)) = (rate, accept_capacity(&plan.server.accept)) {
        // Arrivals last as long as the schedule: connections / rate, at most the duration.
        let over = Duration::from_secs_f64(c.connections as f64 / arrive).min(c.duration);
        if arrive > accept {
            out.push(Preflight::Outpaced {
                arrive,
                accept,
                over,
                holds: plan.queues("").accept_holds,
            });
        }
    }
    out
}
