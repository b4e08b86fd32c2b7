//! One short connection: non-blocking connect with a timeout, send the request (unless the server
//! speaks first), read the whole response with a timeout, read TCP_INFO, close. Classifies the
//! end into one [`Outcome`].
//!
//! A [`Conn`] is a state machine that the storm's event loop ([`super::engine`]) drives: it
//! starts the connect, advances on each readiness event and ends when its deadline passes. It
//! never blocks and never waits itself, so a worker thread carries thousands of them.

use std::io::{self, Read};
use std::net::SocketAddr;
use std::os::fd::AsRawFd;
use std::time::{Duration, Instant};

use socket2::{Domain, Protocol, Socket, Type};

use crate::record::{ConnRecord, Outcome};

/// What every attempt of a storm shares.
#[derive(Debug, Clone)]
pub struct AttemptSpec {
    pub target: SocketAddr,
    pub connect_timeout: Duration,
    pub response_timeout: Duration,
    pub t0: Instant,
    /// What the client sends after connecting; empty when the server speaks first.
    pub request: std::sync::Arc<[u8]>,
    /// How the connection ends: a FIN, or an RST (`SO_LINGER` 0).
    pub close: crate::wire::Close,
}

fn us(t0: Instant, t: Instant) -> u64 {
    t.saturating_duration_since(t0).as_micros() as u64
}

/// Requests up to this size (RFC 1122's default MSS) go out in one `send()` on a connection
/// with nothing in flight, which Nagle (Linux's Minshall variant) never holds back.
const ONE_SEGMENT: usize = 536;

/// What one readiness event says of a socket.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Readiness {
    /// `EPOLLOUT`: the handshake ended, or there is buffer space.
    pub writable: bool,
    /// `EPOLLIN` or `EPOLLRDHUP`: bytes, or the peer's FIN.
    pub readable: bool,
    /// `EPOLLERR` or `EPOLLHUP`: a pending error, or the connection is closed.
    pub error: bool,
}

impl Readiness {
    pub fn of(mask: u32) -> Readiness {
        let any = |bits: libc::c_int| mask & bits as u32 != 0;
        Readiness {
            writable: any(libc::EPOLLOUT),
            readable: any(libc::EPOLLIN | libc::EPOLLRDHUP),
            error: any(libc::EPOLLERR | libc::EPOLLHUP),
        }
    }
}

/// Where a connection stands.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Phase {
    /// The SYN is out; waiting for the handshake (until `connect_timeout` from the start).
    Connecting,
    /// Connected: sending the request, then reading the response to its end (until
    /// `response_timeout` from the connect).
    Talking,
}

/// A connection in flight.
pub struct Conn {
    socket: Socket,
    rec: ConnRecord,
    phase: Phase,
    /// Request bytes sent so far.
    sent: usize,
    first_byte: Option<Instant>,
}

/// How a step ended the connection: its outcome and errno.
pub type End = (Outcome, Option<i32>);

impl Conn {
    /// Starts attempt `id`, scheduled at `scheduled`: a socket and a non-blocking connect.
    /// A start that fails at once is returned as the finished record.
    pub fn start(
        id: u64,
        scheduled: Instant,
        spec: &AttemptSpec,
        now: Instant,
    ) -> Result<Conn, ConnRecord> {
        let mut rec = fresh(id, scheduled, spec, now);
        let fail = |mut rec: ConnRecord, outcome, e: io::Error| {
            rec.outcome = outcome;
            rec.errno = e.raw_os_error();
            rec.finished_us = us(spec.t0, Instant::now());
            rec
        };
        let socket = match Socket::new(
            Domain::for_address(spec.target),
            Type::STREAM.nonblocking().cloexec(),
            Some(Protocol::TCP),
        ) {
            Ok(s) => s,
            // Out of descriptors (the lab's own server shares them): the attempt cannot start,
            // which is the client's limit, as when its in-flight budget is spent.
            Err(e) if matches!(e.raw_os_error(), Some(libc::EMFILE | libc::ENFILE)) => {
                return Err(fail(rec, Outcome::NotStarted, e))
            }
            Err(e) => return Err(fail(rec, Outcome::Other, e)),
        };
        // Nagle holds back only a segment sent while an earlier one is unacknowledged: a
        // request that fits one segment goes out at once without TCP_NODELAY, and the
        // setsockopt is a syscall per connection saved.
        if spec.request.len() > ONE_SEGMENT {
            let _ = socket.set_tcp_nodelay(true);
        }
        match socket.connect(&spec.target.into()) {
            Ok(()) => {}
            Err(e) if e.raw_os_error() == Some(libc::EINPROGRESS) => {}
            Err(e) => return Err(fail(rec, Outcome::of_connect_error(&e), e)),
        }
        // The port is bound once the SYN is on its way: recorded now, so that a connect that
        // never completes can still be found in drops.csv (its SYN retransmissions carry it).
        rec.local_port = socket
            .local_addr()
            .ok()
            .and_then(|a| a.as_socket())
            .map(|a| a.port());
        Ok(Conn {
            socket,
            rec,
            phase: Phase::Connecting,
            sent: 0,
            first_byte: None,
        })
    }

    pub fn socket(&self) -> &Socket {
        &self.socket
    }

    pub fn phase(&self) -> Phase {
        self.phase
    }

