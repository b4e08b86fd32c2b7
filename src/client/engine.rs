//! The storm's event loop: one per worker thread, each with its own epoll set, its own share of
//! the schedule and its own connections, so that no start and no readiness event ever crosses
//! threads.
//!
//! Why by hand and not on Tokio: the storm's tasks were the lab's own cost. In `perf` a
//! 60,000/s storm spent 7 % of all samples in the runtime's user space (wakers, the timer
//! wheel, the scheduler thread's spawns and its cross-thread wakes), where wrk spent 4 %. Here a
//! connection is a slot in a vector, its two deadlines are entries in two FIFO queues (every
//! connection of a storm has the same timeouts, so each queue is already in deadline order),
//! and a worker sleeps in `epoll_pwait2` until the earliest of its next start, its next
//! deadline and the next look at the stop signals, to the microsecond.

use std::collections::VecDeque;
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::mpsc::Sender;
use std::time::{Duration, Instant};

use super::attempt::{self, AttemptSpec, Conn, End, Phase, Readiness};
use super::Progress;
use crate::record::{ConnRecord, Outcome};

/// What the workers of one storm share.
pub struct Shared<'a> {
    pub spec: &'a AttemptSpec,
    /// The most connections in flight, all workers together.
    pub budget: u64,
    pub in_flight: &'a AtomicU64,
    pub progress: &'a Progress,
}

/// How often a worker looks at the stop signals when nothing else wakes it.
const SIGNAL_POLL: Duration = Duration::from_millis(10);

/// The most attempts a worker starts before it looks at its sockets again. Behind schedule,
/// the due attempts would otherwise all start first, and the connections already in flight
/// (whose responses are waiting) would wait behind them; their starts are late either way and
/// say so in their lag.
const STARTS_PER_TURN: usize = 64;

/// Readiness events taken per `epoll_pwait2`.
const EVENTS: usize = 256;

/// Runs one worker: starts the attempts of `due` (ids and times, in time order) and carries
/// each to its end, handing every record to `rows` as it finishes. Returns when every
/// attempt it started has ended, or at once on a second stop signal (the connections in
/// flight then end as [`Outcome::Abandoned`]).
pub fn run(
    due: impl Iterator<Item = (u64, Instant)>,
    shared: &Shared,
    rows: Sender<ConnRecord>,
) -> std::io::Result<()> {
    let mut w = Worker {
        poll: Epoll::new()?,
        conns: Slots::default(),
        connect_deadlines: VecDeque::new(),
        response_deadlines: VecDeque::new(),
        shared,
        rows,
    };
    let mut due = due.peekable();
    let mut scratch = vec![0u8; 16 * 1024];
    let mut events = vec![libc::epoll_event { events: 0, u64: 0 }; EVENTS];
    let mut scheduling = true;
    loop {
        let signals = crate::interrupt::count();
        if signals >= 1 {
            scheduling = false;
            if !shared.progress.interrupted.swap(true, Ordering::Relaxed) {
                let by = crate::interrupt::requested().map_or("a signal", crate::interrupt::name);
                eprintln!("\ninterrupted ({by}): no new connections; waiting for those in flight (Ctrl-C again to abandon them)");
            }
        }
        if signals >= 2 {
            w.end_all((Outcome::Abandoned, None));
            return Ok(());
        }
        let now = Instant::now();
        let mut more_due = false;
        if scheduling {
            for _ in 0..STARTS_PER_TURN {
                match due.next_if(|&(_, at)| at <= now) {
                    Some((id, at)) => w.start(id, at),
                    None => break,
                }
            }
            more_due = due.peek().is_some_and(|&(_, at)| at <= now);
        }
        w.expire(now);
        let next_start = if scheduling {
            due.peek().map(|&(_, at)| at)
        } else {
            None
        };
        if next_start.is_none() && w.conns.live == 0 {
            return Ok(());
        }
        let wake = if more_due {
            None
        } else {
            Some(
                [next_start, w.next_deadline()]
                    .into_iter()
                    .flatten()
                    .fold(now + SIGNAL_POLL, Instant::min),
            )
        };
        // Measured again: the turn's starts took time of their own.
        let timeout = wake.map_or(Duration::ZERO, |t| {
            t.saturating_duration_since(Instant::now())
        });
        let n = match w.poll.wait(&mut events, timeout) {
            Ok(n) => n,
            Err(e) => {
                // Every connection in flight keeps its row, with the error that stopped it.
                w.end_all((Outcome::Other, e.raw_os_error()));
                return Err(e);
            }
        };
        for ev in &events[..n] {
            // Copied out: the kernel's struct is packed.
            let (token, mask) = (ev.u64, ev.events);
            w.ready(token, Readiness::of(mask), &mut scratch);
        }
    }
}

