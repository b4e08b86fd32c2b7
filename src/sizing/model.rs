//! The model: a discrete-event simulation of both listen queues under the storm's own schedule,
//! with the kernel's rules. It is the honest model because retries make the load depend on the
//! queue: a SYN dropped at a full accept queue comes back one retransmission step later and adds
//! to the load then (a retrial queue), which no closed form captures for bursts and pauses.
//!
//! What it follows, per connection:
//! - the SYN reaches the server half an RTT after `connect()`. It is dropped when the accept
//!   queue is full (it holds limit + 1: `sk_acceptq_is_full`), counted as a ListenOverflow, and
//!   retransmitted at the client's SYN timer marks ([`crate::plan::retries`]) until
//!   `client.connect_timeout` or the kernel gives up;
//! - else it takes a request socket in the SYN queue (limit + 1 since 6.14), or a cookie when
//!   that is full and syncookies allow it (always with syncookies 2); with syncookies 0 a full
//!   SYN queue, or the 3/4 rule of `tcp_max_syn_backlog`, drops it (TCPReqQFullDrop);
//! - the final ACK arrives one RTT after the SYN. At a full accept queue it is an overflow too:
//!   with `tcp_abort_on_overflow` the request is reset (EmbryonicRsts, the client's
//!   `reset_after_connect`); else it stays and is retried when the server retransmits its
//!   SYN-ACK (1, 3, 7 ... s) and, when the client talks first, when the client retransmits its
//!   request (RTO from 200 ms, doubling). A cookie is never reset: its ACK is dropped silently;
//! - the server takes it off the accept queue by its accept policy; the answer reaches the client
//!   half an RTT later, within `client.response_timeout` or not.
//!
//! Left out, and said so where the answer is printed: loss and jitter on the link, the SYN flood,
//! the time the lab's own fast server takes per accept (taken as zero), and the machine's
//! scheduling delays.

use std::cmp::Reverse;
use std::collections::{BinaryHeap, VecDeque};

use super::workload::{Acceptor, Workload, SECOND};
use crate::record::outcome::Outcome;

/// What the model predicts for one accept-queue limit.
#[derive(Debug, Clone, Default)]
pub struct Prediction {
    /// The accept-queue limit simulated (the backlog after the somaxconn clamp).
    pub limit: u32,
    /// The longest the accept queue got, and when it first got there.
    pub accept_queue_peak: u32,
    pub peak_at_ns: u64,
    /// The most request sockets in the SYN queue at once.
    pub syn_queue_peak: u32,
    /// SYNs dropped because the accept queue was full.
    pub syn_drops_accept_full: u64,
    /// Final ACKs (or request data) that found the accept queue full.
    pub ack_overflows: u64,
    /// SYNs dropped by the SYN queue (full, or the 3/4 rule with syncookies 0).
    pub syn_queue_drops: u64,
    pub cookies_sent: u64,
    pub embryonic_resets: u64,
    /// SYN retransmissions by the clients, SYN-ACK retransmissions by the server.
    pub client_syn_retrans: u64,
    pub server_synack_retrans: u64,
    /// Each connection's outcome.
    pub outcomes: Vec<Outcome>,
    /// Connect latency from the scheduled start, µs, of those that connected.
    pub connect_us: Vec<u64>,
    /// First response byte from the scheduled start, µs, of the `ok` ones.
    pub response_us: Vec<u64>,
}

impl Prediction {
    /// TcpExt.ListenOverflows: every SYN or ACK that met a full accept queue.
    pub fn listen_overflows(&self) -> u64 {
        self.syn_drops_accept_full + self.ack_overflows
    }

