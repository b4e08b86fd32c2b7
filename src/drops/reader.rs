//! The tracing thread: it sets up the lab's tracefs instance, reads its `trace_pipe` while the
//! storm runs, and keeps the lab's events that fall inside the counters' window.

use std::collections::BTreeMap;
use std::io::{ErrorKind, Read};
use std::os::fd::AsFd;
use std::os::unix::fs::OpenOptionsExt;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{mpsc, Arc};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use super::attribute::{between_lab_hosts, to_or_from};
use super::event::{self, Event, Kind};
use super::stats::Trace;
use super::tracefs;
use super::Watched;

/// Rows kept for `drops.csv`; beyond this events are still counted, not stored (a long storm
/// could otherwise hold millions of them in memory).
pub(super) const MAX_ROWS: usize = 500_000;

/// How long the reader sleeps in `poll` between looks at the stop flag.
const POLL: Duration = Duration::from_millis(50);

/// The reading thread: it owns the private mount, the instance and its `trace_pipe`.
pub struct Tracer {
    stop: Arc<AtomicBool>,
    /// `CLOCK_MONOTONIC` ns of the counters' first and last readings (0: not yet).
    pub(super) window: Arc<[AtomicU64; 2]>,
    thread: Option<JoinHandle<Trace>>,
}