struct Worker<'a> {
    poll: Epoll,
    conns: Slots,
    /// (deadline, token) of every connection started, in start order.
    connect_deadlines: VecDeque<(Instant, u64)>,
    /// (deadline, token) of every connection that connected, in connect order.
    response_deadlines: VecDeque<(Instant, u64)>,
    shared: &'a Shared<'a>,
    rows: Sender<ConnRecord>,
}

impl Worker<'_> {
    fn start(&mut self, id: u64, at: Instant) {
        let Shared {
            spec,
            budget,
            in_flight,
            progress,
        } = self.shared;
        // A place in the budget is taken before the socket, so that the workers together never
        // hold more than the budget. Spent: this attempt never starts, and says so with its own
        // outcome instead of failing its socket() with EMFILE.
        if in_flight.fetch_add(1, Ordering::Relaxed) >= *budget {
            in_flight.fetch_sub(1, Ordering::Relaxed);
            self.hand_in(attempt::not_started(id, at, spec, Instant::now()));
            return;
        }
        // Read after the place is taken, so that the start is never earlier than the finish of
        // the connection whose place it took: the rows' in-flight sweep then never counts more
        // than the budget (a worker preempted between the two read 17 of 16 once).
        let now = Instant::now();
        progress.started.fetch_add(1, Ordering::Relaxed);
        let conn = match Conn::start(id, at, spec, now) {
            Ok(c) => c,
            Err(rec) => {
                in_flight.fetch_sub(1, Ordering::Relaxed);
                return self.hand_in(rec);
            }
        };
        let fd = conn.socket().as_raw_fd();
        let token = self.conns.insert(conn);
        // Edge-triggered, registered once: the connect's end, then each arrival of response
        // bytes, each a single event. Closing the socket takes it out of the set.
        if let Err(e) = self.poll.add(fd, token) {
            let conn = self.conns.remove(token).expect("just inserted");
            return self.end(conn, (Outcome::Other, e.raw_os_error()));
        }
        self.connect_deadlines
            .push_back((now + spec.connect_timeout, token));
    }

    fn ready(&mut self, token: u64, ready: Readiness, scratch: &mut [u8]) {
        let spec = self.shared.spec;
        let Some(conn) = self.conns.get_mut(token) else {
            return;
        };
        match conn.advance(ready, spec, scratch) {
            Ok(false) => {}
            Ok(true) => self
                .response_deadlines
                .push_back((Instant::now() + spec.response_timeout, token)),
            Err(end) => {
                let conn = self.conns.remove(token).expect("looked up above");
                self.end(conn, end);
            }
        }
    }

    /// Ends the connections whose deadline has passed in the phase the deadline is for.
    fn expire(&mut self, now: Instant) {
        for phase in [Phase::Connecting, Phase::Talking] {
            loop {
                let queue = match phase {
                    Phase::Connecting => &mut self.connect_deadlines,
                    Phase::Talking => &mut self.response_deadlines,
                };
                let token = match queue.front() {
                    Some(&(deadline, token)) if deadline <= now => token,
                    _ => break,
                };
                queue.pop_front();
                // An entry whose connection ended, or moved on to talking, is only dropped.
                if self
                    .conns
                    .get_mut(token)
                    .is_some_and(|c| c.phase() == phase)
                {
                    let mut conn = self.conns.remove(token).expect("looked up above");
                    let end = conn.timed_out();
                    self.end(conn, end);
                }
            }
        }
    }

    /// The earliest deadline still queued (possibly of a connection that has ended: waking
    /// for it only drops it).
    fn next_deadline(&self) -> Option<Instant> {
        let c = self.connect_deadlines.front().map(|d| d.0);
        let r = self.response_deadlines.front().map(|d| d.0);
        c.into_iter().chain(r).min()
    }

    /// Ends every connection in flight the same way (a second stop signal, a failed wait).
    fn end_all(&mut self, end: End) {
        for conn in self.conns.drain() {
            self.end(conn, end);
        }
    }

    /// Closes a connection that was in flight and hands in its record.
    fn end(&mut self, conn: Conn, end: End) {
        let rec = conn.finish(end, self.shared.spec);
        self.shared.in_flight.fetch_sub(1, Ordering::Relaxed);
        self.hand_in(rec);
    }

    /// Counts a record (once: every record passes here) and sends it on.
    fn hand_in(&mut self, rec: ConnRecord) {
        let progress = self.shared.progress;
        progress.outcomes[rec.outcome.index()].fetch_add(1, Ordering::Relaxed);
        progress.finished.fetch_add(1, Ordering::Relaxed);
        // The receiver outlives the storm, so a send cannot fail.
        let _ = self.rows.send(rec);
    }
}