    /// TcpExt.ListenDrops: the overflows and the SYN queue's drops.
    pub fn listen_drops(&self) -> u64 {
        self.listen_overflows() + self.syn_queue_drops
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum State {
    Connecting,
    /// Handshake half done: a request socket (or a cookie) waits for an ACK that finds room.
    HalfOpen,
    Queued,
    Done,
}

#[derive(Debug, Clone, Copy)]
struct Conn {
    start: u64,
    /// SYN retransmissions made so far.
    attempt: u32,
    state: State,
    cookie: bool,
    connected: u64,
    /// When the first SYN-ACK was sent, and the retransmissions of each side already pending.
    synack_at: u64,
    synack_next: u32,
    data_next: u32,
    synack_pending: bool,
    data_pending: bool,
    outcome: Option<Outcome>,
}

// Event kinds, in the order they run when they fall on the same nanosecond.
const SYN: u8 = 0;
const ACK: u8 = 1;
const ACK_SYNACK: u8 = 2;
const ACK_DATA: u8 = 3;
const ACCEPT: u8 = 4;
const WINDOW_END: u8 = 5;
const WORKER_FREE: u8 = 6;

struct Sim<'a> {
    w: &'a Workload,
    limit: u32,
    syn_holds: u32,
    events: BinaryHeap<Reverse<(u64, u64, u8, u32)>>,
    seq: u64,
    conns: Vec<Conn>,
    queue: VecDeque<u32>,
    syn_queue: u32,
    next_accept_ns: u64,
    accept_pending: bool,
    free_workers: u32,
    p: Prediction,
}

/// Simulates `w` with an accept-queue limit of `limit`.
pub fn simulate(w: &Workload, limit: u32) -> Prediction {
    let mut sim = Sim::new(w, limit);
    while let Some(Reverse((t, _, kind, c))) = sim.events.pop() {
        match kind {
            SYN => sim.syn(c, t),
            ACK => sim.ack(c, t),
            ACK_SYNACK => {
                sim.conns[c as usize].synack_pending = false;
                if sim.conns[c as usize].state == State::HalfOpen {
                    sim.p.server_synack_retrans += 1;
                }
                sim.ack(c, t)
            }
            ACK_DATA => {
                sim.conns[c as usize].data_pending = false;
                sim.ack(c, t)
            }
            ACCEPT => sim.accept_tick(t),
            WINDOW_END => {
                while let Some(c) = sim.queue.pop_front() {
                    sim.served(c, t, 0);
                }
            }
            WORKER_FREE => {
                sim.free_workers += 1;
                sim.take_by_worker(t);
            }
            _ => unreachable!("no other event kind"),
        }
    }
    sim.finish()
}

impl<'a> Sim<'a> {
    fn new(w: &'a Workload, limit: u32) -> Sim<'a> {
        let conn = |start| Conn {
            start,
            attempt: 0,
            state: State::Connecting,
            cookie: false,
            connected: 0,
            synack_at: 0,
            synack_next: 0,
            data_next: 0,
            synack_pending: false,
            data_pending: false,
            outcome: None,
        };
        let mut sim = Sim {
            w,
            limit,
            syn_holds: limit + u32::from(w.syn_queue_one_more),
            events: BinaryHeap::with_capacity(w.starts.len() * 2),
            seq: 0,
            conns: w.starts.iter().map(|s| conn(*s)).collect(),
            queue: VecDeque::new(),
            syn_queue: 0,
            next_accept_ns: 0,
            accept_pending: false,
            free_workers: match w.acceptor {
                Acceptor::Workers { count, .. } => count,
                _ => 0,
            },
            p: Prediction {
                limit,
                ..Default::default()
            },
        };
        for (i, s) in w.starts.iter().enumerate() {
            sim.at(s + w.rtt_ns / 2, SYN, i as u32);
        }
        if let Acceptor::Pause { windows } = &w.acceptor {
            for (_, end) in windows.clone() {
                sim.at(end, WINDOW_END, 0);
            }
        }
        sim
    }

    fn at(&mut self, t: u64, kind: u8, c: u32) {
        self.seq += 1;
        self.events.push(Reverse((t, self.seq, kind, c)));
    }

    /// A SYN (first or retransmitted) reaches the server.
    fn syn(&mut self, c: u32, t: u64) {
        let w = self.w;
        if self.conns[c as usize].state != State::Connecting {
            return;
        }
        let syn_full = self.syn_queue >= self.syn_holds;
        let want_cookie = w.syncookies == 2 || (syn_full && w.syncookies != 0);
        let three_quarters =
            w.max_syn_backlog.saturating_sub(self.syn_queue) < w.max_syn_backlog / 4;
        if syn_full && w.syncookies == 0 {
            self.p.syn_queue_drops += 1;
            return self.retry_syn(c);
        }
        if self.queue.len() as u32 > self.limit {
            self.p.syn_drops_accept_full += 1;
            return self.retry_syn(c);
        }
        if !want_cookie && w.syncookies == 0 && three_quarters {
            self.p.syn_queue_drops += 1;
            return self.retry_syn(c);
        }
        let connected = t + w.rtt_ns / 2;
        let conn = &mut self.conns[c as usize];
        if connected - conn.start >= w.connect_timeout_ns {
            conn.state = State::Done;
            conn.outcome = Some(Outcome::ConnectTimeout);
            return;
        }
        conn.state = State::HalfOpen;
        conn.cookie = want_cookie;
        conn.connected = connected;
        conn.synack_at = t;
        self.p.connect_us.push((connected - conn.start) / 1000);
        if want_cookie {
            self.p.cookies_sent += 1;
        } else {
            self.syn_queue += 1;
            self.p.syn_queue_peak = self.p.syn_queue_peak.max(self.syn_queue);
        }
        if w.rtt_ns == 0 {
            // On veth the handshake completes before the storm's next connect(): at once.
            self.ack(c, t);
        } else {
            self.at(t + w.rtt_ns, ACK, c);
        }
    }

    /// The client retransmits its SYN at the next mark, or gives up.
    fn retry_syn(&mut self, c: u32) {
        let w = self.w;
        let conn = &mut self.conns[c as usize];
        let next = w.syn_retries_ns.get(conn.attempt as usize).copied();
        match next {
            Some(after) if after < w.connect_timeout_ns.min(w.syn_give_up_ns) => {
                conn.attempt += 1;
                let at = conn.start + after + w.rtt_ns / 2;
                self.p.client_syn_retrans += 1;
                self.at(at, SYN, c);
            }
            _ => {
                conn.state = State::Done;
                conn.outcome = Some(Outcome::ConnectTimeout);
            }
        }
    }

    /// An ACK of the handshake (the first, one answering a retransmitted SYN-ACK, or request
    /// data) reaches the server.
    fn ack(&mut self, c: u32, t: u64) {
        if self.conns[c as usize].state != State::HalfOpen {
            return;
        }
        if self.queue.len() as u32 > self.limit {
            self.p.ack_overflows += 1;
            let conn = &mut self.conns[c as usize];
            if self.w.abort_on_overflow && !conn.cookie {
                conn.state = State::Done;
                conn.outcome = Some(Outcome::ResetAfterConnect);
                self.syn_queue -= 1;
                self.p.embryonic_resets += 1;
            } else {
                self.retry_ack(c, t);
            }
            return;
        }
        let conn = &mut self.conns[c as usize];
        conn.state = State::Queued;
        if !conn.cookie {
            self.syn_queue -= 1;
        }
        self.queue.push_back(c);
        let len = self.queue.len() as u32;
        if len > self.p.accept_queue_peak {
            self.p.accept_queue_peak = len;
            self.p.peak_at_ns = t;
        }
        self.queued(t);
    }

    /// The next chances of an ACK that met a full queue: the server's next SYN-ACK
    /// retransmission (request sockets only) and the client's next request retransmission.
    fn retry_ack(&mut self, c: u32, t: u64) {
        let w = self.w;
        let conn = self.conns[c as usize];
        let deadline = conn.connected + w.response_timeout_ns;
        if !conn.cookie && !conn.synack_pending {
            let mut j = conn.synack_next as usize;
            while let Some(after) = w.synack_retries_ns.get(j) {
                j += 1;
                let at = conn.synack_at + after + w.rtt_ns;
                if at > t {
                    self.conns[c as usize].synack_pending = true;
                    self.at(at, ACK_SYNACK, c);
                    break;
                }
            }
            self.conns[c as usize].synack_next = j as u32;
        }
        if w.client_first && !conn.data_pending {
            let rto = w.rtt_ns + (2 * w.rtt_ns).max(SECOND / 5);
            let mut k = conn.data_next;
            loop {
                let after = rto * ((2u64 << k.min(20)) - 1);
                k += 1;
                let at = conn.connected + after + w.rtt_ns / 2;
                if at >= deadline {
                    break;
                }
                if at > t {
                    self.conns[c as usize].data_pending = true;
                    self.at(at, ACK_DATA, c);
                    break;
                }
            }
            self.conns[c as usize].data_next = k;
        }
    }

    /// A connection joined the accept queue at `t`: the server's accept policy decides.
    fn queued(&mut self, t: u64) {
        match &self.w.acceptor {
            Acceptor::Fast => self.take(t, 0),
            Acceptor::Never => {}
            Acceptor::Rate { gap_ns } => {
                if !self.accept_pending {
                    if self.next_accept_ns <= t {
                        self.take(t, 0);
                        self.next_accept_ns = t + gap_ns;
                        self.schedule_accept();
                    } else {
                        self.accept_pending = true;
                        self.at(self.next_accept_ns, ACCEPT, 0);
                    }
                }
            }
            Acceptor::Pause { windows } => {
                if !windows.iter().any(|(s, e)| (*s..*e).contains(&t)) {
                    self.take(t, 0);
                }
            }
            Acceptor::Workers { .. } => self.take_by_worker(t),
        }
    }

    fn schedule_accept(&mut self) {
        if !self.queue.is_empty() && !self.accept_pending {
            self.accept_pending = true;
            self.at(self.next_accept_ns, ACCEPT, 0);
        }
    }

    fn accept_tick(&mut self, t: u64) {
        self.accept_pending = false;
        if let Acceptor::Rate { gap_ns } = self.w.acceptor {
            if !self.queue.is_empty() {
                self.take(t, 0);
                self.next_accept_ns = t + gap_ns;
                self.schedule_accept();
            }
        }
    }

    fn take_by_worker(&mut self, t: u64) {
        if let Acceptor::Workers { service_ns, .. } = self.w.acceptor {
            while self.free_workers > 0 && !self.queue.is_empty() {
                self.free_workers -= 1;
                self.take(t, service_ns);
                if service_ns == 0 {
                    self.free_workers += 1;
                } else {
                    self.at(t + service_ns, WORKER_FREE, 0);
                }
            }
        }
    }

    fn take(&mut self, t: u64, service_ns: u64) {
        if let Some(c) = self.queue.pop_front() {
            self.served(c, t, service_ns);
        }
    }

    /// `accept()` returned `c` at `t`; its answer reaches the client after the service time
    /// and half an RTT.
    fn served(&mut self, c: u32, t: u64, service_ns: u64) {
        let w = self.w;
        let conn = &mut self.conns[c as usize];
        conn.state = State::Done;
        let answer = t + service_ns + w.rtt_ns / 2;
        if answer - conn.connected <= w.response_timeout_ns {
            conn.outcome = Some(Outcome::Ok);
            self.p.response_us.push((answer - conn.start) / 1000);
        } else {
            conn.outcome = Some(Outcome::ResponseTimeout);
        }
    }

    fn finish(mut self) -> Prediction {
        self.p.outcomes = self
            .conns
            .iter()
            .map(|c| match (c.outcome, c.state) {
                (Some(o), _) => o,
                (None, State::Connecting) => Outcome::ConnectTimeout,
                (None, _) => Outcome::ResponseTimeout,
            })
            .collect();
        self.p
    }
}
