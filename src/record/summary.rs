//! `summary.json`: the numbers a run is judged by, computed from the records alone.
//! The scenario's `[expect]` paths address this structure (see [`crate::scenario::expect`]).

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

use super::outcome::OutcomeCounts;
use super::percentiles::Percentiles;
use super::{Verdict, Warning};

/// Counters shown in the table when they moved (all of them are in `counters.csv`).
pub const KEY_COUNTERS: &[&str] = &[
    "TcpExt.ListenOverflows",
    "TcpExt.ListenDrops",
    "TcpExt.TCPReqQFullDrop",
    "TcpExt.TCPReqQFullDoCookies",
    "TcpExt.SyncookiesSent",
    "TcpExt.SyncookiesRecv",
    "TcpExt.SyncookiesFailed",
    "TcpExt.EmbryonicRsts",
    "TcpExt.TCPSynRetrans",
    "TcpExt.TCPTimeouts",
    "TcpExt.TCPBacklogDrop",
    "TcpExt.TCPAbortOnData",
    "Tcp.ActiveOpens",
    "Tcp.PassiveOpens",
    "Tcp.AttemptFails",
    "Tcp.EstabResets",
    "Tcp.OutRsts",
    "Tcp.RetransSegs",
];

/// How well the storm kept to its schedule.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
#[serde(default)]
pub struct Schedule {
    /// Attempts per second the schedule asked for (over its own span).
    pub planned_rate: Option<f64>,
    /// Attempts per second actually started (first to last start).
    pub achieved_rate: Option<f64>,
    /// Start lag behind the schedule.
    pub lag_ms: Percentiles,
    /// Most connections open at the same time (each is a file descriptor in the client).
    pub max_in_flight: u64,
    /// The most the client may have open at once (`client.max_in_flight`, bounded by the
    /// open-files limit); an attempt due when it is spent ends as `not_started`.
    pub in_flight_budget: Option<u64>,
    /// The lab process's peak resident memory when the summary was made, bytes (`VmHWM`: the
    /// storm, its tally and the result files, not the plots drawn after): divided by the
    /// connections, what each one cost.
    pub peak_rss_bytes: Option<u64>,
}

/// The accept queue as the kernel reported it (sock_diag, i.e. `ss -lnt`).
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
#[serde(default)]
pub struct Listen {
    /// The value passed to `listen()`.
    pub backlog_requested: i32,
    /// `ss -lnt` Send-Q: min((unsigned)backlog, somaxconn).
    pub accept_queue_limit: Option<u32>,
    /// How many connections the accept queue really holds: limit + 1.
    pub accept_queue_capacity: Option<u32>,
    /// Largest accept-queue length seen by the sampler (`ss -lnt` Recv-Q).
    pub accept_queue_max_seen: u32,
    /// Largest number of SYN-RECV request sockets seen for the port.
    pub syn_recv_max_seen: u32,
    /// Each listening socket's limit, when there are several on the port (SO_REUSEPORT: nginx
    /// workers, a cluster); `accept_queue_limit` is then the largest, and the max seen is the
    /// fullest socket's.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub listeners: Vec<u32>,
}

/// Retransmissions seen by the client sockets (TCP_INFO).
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
#[serde(default)]
pub struct Retransmits {
    pub connections_with_retransmits: u64,
    pub total: u64,
}

/// Timing of the connections that ended one way, so that each failure mode shows its own
/// clock: SYN retransmission steps in `connect_ms`, SYN-ACK retransmissions in `first_byte_ms`.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
#[serde(default)]
pub struct OutcomeTiming {
    pub count: u64,
    /// From the `connect()` call to the handshake's completion (connected ones only).
    pub connect_ms: Percentiles,
    /// From the handshake's completion to the first response byte (those that got one).
    pub first_byte_ms: Percentiles,
    /// From the `connect()` call to the end of the attempt (all of them).
    pub total_ms: Percentiles,
}

#[derive(Debug, Clone, Default, Serialize, Deserialize)]
#[serde(default)]
pub struct Summary {
    pub scenario: String,
    /// The `--set`s this run was given (`key=value`): with any, it is not the scenario as
    /// written, and says so wherever it is named ([`Summary::title`]).
    pub overrides: Vec<String>,
    /// The address family of the lab's hosts: `ipv4` or `ipv6` (empty in results written before
    /// the lab spoke IPv6: those were IPv4).
    pub family: String,
    /// Attempts made (one record each).
    pub connections: u64,
    /// Attempts in the schedule.
    pub planned: u64,
    pub interrupted: bool,
    pub abandoned: u64,
    /// From time zero to the end of the last attempt.
    pub duration_s: f64,
    /// Every outcome name, with its count.
    pub outcomes: OutcomeCounts,
    /// Connect latency measured from the scheduled start (no coordinated omission).
    pub connect_latency_ms: Percentiles,
    /// Connect latency measured from the actual `connect()` call.
    pub connect_latency_from_start_ms: Percentiles,
    /// Time to first response byte, from the scheduled start, for `ok` connections.
    pub response_latency_ms: Percentiles,
    /// The same clocks per outcome, every outcome name present.
    pub by_outcome: BTreeMap<String, OutcomeTiming>,
    pub schedule: Schedule,
    pub retransmits: Retransmits,
    /// Counter deltas (`TcpExt.ListenOverflows` style) that moved, per namespace.
    pub counters: BTreeMap<String, BTreeMap<String, i64>>,
    /// Effective sysctl values per namespace.
    pub sysctl: BTreeMap<String, BTreeMap<String, String>>,
    pub listen: Listen,
    pub server: super::stats::ServerStats,
    /// A client of the user's own (`client.command`) instead of the lab's storm.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub client_program: Option<super::stats::ProgramStats>,
    /// A live listener `watch` observed (then there is no storm and no client namespace).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub watched: Option<super::stats::WatchStats>,
    /// What sampling the counters and the listen queue cost (it shares the cores with the storm).
    pub sampling: super::stats::SamplingStats,
    /// What the delay line did (absent on a plain veth link).
    pub link: Option<super::stats::LinkStats>,
    /// What the SYN flood sent (absent without one).
    pub flood: Option<super::stats::FloodStats>,
    /// Where packets died, from the kernel's trace events (`drops.csv` has each one).
    pub drops: super::drops::DropStats,
    pub warnings: Vec<Warning>,
    pub expectations: Vec<Verdict>,
    /// `watch --alert`s: `pass` means the alert's condition held (it fired).
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub alerts: Vec<Verdict>,
}