/// The connections in flight, each under a token: its slot's index in the low 32 bits, and the
/// slot's generation in the high 32, so an event or deadline of an ended connection never
/// reaches the next one in the same slot.
#[derive(Default)]
struct Slots {
    slots: Vec<(u32, Option<Conn>)>,
    free: Vec<u32>,
    live: usize,
}

impl Slots {
    fn insert(&mut self, conn: Conn) -> u64 {
        self.live += 1;
        let i = match self.free.pop() {
            Some(i) => i,
            None => {
                self.slots.push((0, None));
                (self.slots.len() - 1) as u32
            }
        };
        let slot = &mut self.slots[i as usize];
        slot.0 = slot.0.wrapping_add(1);
        slot.1 = Some(conn);
        (slot.0 as u64) << 32 | i as u64
    }

    fn get_mut(&mut self, token: u64) -> Option<&mut Conn> {
        match self.slots.get_mut((token & 0xffff_ffff) as usize) {
            Some((g, Some(c))) if *g == (token >> 32) as u32 => Some(c),
            _ => None,
        }
    }

    fn remove(&mut self, token: u64) -> Option<Conn> {
        let i = (token & 0xffff_ffff) as u32;
        match self.slots.get_mut(i as usize) {
            Some((g, c @ Some(_))) if *g == (token >> 32) as u32 => {
                self.live -= 1;
                self.free.push(i);
                c.take()
            }
            _ => None,
        }
    }

    fn drain(&mut self) -> Vec<Conn> {
        self.live = 0;
        self.free.clear();
        self.slots.drain(..).filter_map(|(_, c)| c).collect()
    }
}

/// An epoll set.
struct Epoll(OwnedFd);

const INTEREST: u32 = (libc::EPOLLIN | libc::EPOLLOUT | libc::EPOLLRDHUP | libc::EPOLLET) as u32;

impl Epoll {
    fn new() -> std::io::Result<Epoll> {
        // SAFETY: plain syscall; the fd is owned from here on.
        let fd = unsafe { libc::epoll_create1(libc::EPOLL_CLOEXEC) };
        if fd < 0 {
            return Err(std::io::Error::last_os_error());
        }
        Ok(Epoll(unsafe { OwnedFd::from_raw_fd(fd) }))
    }

    fn add(&self, fd: libc::c_int, token: u64) -> std::io::Result<()> {
        let mut ev = libc::epoll_event {
            events: INTEREST,
            u64: token,
        };
        // SAFETY: valid fds and event.
        if unsafe { libc::epoll_ctl(self.0.as_raw_fd(), libc::EPOLL_CTL_ADD, fd, &mut ev) } < 0 {
            return Err(std::io::Error::last_os_error());
        }
        Ok(())
    }

