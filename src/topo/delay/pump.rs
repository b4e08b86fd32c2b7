//! The pump: the one thread that moves packets between the two TUN devices. Each pass it
//! delivers what is due in each direction, takes in what each namespace sent (deciding loss and
//! stamping a due time), and, when neither had anything to do, sleeps in `ppoll` until [`SPIN`]
//! before the earliest due time, then spins. Kept apart from [`DelayLine`](super::DelayLine),
//! which only starts, tunes and stops it, because this is the hot path: nothing here allocates
//! or makes a syscall per packet beyond the packet's own `read` and `write`.

use std::cmp::Reverse;
use std::collections::{BinaryHeap, VecDeque};
use std::os::fd::{AsRawFd, OwnedFd, RawFd};
use std::sync::atomic::Ordering;
use std::time::{Duration, Instant};

use hdrhistogram::Histogram;
use rand::rngs::SmallRng;
use rand::{Rng, SeedableRng};

use super::{DirectionStats, Knobs};
use crate::topo::LinkPlan;

/// How long before a packet is due the pump stops sleeping and spins.
pub(super) const SPIN: Duration = Duration::from_micros(200);
/// The longest the pump sleeps when nothing is queued, so it notices a stop request.
const IDLE: Duration = Duration::from_millis(20);
/// Reads per device per pass, and due writes per direction per pass: bounded so that a backlog
/// after a stall in one direction cannot starve the other or overflow a ring in one burst.
const READS_PER_PASS: usize = 64;
const WRITES_PER_PASS: usize = 128;
/// The pump's nice value (see [`pump`]).
const PUMP_NICE: libc::c_int = -10;
/// Largest packet: the devices' MTU is 1500 and offloads are off, so every read is one wire
/// packet; the slack is for safety.
const BUF: usize = 2048;

/// What the pump did, handed back when it stops.
pub(super) struct PumpResult {
    pub(super) to_server: DirectionStats,
    pub(super) to_client: DirectionStats,
    pub(super) lateness: Histogram<u64>,
}

/// A packet held until `due`; `seq` keeps packets with the same due time in arrival order.
/// `packet` is always [`BUF`] long (a pooled buffer is never zeroed again); the packet is its
/// first `len` bytes.
struct Held {
    due: Instant,
    seq: u64,
    packet: Vec<u8>,
    len: usize,
}

impl PartialEq for Held {
    fn eq(&self, other: &Self) -> bool {
        (self.due, self.seq) == (other.due, other.seq)
    }
}
impl Eq for Held {}
impl PartialOrd for Held {
    fn partial_cmp(&self, other: &Self) -> Option<std::cmp::Ordering> {
        Some(self.cmp(other))
    }
}
impl Ord for Held {
    fn cmp(&self, other: &Self) -> std::cmp::Ordering {
        (self.due, self.seq).cmp(&(other.due, other.seq))
    }
}

/// The knobs as read once at the start of a pass.
#[derive(Clone, Copy)]
struct Pass {
    hold: Duration,
    /// In ns, uniform in ±jitter.
    jitter: i64,
    armed: bool,
}

impl Pass {
    fn read(knobs: &Knobs) -> Self {
        Pass {
            hold: Duration::from_nanos(knobs.hold_ns.load(Ordering::Relaxed)),
            jitter: knobs.jitter_ns.load(Ordering::Relaxed) as i64,
            armed: knobs.armed.load(Ordering::Relaxed),
        }
    }

    /// When a packet taken in at `now` is due: `now` + the hold, ± jitter once armed, never
    /// before `now`.
    fn due(&self, now: Instant, rng: &mut SmallRng) -> Instant {
        let due = now + self.hold;
        if !(self.armed && self.jitter > 0) {
            return due;
        }
        let j = rng.random_range(-self.jitter..=self.jitter);
        if j >= 0 {
            due + Duration::from_nanos(j as u64)
        } else {
            due.checked_sub(Duration::from_nanos(j.unsigned_abs()))
                .unwrap_or(now)
                .max(now)
        }
    }
}

/// One direction: packets read from `from`, held, written to `to`.
///
/// Held packets wait in two queues, each earliest due first: `fifo` takes every packet due no
/// earlier than its last one, which without jitter is every packet (a constant hold keeps
/// arrival order), at O(1); `heap` takes the ones jitter reorders. The pump delivers the
/// earlier head of the two. A heap alone: its pops were 1.4 % of the machine at 190,000
/// packets/s, its pushes more.
struct Direction {
    from: RawFd,
    to: RawFd,
    loss: f64,
    fifo: VecDeque<Held>,
    heap: BinaryHeap<Reverse<Held>>,
    seq: u64,
    stats: DirectionStats,
}

