//! Where each packet died: the kernel's own trace events, recorded during the storm.
//!
//! Counters say *how many* SYNs or ACKs were dropped; these events say *which* and *why*:
//!
//! - `skb:kfree_skb` with its drop reason (`TCP_LISTEN_OVERFLOW`, `NO_SOCKET`, ...) and the
//!   kernel function that dropped the packet. It carries no addresses and no namespace, so these
//!   are counted per reason for the whole machine (IPv4 only, filtered in the kernel) while the
//!   storm runs; on a machine that does nothing else they are the lab's. `QUEUE_PURGE` (buffers
//!   freed when a socket closes, not packets lost) is filtered out.
//! - `tcp:tcp_retransmit_synack`, `tcp:tcp_retransmit_skb`, `tcp:tcp_send_reset` and
//!   `tcp:tcp_receive_reset`, which carry the 4-tuple: only those between the lab's server and its
//!   client (or flood sources) are kept, and each is tied to the connection that used that client
//!   port at the time (`drops.csv`, column `connection`).
//!
//! A surprise worth knowing (Linux 6.18): a SYN dropped because the accept queue is full is not a
//! `kfree_skb` at all. `tcp_rcv_state_process` *consumes* it after `conn_request` declined it, so
//! it is invisible to drop monitors; only `ListenOverflows` and the client's SYN retransmission
//! show it. The final ACK that meets a full queue is the `TCP_LISTEN_OVERFLOW` drop.
//!
//! Where tracefs cannot be used (no root, no tracefs), the run says so once and goes on without.

pub mod event;
pub mod tracefs;

use std::collections::{BTreeMap, BTreeSet};
use std::io::{ErrorKind, Read};
use std::net::{Ipv4Addr, SocketAddrV4};
use std::os::fd::AsFd;
use std::os::unix::fs::OpenOptionsExt;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{mpsc, Arc, Once};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use serde::Serialize;

pub use event::{Event, Kind};

use crate::record::ConnRecord;
use crate::topo::link::{CLIENT_ADDR, FLOOD_NET};

/// Rows kept for `drops.csv`; beyond this events are still counted, not stored (a long storm
/// could otherwise hold millions of them in memory).
const MAX_ROWS: usize = 500_000;

/// `kfree_skb`'s `protocol` for IPv4.
const ETH_P_IP: u16 = 0x0800;

/// How long the reader sleeps in `poll` between looks at the stop flag.
const POLL: Duration = Duration::from_millis(50);

/// What the run records; the caller asks for drops only if the scenario wants them.
pub enum Recording {
    Tracing(Tracer),
    /// Not recorded, and why.
    Unavailable(String),
}

impl Recording {
    /// Starts tracing the lab's events around `server` (its address and port), or says why not,
    /// once per process on stderr. Nothing is written outside the lab's own instance, except
    /// that instances of earlier lab processes that are gone are removed.
    pub fn start(server: SocketAddrV4, wanted: bool) -> Recording {
        if !wanted {
            return Recording::Unavailable("off in the scenario (trace_drops = false)".into());
        }
        match Tracer::start(server) {
            Ok(t) => Recording::Tracing(t),
            Err(why) => {
                static SAID: Once = Once::new();
                SAID.call_once(|| {
                    eprintln!(
                        "note: drop reasons are not recorded ({why}); counters and everything \
                         else are. Run as root on a kernel with tracefs to get drops.csv"
                    )
                });
                Recording::Unavailable(why)
            }
        }
    }

    /// Marks the start of the window the counters cover: call it just before their first
    /// reading. Events before it are not counted.
    pub fn open_window(&self) {
        if let Recording::Tracing(t) = self {
            t.window[0].store(monotonic_now_ns(), Ordering::Relaxed);
        }
    }

    /// Marks the end of that window: call it just before the counters' last reading. Both
    /// marks come just before a reading because the server's counters are read first in it: an
    /// event can then fall between mark and reading only for the few µs of that file read.
    pub fn close_window(&self) {
        if let Recording::Tracing(t) = self {
            t.window[1].store(monotonic_now_ns(), Ordering::Relaxed);
        }
    }

    /// Stops tracing and returns what was recorded inside the window (up to now if it was never
    /// closed), so that the trace and the counters count the same events.
    pub fn stop(self) -> Trace {
        match self {
            Recording::Tracing(t) => {
                let _ = t.window[1].compare_exchange(
                    0,
                    monotonic_now_ns(),
                    Ordering::Relaxed,
                    Ordering::Relaxed,
                );
                t.stop()
            }
            Recording::Unavailable(why) => Trace {
                unavailable: Some(why),
                ..Trace::default()
            },
        }
    }
}