    /// Waits at most `timeout` (to the microsecond: `epoll_wait`'s milliseconds would start
    /// attempts up to 1 ms late) and returns how many events it filled in.
    fn wait(&self, events: &mut [libc::epoll_event], timeout: Duration) -> std::io::Result<usize> {
        if NO_PWAIT2.load(Ordering::Relaxed) {
            return self.wait_ms(events, timeout);
        }
        let ts = libc::timespec {
            tv_sec: timeout.as_secs() as libc::time_t,
            tv_nsec: timeout.subsec_nanos() as libc::c_long,
        };
        // SAFETY: a valid epoll fd, a buffer of the length given, a valid timespec.
        let n = unsafe {
            libc::epoll_pwait2(
                self.0.as_raw_fd(),
                events.as_mut_ptr(),
                events.len() as libc::c_int,
                &ts,
                std::ptr::null(),
            )
        };
        if n >= 0 {
            return Ok(n as usize);
        }
        let e = std::io::Error::last_os_error();
        match e.raw_os_error() {
            Some(libc::EINTR) => Ok(0),
            // Before Linux 5.11: milliseconds from here on.
            Some(libc::ENOSYS) => {
                NO_PWAIT2.store(true, Ordering::Relaxed);
                self.wait_ms(events, timeout)
            }
            _ => Err(e),
        }
    }

    /// `epoll_wait`, its timeout rounded up to milliseconds so that no deadline is missed.
    fn wait_ms(
        &self,
        events: &mut [libc::epoll_event],
        timeout: Duration,
    ) -> std::io::Result<usize> {
        let ms = timeout.as_micros().div_ceil(1000).min(i32::MAX as u128) as i32;
        // SAFETY: a valid epoll fd, a buffer of the length given.
        let n = unsafe {
            libc::epoll_wait(
                self.0.as_raw_fd(),
                events.as_mut_ptr(),
                events.len() as libc::c_int,
                ms,
            )
        };
        if n >= 0 {
            return Ok(n as usize);
        }
        match std::io::Error::last_os_error() {
            e if e.raw_os_error() == Some(libc::EINTR) => Ok(0),
            e => Err(e),
        }
    }
}

/// Set once `epoll_pwait2` turned out missing (a kernel before 5.11), so that no worker asks
/// for it again on every turn.
static NO_PWAIT2: std::sync::atomic::AtomicBool = std::sync::atomic::AtomicBool::new(false);

#[cfg(test)]
mod tests {
    use super::*;

    fn conn() -> Conn {
        let spec = AttemptSpec {
            target: "127.0.0.1:9".parse().unwrap(),
            connect_timeout: Duration::from_secs(1),
            response_timeout: Duration::from_secs(1),
            t0: Instant::now(),
            request: Vec::new().into(),
            close: crate::wire::Close::Fin,
        };
        // A connect to the discard port of loopback: refused or in progress, either way a
        // socket to hold.
        Conn::start(0, spec.t0, &spec, spec.t0).unwrap_or_else(|rec| {
            panic!("no socket: {:?}", rec.errno);
        })
    }

    #[test]
    fn a_token_of_an_ended_connection_never_reaches_the_next_one_in_its_slot() {
        let mut slots = Slots::default();
        let a = slots.insert(conn());
        assert!(slots.get_mut(a).is_some());
        assert!(slots.remove(a).is_some());
        assert_eq!(slots.live, 0);
        let b = slots.insert(conn());
        assert_eq!(a & 0xffff_ffff, b & 0xffff_ffff, "the slot is reused");
        assert_ne!(a, b);
        assert!(slots.get_mut(a).is_none());
        assert!(slots.remove(a).is_none());
        assert_eq!(slots.live, 1);
        let c = slots.insert(conn());
        assert_eq!(slots.drain().len(), 2);
        assert!(slots.get_mut(b).is_none() && slots.get_mut(c).is_none());
        assert_eq!(slots.live, 0);
    }
}