impl Direction {
    fn new(from: RawFd, to: RawFd, loss: f64) -> Self {
        Direction {
            from,
            to,
            loss,
            fifo: VecDeque::new(),
            heap: BinaryHeap::new(),
            seq: 0,
            stats: DirectionStats::default(),
        }
    }

    /// Writes up to [`WRITES_PER_PASS`] packets whose due time has come into `to`, recording
    /// how late each left and returning its buffer to `pool`. Returns whether it wrote any.
    fn deliver_due(&mut self, lateness: &mut Histogram<u64>, pool: &mut Vec<Vec<u8>>) -> bool {
        let mut busy = false;
        let now = Instant::now();
        for _ in 0..WRITES_PER_PASS {
            let Some(Held {
                due,
                packet: buf,
                len,
                ..
            }) = self.pop_due(now)
            else {
                break;
            };
            // SAFETY: writing an initialized buffer to a descriptor we hold open.
            let n = unsafe { libc::write(self.to, buf.as_ptr().cast(), len) };
            if n < 0 {
                self.stats.write_errors += 1;
            } else {
                self.stats.delivered += 1;
            }
            lateness.saturating_record((now - due).as_micros() as u64);
            pool.push(buf);
            busy = true;
        }
        busy
    }

    /// Reads up to [`READS_PER_PASS`] packets from `from` into buffers from `pool`, drops the
    /// ones `link.loss` takes (once armed) and holds the rest. Returns whether it read any.
    fn take_in(&mut self, pass: Pass, rng: &mut SmallRng, pool: &mut Vec<Vec<u8>>) -> bool {
        let mut busy = false;
        for _ in 0..READS_PER_PASS {
            // Zeroed once, when first made: memset of every read's buffer was 2 % of the machine.
            let mut buf = pool.pop().unwrap_or_else(|| vec![0; BUF]);
            // SAFETY: reading into a buffer of the length given.
            let n = unsafe { libc::read(self.from, buf.as_mut_ptr().cast(), buf.len()) };
            if n <= 0 {
                pool.push(buf);
                break;
            }
            let len = n as usize;
            busy = true;
            self.stats.packets += 1;
            self.stats.packets_armed += u64::from(pass.armed);
            if pass.armed && self.loss > 0.0 && rng.random::<f64>() < self.loss {
                self.stats.lost += 1;
                pool.push(buf);
                continue;
            }
            let due = pass.due(Instant::now(), rng);
            self.hold(due, buf, len);
        }
        busy
    }

    /// Queues the first `len` bytes of `packet` until `due`.
    fn hold(&mut self, due: Instant, packet: Vec<u8>, len: usize) {
        self.seq += 1;
        let held = Held {
            due,
            seq: self.seq,
            packet,
            len,
        };
        match self.fifo.back() {
            Some(last) if due < last.due => self.heap.push(Reverse(held)),
            _ => self.fifo.push_back(held),
        }
        self.stats.max_queued = self.stats.max_queued.max(self.held());
    }

    /// The earliest held packet if it is due by `now`.
    fn pop_due(&mut self, now: Instant) -> Option<Held> {
        let from_heap = match (self.fifo.front(), self.heap.peek()) {
            (Some(f), Some(Reverse(h))) => h < f,
            (f, h) => f.is_none() && h.is_some(),
        };
        let due = if from_heap {
            self.heap.peek()?.0.due
        } else {
            self.fifo.front()?.due
        };
        if due > now {
            return None;
        }
        if from_heap {
            self.heap.pop().map(|Reverse(h)| h)
        } else {
            self.fifo.pop_front()
        }
    }

    /// The earliest due time held, if any.
    fn next_due(&self) -> Option<Instant> {
        let f = self.fifo.front().map(|h| h.due);
        let h = self.heap.peek().map(|Reverse(h)| h.due);
        f.into_iter().chain(h).min()
    }

    /// Packets held.
    fn held(&self) -> u64 {
        (self.fifo.len() + self.heap.len()) as u64
    }
}

/// After a pass with nothing to do: sleeps in `ppoll` on both devices until [`SPIN`] before
/// the earliest due time (at most [`IDLE`]), or, already that close, spins once.
fn wait(dirs: &[Direction; 2], fds: &mut [libc::pollfd; 2]) {
    let now = Instant::now();
    let next = dirs.iter().filter_map(Direction::next_due).min();
    let wait = match next {
        None => IDLE,
        Some(due) => due.saturating_duration_since(now + SPIN).min(IDLE),
    };
    if wait.is_zero() {
        std::hint::spin_loop();
        return;
    }
    let ts = libc::timespec {
        tv_sec: wait.as_secs() as libc::time_t,
        tv_nsec: wait.subsec_nanos() as libc::c_long,
    };
    // SAFETY: two valid pollfds and a timespec on the stack.
    unsafe { libc::ppoll(fds.as_mut_ptr(), 2, &ts, std::ptr::null()) };
}

