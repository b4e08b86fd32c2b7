//! `summary.json → drops`: where packets died during a run, as counted from the kernel's trace
//! events (tracefs). The recording and the counting are [`crate::drops`]'s; these are its
//! results.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

/// `summary.json → drops`.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
#[serde(default)]
pub struct DropStats {
    /// Whether the kernel's trace events were recorded.
    pub recorded: bool,
    /// Why not, when not.
    pub unavailable: Option<String>,
    /// Events of the lab recorded (rows of `drops.csv`, plus any past its row limit).
    pub events: u64,
    /// Rows not written to `drops.csv` because of its row limit (still counted here).
    pub not_stored: u64,
    /// Events lost in the trace buffer: nonzero means the counts below are short.
    pub lost_events: u64,
    /// Events of the lab before the counters' first reading or after their last, left out so
    /// that the counts here and in counters.csv cover the same time.
    pub outside_window: u64,
    /// Why reading the trace stopped early, if it did (the counts are then short).
    pub read_error: Option<String>,
    /// Events with the lab's addresses from no connection of this run (an earlier run's
    /// namespace, alive while its orphaned sockets retransmit): left out of everything here. A
    /// lower bound: such an event on a port this run also used cannot be told apart.
    pub foreign_events: u64,
    /// Events this kernel lacks (their counts are 0 because they cannot be seen).
    pub missing_events: Vec<String>,
    /// Subnets (`198.18.N.0/24`) of other labs that ran on the machine during the storm: the
    /// `kfree_skb` counts, which carry no address, then include their drops too.
    pub other_labs: Vec<u8>,
    #[serde(flatten)]
    pub counts: Counts,
    /// Connections with at least one event in `drops.csv`.
    pub connections_with_events: u64,
    /// CPU time the tracing thread used.
    pub cpu_ms: f64,
    /// With `client.close = "rst"` (on kernels that name RST reasons, 6.10 and later), the
    /// client's own RST closes are left out: RSTs sent in TCP_CLOSE for TCP_STATE (a socket
    /// closed with SO_LINGER 0, on either side, since the kernel's filter cannot tell whose) and
    /// every reset of a server socket (in such a run each is the client's doing). The client's
    /// `TcpExt.TCPAbortOnData` counts those closes.
    pub rst_closes_left_out: bool,
}

impl DropStats {
    /// What the trace left out by design, said beside its table; `None` if nothing was.
    pub fn left_out(&self) -> Option<&'static str> {
        self.rst_closes_left_out.then_some(
            "Not traced: the client's RST closes (client.close = rst) and the resets of the \
             server's sockets, which in such a run are the client's doing",
        )
    }
}

/// Counts of the lab's events (all of them, stored or not).
#[derive(Debug, Default, Clone, Serialize, Deserialize)]
#[serde(default)]
pub struct Counts {
    /// `kfree_skb` drops per reason (machine-wide, of the run's family).
    pub by_reason: BTreeMap<String, u64>,
    /// The same per kernel function that dropped them, then per reason: a `NO_SOCKET` in
    /// `cookie_v4_check` (a syncookie ACK whose child found the accept queue full) is not one in
    /// `tcp_v4_rcv` (a packet for a connection that does not exist).
    pub by_function: BTreeMap<String, BTreeMap<String, u64>>,
    /// SYN-ACKs the server resent (`tcp_retransmit_synack`), to clients and flood sources.
    pub synack_retransmits: u64,
    /// SYNs the client resent (`tcp_retransmit_skb` in `TCP_SYN_SENT`).
    pub syn_retransmits: u64,
    /// Other retransmissions of either side (data, FIN).
    pub other_retransmits: u64,
    /// RSTs sent per side, per reason.
    pub resets_sent: BTreeMap<String, BTreeMap<String, u64>>,
    /// Sockets reset by their peer, per side.
    pub resets_received: Sides,
}

/// A count per side of the lab.
#[derive(Debug, Default, Clone, Serialize, Deserialize)]
#[serde(default)]
pub struct Sides {
    pub server: u64,
    pub client: u64,
}

/// What a drop reason means when it is the machine's rather than a listening socket's: a CPU's
/// full input queue, memory, a device's queue. Such drops are the host's own limits (the first
/// is the host-wide `net.core.netdev_max_backlog`, which a storm on a small machine can fill);
/// `None` for every other reason.
pub fn machine_reason(reason: &str) -> Option<&'static str> {
    Some(match reason {
        "CPU_BACKLOG" => {
            "a CPU's input queue was full (net.core.netdev_max_backlog, host-wide), so the \
             packet died before TCP saw it"
        }
        "QDISC_DROP" => "a network device's queue was full",
        "FULL_RING" => "a network device's ring was full",
        "NOMEM" => "the kernel could not allocate memory for the packet",
        "PROTO_MEM" => "TCP was over its memory limit (net.ipv4.tcp_mem, host-wide)",
        _ => return None,
    })
}

impl Counts {
    /// Drops whose reason is the machine's ([`machine_reason`]), largest first.
    pub fn machine_drops(&self) -> Vec<(String, u64)> {
        let mut v: Vec<(String, u64)> = self
            .by_reason
            .iter()
            .filter(|(r, n)| **n > 0 && machine_reason(r).is_some())
            .map(|(r, n)| (r.clone(), *n))
            .collect();
        v.sort_by_key(|(_, n)| std::cmp::Reverse(*n));
        v
    }

    /// Final ACKs dropped at a full accept queue (`TCP_LISTEN_OVERFLOW`).
    pub fn listen_overflow_drops(&self) -> u64 {
        self.by_reason
            .get("TCP_LISTEN_OVERFLOW")
            .copied()
            .unwrap_or(0)
    }

    /// Syncookie ACKs whose new socket could not be queued (`NO_SOCKET` in `cookie_v4_check`,
    /// or `cookie_v6_check` on IPv6).
    pub fn cookie_ack_drops(&self) -> u64 {
        ["cookie_v4_check", "cookie_v6_check"]
            .iter()
            .filter_map(|f| self.by_function.get(*f)?.get("NO_SOCKET"))
            .sum()
    }
}