/// The reading thread: it owns the private mount, the instance and its `trace_pipe`.
pub struct Tracer {
    stop: Arc<AtomicBool>,
    /// `CLOCK_MONOTONIC` ns of the counters' first and last readings (0: not yet).
    window: Arc<[AtomicU64; 2]>,
    thread: Option<JoinHandle<Trace>>,
}

/// Everything recorded, before it is tied to connections.
#[derive(Debug, Default)]
pub struct Trace {
    /// Why nothing was recorded, when nothing was.
    pub unavailable: Option<String>,
    /// The lab's events in the order read (up to [`MAX_ROWS`]).
    pub events: Vec<Event>,
    /// Events of the lab past [`MAX_ROWS`]: counted below, not in `events`.
    pub not_stored: u64,
    pub counts: Counts,
    /// Events the trace buffer overwrote or never took (`per_cpu/*/stats`, `[LOST n EVENTS]`).
    pub lost: u64,
    /// Events with the lab's addresses that belonged to no connection of this run (see
    /// [`attribute`]); not in the rows or the counts.
    pub foreign: u64,
    /// Events of the lab before the counters' first reading or after their last: not in the
    /// rows or the counts, so that both cover the same window.
    pub outside_window: u64,
    /// Why reading stopped early, if it did (the counts are then short).
    pub read_error: Option<String>,
    /// Events this kernel does not have.
    pub missing: Vec<&'static str>,
    /// Every drop reason this kernel names (from the event's format), so an expectation on a
    /// reason that never happened reads 0 and a misspelt one is an error.
    pub reasons_known: BTreeSet<String>,
    /// CPU time of the reading thread.
    pub cpu_ms: f64,
}

/// Counts of the lab's events (all of them, stored or not).
#[derive(Debug, Default, Clone, Serialize)]
pub struct Counts {
    /// `kfree_skb` drops per reason (machine-wide, IPv4).
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
#[derive(Debug, Default, Clone, Serialize)]
pub struct Sides {
    pub server: u64,
    pub client: u64,
}

impl Counts {
    /// Counts `e` in (or, with `add` false, back out of) its category.
    fn tally(&mut self, e: &Event, add: bool) {
        let n = |c: &mut u64| *c = if add { *c + 1 } else { c.saturating_sub(1) };
        let side = side(e);
        match e.kind {
            Kind::KfreeSkb => {
                n(self.by_reason.entry(e.reason.clone()).or_default());
                let function = e.location.split('+').next().unwrap_or_default();
                n(self
                    .by_function
                    .entry(function.to_string())
                    .or_default()
                    .entry(e.reason.clone())
                    .or_default());
            }
            Kind::RetransmitSynack => n(&mut self.synack_retransmits),
            Kind::RetransmitSkb if e.state == "TCP_SYN_SENT" => n(&mut self.syn_retransmits),
            Kind::RetransmitSkb => n(&mut self.other_retransmits),
            Kind::SendReset => n(self
                .resets_sent
                .entry(side.to_string())
                .or_default()
                .entry(e.reason.clone())
                .or_default()),
            Kind::ReceiveReset if side == "client" => n(&mut self.resets_received.client),
            Kind::ReceiveReset => n(&mut self.resets_received.server),
        }
    }

    /// Drops the reasons whose count went back to 0 (events taken out by [`attribute`]).
    fn prune(&mut self) {
        self.by_reason.retain(|_, n| *n > 0);
        for nested in [&mut self.by_function, &mut self.resets_sent] {
            nested.values_mut().for_each(|m| m.retain(|_, n| *n > 0));
            nested.retain(|_, m| !m.is_empty());
        }
    }
}

impl Tracer {
    fn start(server: SocketAddrV4) -> Result<Tracer, String> {
        let stop = Arc::new(AtomicBool::new(false));
        let window = Arc::new([AtomicU64::new(0), AtomicU64::new(0)]);
        let (ready_tx, ready_rx) = mpsc::channel();
        let flag = stop.clone();
        let bounds = window.clone();
        let thread = std::thread::Builder::new()
            .name("bl-tracefs".into())
            .spawn(move || read_events(server, flag, bounds, ready_tx))
            .map_err(|e| format!("cannot start the tracing thread: {e}"))?;
        match ready_rx.recv() {
            Ok(Ok(())) => Ok(Tracer {
                stop,
                window,
                thread: Some(thread),
            }),
            Ok(Err(why)) => {
                let _ = thread.join();
                Err(why)
            }
            Err(_) => Err("the tracing thread ended before it was ready".into()),
        }
    }

