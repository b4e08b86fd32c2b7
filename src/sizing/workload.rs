//! What the model needs to know about a run, taken from its [`RunPlan`] and the kernel's rules:
//! the storm's own schedule (the same arrivals and seed the run will use), the server's accept
//! behaviour, the RTT, the client's timeouts, and the retry schedules and queue rules of the
//! running kernel. Times are in nanoseconds from the storm's time zero.

use crate::plan::queues::{syn_queue_holds_one_more, Side};
use crate::plan::{retries, AcceptPolicy, Arrival, RunPlan, PAUSE_OPENS_EARLY};
use crate::wire::Talk;

/// One second in the model's clock.
pub const SECOND: u64 = 1_000_000_000;

/// How the server takes connections off the accept queue, in the model's clock.
#[derive(Debug, Clone, PartialEq)]
pub enum Acceptor {
    /// As soon as a connection is queued (the model takes a fast server as infinitely fast).
    Fast,
    Never,
    /// One accept every `gap_ns` while connections wait; the first after an idle spell at once.
    Rate {
        gap_ns: u64,
    },
    /// Fast, except inside these windows, each opened [`PAUSE_OPENS_EARLY`] early and closed
    /// one timer tick late, as the lab's server does.
    Pause {
        windows: Vec<(u64, u64)>,
    },
    /// `count` workers, each busy `service_ns` per connection.
    Workers {
        count: u32,
        service_ns: u64,
    },
}

/// The run as the model sees it.
#[derive(Debug, Clone)]
pub struct Workload {
    /// When each attempt's `connect()` is scheduled.
    pub starts: Vec<u64>,
    pub acceptor: Acceptor,
    pub rtt_ns: u64,
    pub connect_timeout_ns: u64,
    pub response_timeout_ns: u64,
    /// The client's SYN retransmissions, after `connect()`, until the kernel gives up.
    pub syn_retries_ns: Vec<u64>,
    /// When the kernel gives up on `connect()` (ETIMEDOUT).
    pub syn_give_up_ns: u64,
    /// The server's SYN-ACK retransmissions, after the first SYN-ACK.
    pub synack_retries_ns: Vec<u64>,
    pub syncookies: u32,
    pub max_syn_backlog: u32,
    pub abort_on_overflow: bool,
    /// The client sends its request right after connecting (so a dropped final ACK is retried
    /// by the client's data retransmissions too).
    pub client_first: bool,
    /// The SYN queue holds limit + 1 (6.14 and later), else limit.
    pub syn_queue_one_more: bool,
    /// somaxconn when the scenario pins it (then it clamps every backlog tried).
    pub somaxconn_pinned: Option<u32>,
    /// Mean arrivals per second: the rate, or a burst's size over its interval (0 for a single
    /// burst).
    pub mean_rate: f64,
    /// The pause windows as the scenario writes them, s (the acceptor's are widened by the
    /// server's timer margins).
    pub pauses_s: Vec<(f64, f64)>,
}

fn ns(s: f64) -> u64 {
    (s * SECOND as f64).round() as u64
}

impl Workload {
    /// The model's view of `plan` on a kernel of `release`.
    pub fn of(plan: &RunPlan, release: &str) -> Workload {
        let c = &plan.client;
        let starts =
            crate::client::arrivals::schedule(&c.arrival, c.connections, c.duration, c.seed)
                .into_iter()
                .map(|d| d.as_nanos() as u64)
                .collect();
        let server = |k| plan.sysctl_value(Side::Server, k);
        let client = |k| plan.sysctl_value(Side::Client, k);
        let (syn_retries, _) = client("net.ipv4.tcp_syn_retries");
        let (linear, _) = client("net.ipv4.tcp_syn_linear_timeouts");
        let (synack, _) = server("net.ipv4.tcp_synack_retries");
        let (somaxconn, pinned) = server("net.core.somaxconn");
        Workload {
            starts,
            acceptor: acceptor(&plan.server.accept),
            rtt_ns: plan.link.rtt.as_nanos() as u64,
            connect_timeout_ns: c.connect_timeout.as_nanos() as u64,
            response_timeout_ns: c.response_timeout.as_nanos() as u64,
            syn_retries_ns: retries::syn_retransmissions(linear, syn_retries)
                .into_iter()
                .map(ns)
                .collect(),
            syn_give_up_ns: ns(retries::connect_gives_up_after(linear, syn_retries)),
            synack_retries_ns: retries::synack_retry_times(synack)
                .into_iter()
                .map(ns)
                .collect(),
            syncookies: server("net.ipv4.tcp_syncookies").0,
            max_syn_backlog: server("net.ipv4.tcp_max_syn_backlog").0,
            abort_on_overflow: server("net.ipv4.tcp_abort_on_overflow").0 != 0,
            client_first: matches!(c.talk, Talk::ClientFirst { .. }),
            syn_queue_one_more: syn_queue_holds_one_more(release),
            somaxconn_pinned: pinned.then_some(somaxconn),
            pauses_s: crate::results::settings::pause_windows(plan),
            mean_rate: match c.arrival {
                Arrival::Constant { rate } | Arrival::Poisson { rate } => rate,
                Arrival::Burst {
                    size,
                    interval: Some(i),
                } => size as f64 / i.as_secs_f64(),
                Arrival::Burst { interval: None, .. } => 0.0,
            },
        }
    }

    /// The accept-queue limit a `listen(backlog)` gets: the backlog itself, since the planner
    /// raises somaxconn with it, unless the scenario pins somaxconn, which then clamps it.
    pub fn limit(&self, backlog: u32) -> u32 {
        self.somaxconn_pinned.map_or(backlog, |s| backlog.min(s))
    }

    /// Accepts per second the server can sustain (infinite for fast and pause, 0 for never).
    pub fn accept_capacity(&self) -> f64 {
        match &self.acceptor {
            Acceptor::Fast | Acceptor::Pause { .. } => f64::INFINITY,
            Acceptor::Never => 0.0,
            Acceptor::Rate { gap_ns } => SECOND as f64 / *gap_ns as f64,
            Acceptor::Workers { count, service_ns } if *service_ns > 0 => {
                f64::from(*count) * SECOND as f64 / *service_ns as f64
            }
            Acceptor::Workers { .. } => f64::INFINITY,
        }
    }

    /// The same workload with only the attempts scheduled before `end_ns`.
    pub fn until(&self, end_ns: u64) -> Workload {
        let mut w = self.clone();
        w.starts.retain(|s| *s < end_ns);
        w
    }
}

fn acceptor(a: &AcceptPolicy) -> Acceptor {
    match a {
        AcceptPolicy::Fast => Acceptor::Fast,
        AcceptPolicy::Never => Acceptor::Never,
        AcceptPolicy::Rate { per_sec } => Acceptor::Rate {
            gap_ns: ns(1.0 / per_sec).max(1),
        },
        AcceptPolicy::Pause { windows } => Acceptor::Pause {
            windows: windows
                .iter()
                .map(|(s, e)| {
                    let open = s.saturating_sub(PAUSE_OPENS_EARLY);
                    (open.as_nanos() as u64, e.as_nanos() as u64 + 1_000_000)
                })
                .collect(),
        },
        AcceptPolicy::Workers { count, service } => Acceptor::Workers {
            count: *count,
            service_ns: service.as_nanos() as u64,
        },
    }
}