impl Tracer {
    pub(super) fn start(watched: Watched) -> Result<Tracer, String> {
        let stop = Arc::new(AtomicBool::new(false));
        let window = Arc::new([AtomicU64::new(0), AtomicU64::new(0)]);
        let (ready_tx, ready_rx) = mpsc::channel();
        let flag = stop.clone();
        let bounds = window.clone();
        let thread = std::thread::Builder::new()
            .name("bl-tracefs".into())
            .spawn(move || read_events(watched, flag, bounds, ready_tx))
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

    pub(super) fn stop(mut self) -> Trace {
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
    watched: Watched,
    stop: Arc<AtomicBool>,
    window: Arc<[AtomicU64; 2]>,
    ready: mpsc::Sender<Result<(), String>>,
) -> Trace {
    let cpu_start = crate::counters::thread_cpu_ms();
    let (instance, mut pipe, mut trace) = match set_up(watched) {
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
    read_until_stopped(&instance, &mut pipe, &mut trace, watched, &stop, &window);
    // The ring's own count (the `[LOST n EVENTS]` lines in trace_pipe report the same losses).
    trace.lost = instance.lost();
    drop(pipe);
    drop(instance);
    trace.cpu_ms = crate::counters::thread_cpu_ms() - cpu_start;
    trace
}

/// Mounts tracefs privately, creates the lab's instance, enables its events with their kernel
/// filters and opens its `trace_pipe`; the trace it returns already names the missing events
/// and the known drop reasons.
fn set_up(watched: Watched) -> Result<(tracefs::Instance, std::fs::File, Trace), String> {
    let protocols = watched
        .ethertypes()
        .iter()
        .map(|t| format!("protocol == {t}"))
        .collect::<Vec<_>>()
        .join(" || ");
    let root = tracefs::mount_privately()?;
    let instance = tracefs::Instance::create(&root)?;
    let mut trace = Trace::default();
    let port = watched.server.port();
    let reasons = instance
        .format(Kind::KfreeSkb)
        .map(|f| reason_numbers(&f))
        .unwrap_or_default();
    // Left out in the kernel, before they cost the reader anything (each line it formats costs
    // ~17 µs of the reader's CPU), and again by the reader: QUEUE_PURGE, a socket's own
    // buffers freed when it closes (one or more per connection in any storm), and the
    // time-wait discards (see [`time_wait_discard`]). Neither is a packet lost on its way.
    // Reason numbers differ between kernels; the names do not. A kernel that refuses a
    // function filter (`.function`, 6.2 and later) gets the filter without it.
    let mut protocols = format!("({protocols})");
    if let Some(n) = reasons.get("QUEUE_PURGE") {
        protocols.push_str(&format!(" && reason != {n}"));
    }
    let mut kfree_filters = vec![protocols.clone()];
    if let Some(n) = reasons.get("NOT_SPECIFIED") {
        // The spaces before `)` matter: the parser takes `name)` as the function's name.
        let functions = TIME_WAIT_DISCARD_IN
            .iter()
            .map(|f| format!("location.function != {f} "))
            .collect::<Vec<_>>()
            .join("&& ");
        kfree_filters.insert(
            0,
            format!("{protocols} && (reason != {n} || ({functions}) )"),
        );
    }
    // The lab's own RST closes (see [`rst_close`]): a socket closed with SO_LINGER 0 sends its
    // RST from `tcp_disconnect`, in TCP_CLOSE for TCP_STATE; the sockets reset are the server's
    // (`sport` is the server's port). A kernel before 6.10 names no RST reason, so nothing can
    // tell those RSTs from others: there, nothing is left out.
    let resets = instance
        .format(Kind::SendReset)
        .map(|f| reason_numbers(&f))
        .unwrap_or_default();
    let either_port = format!("sport == {port} || dport == {port}");
    let (send_reset, receive_reset) = match (watched.rst_close, resets.get("TCP_STATE")) {
        (true, Some(n)) => {
            trace.rst_closes_left_out = true;
            (
                vec![format!("state != {TCP_CLOSE} || reason != {n}")],
                format!("dport == {port}"),
            )
        }
        // No filter otherwise: since 6.8 the event's addresses are a field the filter language
        // cannot compare, and before it not every RST had a socket's ports.
        _ => (vec![], either_port.clone()),
    };
    for kind in Kind::ALL {
        if !instance.has(kind) {
            trace.missing.push(kind.name());
            continue;
        }
        // Filters in the kernel keep the reader's work small; fields differ between kernel
        // versions, so a refused filter falls back to none (the reader filters anyway).
        let filters = match kind {
            Kind::KfreeSkb => kfree_filters.clone(),
            Kind::SendReset => send_reset.clone(),
            Kind::ReceiveReset => vec![receive_reset.clone()],
            _ => vec![either_port.clone()],
        };
        if !filters.iter().any(|f| instance.enable(kind, f).is_ok()) {
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
}

/// Reads `trace_pipe` into `trace` until `stop` is set and what was buffered is read, or until
/// reading fails (then `trace.read_error` says why).
fn read_until_stopped(
    instance: &tracefs::Instance,
    pipe: &mut std::fs::File,
    trace: &mut Trace,
    watched: Watched,
    stop: &AtomicBool,
    window: &[AtomicU64; 2],
) {
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
        let drained = match reader.read(pipe, |l| trace.take(l, watched, window)) {
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
}

impl Trace {
    /// Counts and keeps one line if it is the lab's event, inside the counters' window.
    fn take(&mut self, line: &str, w: Watched, window: &[AtomicU64; 2]) {
        let Some(e) = event::parse(line) else {
            return;
        };
        let ours = match e.kind {
            // The kernel filter says the same, unless this kernel refused it.
            Kind::KfreeSkb => {
                w.ethertypes().contains(&e.protocol)
                    && e.reason != "QUEUE_PURGE"
                    && !time_wait_discard(&e)
            }
            _ if self.rst_closes_left_out && rst_close(&e, w.server) => false,
            _ if w.any_peer => to_or_from(&e, w.server),
            _ => between_lab_hosts(&e, w.server, &w.lab),
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
        self.counts.tally(&e, true, &w.lab);
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

/// Where the kernel frees a segment that a time-wait socket has handled (answered with its
/// ACK, or found a duplicate) with `kfree_skb` and no reason: `tcp_v4_rcv`'s and
/// `tcp_v6_rcv`'s `TCP_TW_ACK` and `TCP_TW_SUCCESS` cases end in `goto discard_it` (6.18).
/// The server closes first in every storm, so the client's FIN meets a time-wait socket in
/// about a quarter of the connections: 25,263 of 26,928 traced events of a fast 100,000
/// connection storm, all `NOT_SPECIFIED` in `tcp_v4_rcv`, and 7 % of a core for the reader.
const TIME_WAIT_DISCARD_IN: [&str; 2] = ["tcp_v4_rcv", "tcp_v6_rcv"];

/// Whether `e` is such a discard: `NOT_SPECIFIED` in one of [`TIME_WAIT_DISCARD_IN`]. A rare
/// unlabelled drop there (a packet not addressed to this host) goes with them.
fn time_wait_discard(e: &Event) -> bool {
    e.reason == "NOT_SPECIFIED"
        && e.location
            .split('+')
            .next()
            .is_some_and(|f| TIME_WAIT_DISCARD_IN.contains(&f))
}

/// `TCP_CLOSE` in `include/net/tcp_states.h` (a number fixed by the ABI: `ss` and sock_diag
/// use it too). Event formats print states by name only.
const TCP_CLOSE: u32 = 7;

/// Whether `e` is left out of a run whose client closes with RSTs (`client.close = "rst"`, see
/// [`Watched::rst_close`]): the RST of a socket closed with SO_LINGER 0 (`tcp_disconnect` sends
/// it in TCP_CLOSE, for TCP_STATE), on either side, since the kernel filter cannot tell whose
/// socket sent it (a server program's own SO_LINGER 0 closes go too); and every reset of a
/// server socket, which in such a run is the client's doing (its RST closes, or its kernel's
/// NO_SOCKET answer to a socket it aborted). The kernel's filter matches the server's sockets by
/// port (`sport`), this rule by address and port; an event both keep is counted. The server's
/// RSTs of the listen queue (INVALID_SYN, NO_SOCKET, ...) stay, as do the client's resets.
fn rst_close(e: &Event, server: std::net::SocketAddr) -> bool {
    match e.kind {
        Kind::SendReset => e.state == "TCP_CLOSE" && e.reason == "TCP_STATE",
        Kind::ReceiveReset => e.local == Some(server),
        _ => false,
    }
}

/// The reasons and their numbers in an event's format (`kfree_skb`'s drop reasons,
/// `tcp_send_reset`'s RST reasons):
/// `__print_symbolic(REC->reason, { 2, "NOT_SPECIFIED" }, { 3, "NO_SOCKET" }, ...)`.
fn reason_numbers(format: &str) -> BTreeMap<String, u32> {
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

pub(super) fn monotonic_now_ns() -> u64 {
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_the_reason_names_of_a_format() {
        let f = r#"print fmt: "reason: %s", __print_symbolic(REC->reason, { 2, "NOT_SPECIFIED" }, { 40, "TCP_LISTEN_OVERFLOW" })"#;
        let names = reason_numbers(f);
        assert_eq!(names.get("TCP_LISTEN_OVERFLOW"), Some(&40));
        assert_eq!(names.get("NOT_SPECIFIED"), Some(&2));
        assert_eq!(names.len(), 2);
    }

    /// Lines as this kernel (6.18) wrote them in a `client.close = "rst"` storm and a
    /// reset-by-peer run.
    #[test]
    fn an_rst_close_is_the_labs_own_and_a_listen_queue_reset_is_not() {
        let client_close = "python3-2033 [001] ..... 127.603482: tcp_send_reset: skbaddr=0000000000000000 skaddr=00000000608ec79d src=198.18.0.2:49336 dest=198.18.0.1:8080 state=TCP_CLOSE reason=TCP_STATE";
        let server_reset = "tokio-rt-1 [000] b.... 16208.458890: tcp_send_reset: skbaddr=00000000c8bb1a76 skaddr=0000000000000000 src=198.18.0.1:8080 dest=198.18.0.2:36111 state=UNKNOWN reason=NO_SOCKET";
        let receive = |sport: u16, dport: u16, s: &str, d: &str| {
            format!("python3-2033 [001] ..s2. 127.603883: tcp_receive_reset: family=AF_INET sport={sport} dport={dport} saddr={s} daddr={d} saddrv6=::ffff:{s} daddrv6=::ffff:{d} sock_cookie=1")
        };
        let server = "198.18.0.1:8080".parse().unwrap();
        let is = |l: &str| rst_close(&event::parse(l).unwrap(), server);
        assert!(is(client_close));
        assert!(!is(server_reset));
        assert!(is(&receive(8080, 49336, "198.18.0.1", "198.18.0.2")));
        assert!(!is(&receive(49336, 8080, "198.18.0.2", "198.18.0.1")));
    }

    #[test]
    fn a_time_wait_discard_is_no_loss_and_other_unlabelled_frees_are() {
        let line = |location: &str, reason: &str| {
            format!("  <idle>-0  [000] ..s1. 16209.000123: kfree_skb: skbaddr=0 rx_sk=0 protocol=2048 location={location} reason: {reason}")
        };
        let is = |l: String| time_wait_discard(&event::parse(&l).unwrap());
        assert!(is(line("tcp_v4_rcv+0x99/0x1400", "NOT_SPECIFIED")));
        assert!(is(line("tcp_v6_rcv+0x4a/0x1300", "NOT_SPECIFIED")));
        assert!(!is(line("tcp_v4_rcv+0x99/0x1400", "TCP_LISTEN_OVERFLOW")));
        // IPv6's blackhole route: a SYN-ACK to a spoofed source, really lost.
        assert!(!is(line("dst_discard_out+0x1c/0x30", "NOT_SPECIFIED")));
        assert!(!is(line("tcp_v4_rcv_other+0x1/0x2", "NOT_SPECIFIED")));
    }
}