    fn stop(mut self) -> Trace {
        self.stop.store(true, Ordering::Relaxed);
        self.thread
            .take()
            .and_then(|t| t.join().ok())
            .unwrap_or_else(|| Trace {
                unavailable: Some("the tracing thread panicked".into()),
                ..Trace::default()
            })
    }
}

impl Drop for Tracer {
    /// An error path that never calls `stop` still ends the thread, which removes the instance.
    fn drop(&mut self) {
        self.stop.store(true, Ordering::Relaxed);
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}

/// The tracing thread: set up, say ready (or why not), read until told to stop, tear down.
fn read_events(
    server: SocketAddrV4,
    stop: Arc<AtomicBool>,
    window: Arc<[AtomicU64; 2]>,
    ready: mpsc::Sender<Result<(), String>>,
) -> Trace {
    let cpu_start = crate::counters::thread_cpu_ms();
    let setup = || -> Result<(tracefs::Instance, std::fs::File, Trace), String> {
        let root = tracefs::mount_privately()?;
        let instance = tracefs::Instance::create(&root)?;
        let mut trace = Trace::default();
        let port = server.port();
        let reasons = instance
            .format(Kind::KfreeSkb)
            .map(|f| drop_reasons(&f))
            .unwrap_or_default();
        // QUEUE_PURGE is a socket's own buffers freed when it closes (one or more per connection
        // in any storm), not a packet lost on its way: left out in the kernel, before it costs
        // the reader anything. Reason numbers differ between kernels; the names do not.
        let kfree_filter = match reasons.get("QUEUE_PURGE") {
            Some(n) => format!("protocol == {ETH_P_IP} && reason != {n}"),
            None => format!("protocol == {ETH_P_IP}"),
        };
        for kind in Kind::ALL {
            if !instance.has(kind) {
                trace.missing.push(kind.name());
                continue;
            }
            // Filters in the kernel keep the reader's work small; fields differ between kernel
            // versions, so a refused filter falls back to none (the reader filters anyway).
            let filter = match kind {
                Kind::KfreeSkb => kfree_filter.clone(),
                Kind::SendReset => String::new(), // no port fields to filter on
                _ => format!("sport == {port} || dport == {port}"),
            };
            if instance.enable(kind, &filter).is_err() {
                instance.enable(kind, "0")?; // "0" clears a filter
            }
        }
        if trace.missing.len() == Kind::ALL.len() {
            return Err("this kernel has none of the trace events the lab uses".into());
        }
        trace.reasons_known = reasons.into_keys().collect();
        let pipe = std::fs::OpenOptions::new()
            .read(true)
            .custom_flags(libc::O_NONBLOCK)
            .open(instance.dir.join("trace_pipe"))
            .map_err(|e| format!("opening trace_pipe: {e}"))?;
        Ok((instance, pipe, trace))
    };
    let (instance, mut pipe, mut trace) = match setup() {
        Ok(s) => s,
        Err(why) => {
            let _ = ready.send(Err(why.clone()));
            return Trace {
                unavailable: Some(why),
                ..Trace::default()
            };
        }
    };
    let _ = ready.send(Ok(()));

    let mut reader = LineReader::default();
    loop {
        let stopping = stop.load(Ordering::Relaxed);
        if stopping {
            // Nothing new goes in; what is buffered is still read below.
            let _ = instance.write("tracing_on", "0");
        }
        let mut fds = [nix::poll::PollFd::new(
            pipe.as_fd(),
            nix::poll::PollFlags::POLLIN,
        )];
        let timeout = if stopping {
            0u16
        } else {
            POLL.as_millis() as u16
        };
        let _ = nix::poll::poll(&mut fds, timeout);
        let drained = match reader.read(&mut pipe, |l| trace.take(l, server, &window)) {
            Ok(drained) => drained,
            Err(e) => {
                trace.read_error = Some(format!("reading trace_pipe: {e}"));
                true
            }
        };
        if (stopping && drained) || trace.read_error.is_some() {
            break;
        }
    }
    // The ring's own count (the `[LOST n EVENTS]` lines in trace_pipe report the same losses).
    trace.lost = instance.lost();
    drop(pipe);
    drop(instance);
    trace.cpu_ms = crate::counters::thread_cpu_ms() - cpu_start;
    trace
}

impl Trace {
    /// Counts and keeps one line if it is the lab's event, inside the counters' window.
    fn take(&mut self, line: &str, server: SocketAddrV4, window: &[AtomicU64; 2]) {
        let Some(e) = event::parse(line) else {
            return;
        };
        let ours = match e.kind {
            // The kernel filter says the same, unless this kernel refused it.
            Kind::KfreeSkb => e.protocol == ETH_P_IP && e.reason != "QUEUE_PURGE",
            _ => between_lab_hosts(&e, server),
        };
        if !ours {
            return;
        }
        let (start, end) = (
            window[0].load(Ordering::Relaxed),
            window[1].load(Ordering::Relaxed),
        );
        if start == 0 || e.t_ns < start || (end != 0 && e.t_ns > end) {
            self.outside_window += 1;
            return;
        }
        self.counts.tally(&e, true);
        if self.events.len() < MAX_ROWS {
            self.events.push(e);
        } else {
            self.not_stored += 1;
        }
    }
}

/// Splits what `trace_pipe` gives into lines (a read can end mid-line).
#[derive(Default)]
struct LineReader {
    pending: Vec<u8>,
}

impl LineReader {
    /// Reads what is there now; true once the pipe is empty (or gone).
    fn read(
        &mut self,
        pipe: &mut std::fs::File,
        mut on_line: impl FnMut(&str),
    ) -> std::io::Result<bool> {
        let mut buf = [0u8; 64 * 1024];
        loop {
            match pipe.read(&mut buf) {
                Ok(0) => return Ok(true),
                Ok(n) => {
                    self.pending.extend_from_slice(&buf[..n]);
                    let mut start = 0;
                    while let Some(i) = self.pending[start..].iter().position(|&b| b == b'\n') {
                        on_line(&String::from_utf8_lossy(&self.pending[start..start + i]));
                        start += i + 1;
                    }
                    self.pending.drain(..start);
                }
                Err(e) if e.kind() == ErrorKind::Interrupted => {}
                Err(e) if e.kind() == ErrorKind::WouldBlock => return Ok(true),
                Err(e) => return Err(e),
            }
        }
    }
}

/// The drop reasons and their numbers in `kfree_skb`'s format:
/// `__print_symbolic(REC->reason, { 2, "NOT_SPECIFIED" }, { 3, "NO_SOCKET" }, ...)`.
fn drop_reasons(format: &str) -> BTreeMap<String, u32> {
    let Some(list) = format.split("__print_symbolic(REC->reason").nth(1) else {
        return BTreeMap::new();
    };
    list.split('{')
        .skip(1)
        .filter_map(|pair| {
            let (number, rest) = pair.split_once(',')?;
            let name = rest.split('"').nth(1)?;
            Some((name.to_string(), number.trim().parse().ok()?))
        })
        .collect()
}

/// Whether a TCP event is between the lab's server and its client or a flood source (not the
/// link's calibration address, not anyone else on the machine). A RST the listener itself sends
/// names no peer; it is the lab's if the listener is.
fn between_lab_hosts(e: &Event, server: SocketAddrV4) -> bool {
    let peer = |a: &SocketAddrV4| *a.ip() == CLIENT_ADDR || in_flood_net(a.ip());
    match (e.local, e.remote) {
        (Some(local), Some(remote)) => {
            (local == server && peer(&remote)) || (remote == server && peer(&local))
        }
        (Some(local), None) => e.kind == Kind::SendReset && local == server,
        _ => false,
    }
}

fn in_flood_net(ip: &Ipv4Addr) -> bool {
    let (net, len) = FLOOD_NET;
    let mask = u32::MAX << (32 - len);
    u32::from(*ip) & mask == u32::from(net) & mask
}

/// `server`, `client`, or empty (a `kfree_skb`, which has no addresses).
fn side(e: &Event) -> &'static str {
    match e.local {
        Some(l) if *l.ip() == CLIENT_ADDR => "client",
        Some(_) => "server",
        None => "",
    }
}

fn monotonic_now_ns() -> u64 {
    nix::time::clock_gettime(nix::time::ClockId::CLOCK_MONOTONIC)
        .map(|t| Duration::from(t).as_nanos() as u64)
        .unwrap_or(0)
}

/// `CLOCK_MONOTONIC` at `instant`, in nanoseconds: the trace's clock for the storm's time zero.
pub fn monotonic_ns(instant: Instant) -> u64 {
    let now = Instant::now();
    let mono = monotonic_now_ns() as i128;
    let delta = if instant >= now {
        (instant - now).as_nanos() as i128
    } else {
        -((now - instant).as_nanos() as i128)
    };
    (mono + delta).max(0) as u64
}

/// One row of `drops.csv`.
#[derive(Debug, Clone, Serialize)]
pub struct Row {
    /// Microseconds since the storm's time zero (negative: before it).
    pub t_us: i64,
    pub event: &'static str,
    /// `server` or `client`: whose socket; empty for `kfree_skb`.
    pub side: &'static str,
    pub reason: String,
    pub state: String,
    /// The event's own end and the other end (`kfree_skb`: empty).
    pub local: String,
    pub remote: String,
    /// The id in `connections.csv` of the connection that used this client port at the time.
    pub connection: Option<u64>,
    pub location: String,
}

/// Ties every event to its connection where the 4-tuple allows: the latest connection from that
/// client port that had started by then (a SYN-ACK retransmitted after the client gave up still
/// belongs to it, until the port is used again).
///
/// An event from the client's address whose port no connection of this run had used by then is
/// not this run's: tracepoints see every namespace, and an earlier lab's namespace, with the
/// same addresses, lives on after that lab exits for as long as its orphaned sockets (FIN_WAIT,
/// CLOSING, LAST_ACK) keep retransmitting. Such events are taken out of the rows and the counts
/// and counted in `trace.foreign`.
pub fn attribute(trace: &mut Trace, records: &[ConnRecord], t0_mono_ns: u64) -> Vec<Row> {
    let mut by_port: BTreeMap<u16, Vec<(u64, u64)>> = BTreeMap::new();
    for r in records {
        if let Some(p) = r.local_port {
            by_port.entry(p).or_default().push((r.started_us, r.id));
        }
    }
    for starts in by_port.values_mut() {
        starts.sort_unstable();
    }
    let mut rows = Vec::with_capacity(trace.events.len());
    for e in &trace.events {
        let row = {
            let t_us = (e.t_ns as i64 - t0_mono_ns as i64) / 1000;
            let client_port = [e.local, e.remote]
                .into_iter()
                .flatten()
                .find(|a| *a.ip() == CLIENT_ADDR)
                .map(|a| a.port());
            // `started_us` is stamped before socket() and connect(): no event of a connection
            // comes before it.
            let connection = client_port.and_then(|p| {
                let starts = by_port.get(&p)?;
                let i = starts.partition_point(|&(s, _)| (s as i64) <= t_us);
                i.checked_sub(1).map(|i| starts[i].1)
            });
            let addr = |a: Option<SocketAddrV4>| a.map(|a| a.to_string()).unwrap_or_default();
            let foreign = client_port.is_some() && connection.is_none();
            (
                foreign,
                Row {
                    t_us,
                    event: e.kind.name(),
                    side: side(e),
                    reason: e.reason.clone(),
                    state: e.state.clone(),
                    local: addr(e.local),
                    remote: addr(e.remote),
                    connection,
                    location: e.location.clone(),
                },
            )
        };
        match row {
            (true, _) => {
                trace.counts.tally(e, false);
                trace.foreign += 1;
            }
            (false, row) => rows.push(row),
        }
    }
    trace.counts.prune();
    rows
}

/// `summary.json → drops`.
#[derive(Debug, Clone, Default, Serialize)]
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
    #[serde(flatten)]
    pub counts: Counts,
    /// Connections with at least one event in `drops.csv`.
    pub connections_with_events: u64,
    /// CPU time the tracing thread used.
    pub cpu_ms: f64,
}