    /// Goes as far as the socket lets it after a readiness event. `scratch` takes the response
    /// bytes, which are only counted. Returns the end once there is one; `Ok(true)` when it
    /// just connected (its response deadline starts now).
    pub fn advance(
        &mut self,
        ready: Readiness,
        spec: &AttemptSpec,
        scratch: &mut [u8],
    ) -> Result<bool, End> {
        let mut connected = false;
        if self.phase == Phase::Connecting {
            if !ready.writable && !ready.error {
                return Ok(false);
            }
            // The handshake's end, or its failure. Every failed connect ends in `tcp_done`
            // (TCP_CLOSE, its error set first), for which `tcp_poll` always raises EPOLLHUP, so
            // SO_ERROR is asked for only then. (TCP_FASTOPEN_CONNECT's deferred connect would
            // report EPOLLOUT before the handshake; the storm does not use it.)
            if ready.error {
                match self.socket.take_error() {
                    Ok(None) => {}
                    Ok(Some(e)) | Err(e) => {
                        self.rec.retransmits = total_retrans(&self.socket);
                        return Err((Outcome::of_connect_error(&e), e.raw_os_error()));
                    }
                }
            }
            self.phase = Phase::Talking;
            self.rec.connected_us = Some(us(spec.t0, Instant::now()));
            connected = true;
        }
        while self.sent < spec.request.len() {
            match self
                .socket
                .send_with_flags(&spec.request[self.sent..], libc::MSG_NOSIGNAL)
            {
                Ok(n) => self.sent += n,
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => return Ok(connected),
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                Err(e) => return Err(self.exchange_error(&e)),
            }
        }
        // The response is counted, not kept: edge-triggered readiness, so read until the
        // socket has nothing more. Nothing to read in this event (the usual case right after
        // the request went out): the bytes' arrival will be an event of its own.
        if !ready.readable && !ready.error {
            return Ok(connected);
        }
        loop {
            match (&self.socket).read(scratch) {
                Ok(0) if self.rec.bytes == 0 => {
                    return Err(self.ended(Outcome::ClosedWithoutResponse))
                }
                Ok(0) => return Err(self.ended(Outcome::Ok)),
                Ok(n) => {
                    self.first_byte.get_or_insert_with(Instant::now);
                    self.rec.bytes += n as u64;
                }
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => return Ok(connected),
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                Err(e) => return Err(self.exchange_error(&e)),
            }
        }
    }

    /// The end of a connection whose deadline passed in its current phase.
    pub fn timed_out(&mut self) -> End {
        self.rec.retransmits = total_retrans(&self.socket);
        match self.phase {
            Phase::Connecting => (Outcome::ConnectTimeout, None),
            Phase::Talking => (Outcome::ResponseTimeout, None),
        }
    }

    fn ended(&mut self, outcome: Outcome) -> End {
        self.rec.retransmits = total_retrans(&self.socket);
        (outcome, None)
    }

    fn exchange_error(&mut self, e: &io::Error) -> End {
        self.rec.retransmits = total_retrans(&self.socket);
        (Outcome::of_exchange_error(e), e.raw_os_error())
    }

    /// Closes the connection (with an RST if the storm says so and it had connected) and
    /// returns its record.
    pub fn finish(self, (outcome, errno): End, spec: &AttemptSpec) -> ConnRecord {
        let mut rec = self.rec;
        rec.first_byte_us = self.first_byte.map(|t| us(spec.t0, t));
        if spec.close == crate::wire::Close::Rst && self.phase == Phase::Talking {
            // Linger 0: the close() when `socket` drops sends an RST instead of a FIN.
            let _ = self.socket.set_linger(Some(Duration::ZERO));
        }
        rec.outcome = outcome;
        rec.errno = errno;
        rec.finished_us = us(spec.t0, Instant::now());
        rec
    }
}

/// The row of attempt `id`, due at `scheduled`, that never started because the client's
/// in-flight budget was spent: no socket, no times but its own.
pub fn not_started(id: u64, scheduled: Instant, spec: &AttemptSpec, now: Instant) -> ConnRecord {
    let mut rec = fresh(id, scheduled, spec, now);
    rec.outcome = Outcome::NotStarted;
    rec.finished_us = rec.started_us;
    rec
}

/// The record of attempt `id` as it starts at `now`: nothing known yet but its times.
fn fresh(id: u64, scheduled: Instant, spec: &AttemptSpec, now: Instant) -> ConnRecord {
    ConnRecord {
        id,
        scheduled_us: us(spec.t0, scheduled),
        started_us: us(spec.t0, now),
        connected_us: None,
        first_byte_us: None,
        finished_us: 0,
        outcome: Outcome::Other,
        errno: None,
        retransmits: 0,
        local_port: None,
        bytes: 0,
    }
}

/// `tcp_info.tcpi_total_retrans`: every retransmission of this socket, SYNs included.
fn total_retrans(socket: &Socket) -> u32 {
    let mut info: libc::tcp_info = unsafe { std::mem::zeroed() };
    let mut len = std::mem::size_of::<libc::tcp_info>() as libc::socklen_t;
    // SAFETY: a valid fd and a buffer of the advertised length.
    let rc = unsafe {
        libc::getsockopt(
            socket.as_raw_fd(),
            libc::IPPROTO_TCP,
            libc::TCP_INFO,
            &mut info as *mut _ as *mut libc::c_void,
            &mut len,
        )
    };
    if rc == 0 {
        info.tcpi_total_retrans
    } else {
        0
    }
}