/// The pump thread's body: runs passes until `knobs.stop`, then reports.
pub(super) fn pump(
    server_tun: OwnedFd,
    client_tun: OwnedFd,
    plan: &LinkPlan,
    knobs: &Knobs,
) -> PumpResult {
    // SAFETY: prctl with an integer argument affects only this thread.
    unsafe { libc::prctl(libc::PR_SET_TIMERSLACK, 1 as libc::c_ulong, 0, 0, 0) };
    // The pump is the wire: on a small machine the storm's or the benchmark's own threads
    // would otherwise take its core for tens of ms at a time, and the TUN ring (10,000 packets,
    // 50 ms at 200,000/s) overflowed at a 200,000/s pace (164,000-168,000/s delivered, at nice
    // 0; 197,000-200,000/s at -10). Its price: it spins for the last SPIN before each due
    // time, so under steady traffic it holds most of a core, now against the endpoints at a
    // higher weight. Where the lab may not raise its priority, it runs at its own.
    // SAFETY: setpriority on this thread's own id.
    unsafe { libc::setpriority(libc::PRIO_PROCESS, libc::gettid() as libc::id_t, PUMP_NICE) };
    let (server, client) = (server_tun.as_raw_fd(), client_tun.as_raw_fd());
    let mut dirs = [
        Direction::new(client, server, plan.loss_to_server),
        Direction::new(server, client, plan.loss_to_client),
    ];
    let mut rng = SmallRng::seed_from_u64(plan.seed);
    let mut lateness = Histogram::<u64>::new_with_bounds(1, 60_000_000, 3).expect("valid bounds");
    let mut pool: Vec<Vec<u8>> = Vec::new();
    let poll = |fd| libc::pollfd {
        fd,
        events: libc::POLLIN,
        revents: 0,
    };
    let mut fds = [poll(client), poll(server)];
    while !knobs.stop.load(Ordering::Relaxed) {
        let pass = Pass::read(knobs);
        let mut busy = false;
        for d in &mut dirs {
            busy |= d.deliver_due(&mut lateness, &mut pool);
            busy |= d.take_in(pass, &mut rng, &mut pool);
        }
        if !busy {
            // Published only when idle: cheap, and exact whenever the link has gone quiet.
            let held = dirs.iter().map(Direction::held).sum();
            knobs.held.store(held, Ordering::Relaxed);
            wait(&dirs, &mut fds);
        }
    }
    for d in &mut dirs {
        d.stats.held_at_stop = d.held();
    }
    PumpResult {
        to_server: std::mem::take(&mut dirs[0].stats),
        to_client: std::mem::take(&mut dirs[1].stats),
        lateness,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Packets leave earliest due first, and those due at once in arrival order, whether they
    /// came in order (the FIFO) or jitter reordered them (the heap).
    #[test]
    fn held_packets_leave_in_due_order_across_both_queues() {
        let mut d = Direction::new(-1, -1, 0.0);
        let t = Instant::now();
        let ms = |n: u64| t + Duration::from_millis(n);
        for (i, due) in [5, 7, 3, 7, 9, 1, 7, 8].into_iter().enumerate() {
            d.hold(ms(due), vec![i as u8; BUF], 1);
        }
        assert_eq!(d.held(), 8);
        assert_eq!(d.next_due(), Some(ms(1)));
        assert!(d.pop_due(ms(0)).is_none(), "nothing is due yet");
        let mut order = Vec::new();
        while let Some(h) = d.pop_due(ms(8)) {
            order.push((h.packet[0], h.len));
        }
        // Due 1, 3, 5, 7 (packets 1, 3 and 6 in arrival order), 8; 9 is not due at 8.
        let ids: Vec<u8> = order.iter().map(|(id, _)| *id).collect();
        assert_eq!(ids, [5, 2, 0, 1, 3, 6, 7]);
        assert!(order.iter().all(|(_, len)| *len == 1));
        assert_eq!(d.next_due(), Some(ms(9)));
        assert_eq!(d.pop_due(ms(9)).map(|h| h.packet[0]), Some(4));
        assert_eq!(d.held(), 0);
    }
}