impl Summary {
    /// A summary with every fixed key present (`link` and `flood` included): the structure that
    /// `[expect]` paths are checked against when a scenario is loaded.
    pub fn shape() -> Summary {
        Summary {
            by_outcome: super::Tally::default().by_outcome(),
            link: Some(Default::default()),
            flood: Some(Default::default()),
            ..Summary::default()
        }
    }

    /// Whether the run spoke IPv6, so sentences name the kernel's IPv6 functions and files.
    pub fn is_ipv6(&self) -> bool {
        self.family == "ipv6"
    }

    /// The kernel's suffix for the family's functions: `v4` in `cookie_v4_check`, `v6` in
    /// `cookie_v6_check`.
    pub fn kernel_v(&self) -> &'static str {
        if self.is_ipv6() {
            "v6"
        } else {
            "v4"
        }
    }

    /// `IPv4` or `IPv6`, as a sentence names the family.
    pub fn family_name(&self) -> &'static str {
        if self.is_ipv6() {
            "IPv6"
        } else {
            "IPv4"
        }
    }

    /// The run as it should be named: `envoy-somaxconn-128`, or `envoy-somaxconn-128 with 2
    /// overrides (server.accept=never, client.rate=5000)`.
    pub fn title(&self) -> String {
        match self.overrides.len() {
            0 => self.scenario.clone(),
            n => format!(
                "{} with {n} override{} ({})",
                self.scenario,
                if n == 1 { "" } else { "s" },
                self.overrides.join(", ")
            ),
        }
    }

    /// Whether the lab's own storm ran, so that there are connection records (not with a client
    /// of the user's own, nor for `watch`).
    pub fn has_connection_rows(&self) -> bool {
        self.client_program.is_none() && self.watched.is_none()
    }

    /// A counter's change over the run in namespace `ns` (`server`, `client`); 0 when it did not
    /// move (the summary keeps only those that did).
    pub fn counter(&self, ns: &str, name: &str) -> i64 {
        self.counters
            .get(ns)
            .and_then(|c| c.get(name))
            .copied()
            .unwrap_or(0)
    }

    /// Where the machine-wide trace evidence (`kfree_skb`, which carries no address) cannot be
    /// this run's own, as sentences; empty when it fits the run's own counters. The split of
    /// the overflows into final ACKs and cookie ACKs is shown only when this is empty.
    pub fn trace_doubts(&self) -> Vec<String> {
        let d = &self.drops;
        if !d.recorded {
            return Vec::new();
        }
        let c = &d.counts;
        let mut doubts = Vec::new();
        if !d.other_labs.is_empty() {
            let nets: Vec<String> = d
                .other_labs
                .iter()
                .map(|n| format!("198.18.{n}.0/24"))
                .collect();
            doubts.push(format!(
                "another lab ran on this machine during the storm ({}), and kfree_skb drops \
                 carry no address, so their counts include its drops",
                nets.join(", ")
            ));
        }
        let listen = c.listen_overflow_drops();
        let overflows = self.counter("server", "TcpExt.ListenOverflows").max(0) as u64;
        if listen > overflows {
            doubts.push(format!(
                "{listen} TCP_LISTEN_OVERFLOW drops were traced but this lab's server counted \
                 only {overflows} ListenOverflows: the rest were another host's"
            ));
        }
        let cookie = c.cookie_ack_drops();
        if cookie > 0 && self.counter("server", "TcpExt.SyncookiesRecv") == 0 {
            doubts.push(format!(
                "{cookie} NO_SOCKET drops in cookie_{}_check were traced but this lab's server \
                 received no syncookie (SyncookiesRecv 0): they were another host's",
                self.kernel_v()
            ));
        }
        let syn_counted = self.counter("client", "TcpExt.TCPSynRetrans").max(0) as u64;
        // A watched listener's clients are elsewhere: no client counter to hold them to.
        if c.syn_retransmits > syn_counted && self.watched.is_none() {
            doubts.push(format!(
                "{} SYN retransmissions were traced but the client counted {syn_counted} \
                 (TCPSynRetrans)",
                c.syn_retransmits
            ));
        }
        doubts
    }

    /// An effective sysctl of namespace `ns`, as read back during the run.
    pub fn sysctl(&self, ns: &str, key: &str) -> Option<&str> {
        self.sysctl.get(ns)?.get(key).map(String::as_str)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn percentiles_are_in_milliseconds() {
        let p = Percentiles::of([1000u64, 2000, 3000, 1_000_000].into_iter());
        assert_eq!(p.count, 4);
        assert_eq!(p.p50, Some(2.0));
        assert!((p.max.unwrap() - 1000.0).abs() < 1.0);
        assert!(Percentiles::of(std::iter::empty()).p50.is_none());
    }
}