impl DropStats {
    pub fn of(trace: &Trace, rows: &[Row]) -> DropStats {
        DropStats {
            recorded: trace.unavailable.is_none(),
            unavailable: trace.unavailable.clone(),
            events: rows.len() as u64 + trace.not_stored,
            not_stored: trace.not_stored,
            lost_events: trace.lost,
            foreign_events: trace.foreign,
            outside_window: trace.outside_window,
            read_error: trace.read_error.clone(),
            missing_events: trace.missing.iter().map(|s| s.to_string()).collect(),
            counts: trace.counts.clone(),
            connections_with_events: rows
                .iter()
                .filter_map(|r| r.connection)
                .collect::<BTreeSet<_>>()
                .len() as u64,
            cpu_ms: trace.cpu_ms,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_the_reason_names_of_a_format() {
        let f = r#"print fmt: "reason: %s", __print_symbolic(REC->reason, { 2, "NOT_SPECIFIED" }, { 40, "TCP_LISTEN_OVERFLOW" })"#;
        let names = drop_reasons(f);
        assert_eq!(names.get("TCP_LISTEN_OVERFLOW"), Some(&40));
        assert_eq!(names.get("NOT_SPECIFIED"), Some(&2));
        assert_eq!(names.len(), 2);
    }

    fn ev(t_ns: u64, kind: Kind, local: &str, remote: &str) -> Event {
        Event {
            t_ns,
            kind,
            reason: String::new(),
            state: String::new(),
            local: local.parse().ok(),
            remote: remote.parse().ok(),
            location: String::new(),
            protocol: 0,
        }
    }

    #[test]
    fn keeps_only_events_between_the_lab_hosts() {
        let server: SocketAddrV4 = "198.18.0.1:60011".parse().unwrap();
        let k = Kind::RetransmitSynack;
        assert!(between_lab_hosts(
            &ev(0, k, "198.18.0.1:60011", "198.18.0.2:4000"),
            server
        ));
        assert!(between_lab_hosts(
            &ev(0, k, "198.18.0.1:60011", "198.19.3.4:4000"),
            server
        ));
        assert!(between_lab_hosts(
            &ev(0, k, "198.18.0.2:4000", "198.18.0.1:60011"),
            server
        ));
        // The link's calibration address, another port, someone else's connection.
        assert!(!between_lab_hosts(
            &ev(0, k, "198.18.0.1:60011", "198.18.0.3:4000"),
            server
        ));
        assert!(!between_lab_hosts(
            &ev(0, k, "198.18.0.1:22", "198.18.0.2:4000"),
            server
        ));
        assert!(!between_lab_hosts(
            &ev(0, k, "10.0.0.1:60011", "10.0.0.2:4000"),
            server
        ));
        // The listener's own RST (no peer in the event) is the lab's if the listener is.
        let rst = Kind::SendReset;
        assert!(between_lab_hosts(
            &ev(0, rst, "198.18.0.1:60011", ""),
            server
        ));
        assert!(!between_lab_hosts(&ev(0, rst, "198.18.0.1:22", ""), server));
    }

    #[test]
    fn ties_events_to_the_latest_connection_on_the_port_and_leaves_out_strangers() {
        let rec = |id, started_us, port| ConnRecord {
            id,
            scheduled_us: started_us,
            started_us,
            connected_us: None,
            first_byte_us: None,
            finished_us: started_us + 10,
            outcome: crate::record::Outcome::Ok,
            errno: None,
            retransmits: 0,
            local_port: Some(port),
            bytes: 0,
        };
        let records = [
            rec(0, 1_000, 4000),
            rec(1, 5_000_000, 4000),
            rec(2, 2_000, 4001),
        ];
        let t0 = 1_000_000_000;
        let at = |us: u64| t0 + us * 1000;
        let trace = Trace {
            events: vec![
                ev(
                    at(1_000_500),
                    Kind::RetransmitSynack,
                    "198.18.0.1:80",
                    "198.18.0.2:4000",
                ),
                ev(
                    at(5_000_100),
                    Kind::ReceiveReset,
                    "198.18.0.2:4000",
                    "198.18.0.1:80",
                ),
                ev(
                    at(3_000),
                    Kind::RetransmitSkb,
                    "198.18.0.2:4001",
                    "198.18.0.1:80",
                ),
                ev(
                    at(3_000),
                    Kind::RetransmitSkb,
                    "198.18.0.2:4002",
                    "198.18.0.1:80",
                ),
                ev(at(10), Kind::KfreeSkb, "", ""),
            ],
            ..Trace::default()
        };
        let mut trace = trace;
        for e in trace.events.clone() {
            trace.counts.tally(&e, true);
        }
        assert_eq!(trace.counts.other_retransmits, 2);
        let rows = attribute(&mut trace, &records, t0);
        let ids: Vec<_> = rows.iter().map(|r| r.connection).collect();
        // Port 4002 was no connection's: an earlier lab's socket, left out.
        assert_eq!(ids, [Some(0), Some(1), Some(2), None]);
        assert_eq!(rows[0].t_us, 1_000_500);
        assert_eq!(
            (rows[0].side, rows[1].side, rows[3].side),
            ("server", "client", "")
        );
        let stats = DropStats::of(&trace, &rows);
        assert_eq!(stats.connections_with_events, 3);
        assert_eq!(
            (stats.foreign_events, stats.counts.other_retransmits),
            (1, 1)
        );
        assert_eq!(stats.events, 4);
    }
}
