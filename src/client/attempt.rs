//! One short connection: non-blocking connect with a timeout, send the request (unless the server
//! speaks first), read the whole response with a timeout, read TCP_INFO, close. Classifies the
//! end into one [`Outcome`].

use std::net::SocketAddr;
use std::os::fd::AsRawFd;
use std::time::{Duration, Instant};

use socket2::{Domain, Protocol, Socket, Type};
use tokio::io::AsyncWriteExt;
use tokio::net::TcpStream;
use tokio::time::timeout_at;

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

/// Runs attempt `id`, scheduled at `scheduled`. When `abandon` turns true (a second stop
/// signal) it ends at once as [`Outcome::Abandoned`], keeping what it had recorded so far.
pub async fn run(
    id: u64,
    scheduled: Instant,
    spec: &AttemptSpec,
    mut abandon: tokio::sync::watch::Receiver<bool>,
) -> ConnRecord {
    let started = Instant::now();
    let mut rec = ConnRecord {
        id,
        scheduled_us: us(spec.t0, scheduled),
        started_us: us(spec.t0, started),
        connected_us: None,
        first_byte_us: None,
        finished_us: 0,
        outcome: Outcome::Other,
        errno: None,
        retransmits: 0,
        local_port: None,
        bytes: 0,
    };
    let (outcome, err) = tokio::select! {
        r = exchange(&mut rec, started, spec) => r,
        Ok(_) = abandon.wait_for(|a| *a) => (Outcome::Abandoned, None),
    };
    rec.outcome = outcome;
    rec.errno = err.and_then(|e| e.raw_os_error());
    rec.finished_us = us(spec.t0, Instant::now());
    rec
}

/// The row of attempt `id`, due at `scheduled`, that never started because the client's
/// in-flight budget was spent: no socket, no times but its own.
pub fn not_started(id: u64, scheduled: Instant, spec: &AttemptSpec) -> ConnRecord {
    let now = us(spec.t0, Instant::now());
    ConnRecord {
        id,
        scheduled_us: us(spec.t0, scheduled),
        started_us: now,
        connected_us: None,
        first_byte_us: None,
        finished_us: now,
        outcome: Outcome::NotStarted,
        errno: None,
        retransmits: 0,
        local_port: None,
        bytes: 0,
    }
}

async fn exchange(
    rec: &mut ConnRecord,
    started: Instant,
    spec: &AttemptSpec,
) -> (Outcome, Option<std::io::Error>) {
    let socket = match Socket::new(
        Domain::for_address(spec.target),
        Type::STREAM.nonblocking().cloexec(),
        Some(Protocol::TCP),
    ) {
        Ok(s) => s,
        // Out of descriptors (the lab's own server shares them): the attempt cannot start,
        // which is the client's limit, as when its in-flight budget is spent.
        Err(e) if matches!(e.raw_os_error(), Some(libc::EMFILE | libc::ENFILE)) => {
            return (Outcome::NotStarted, Some(e))
        }
        Err(e) => return (Outcome::Other, Some(e)),
    };
    let _ = socket.set_tcp_nodelay(true);
    match socket.connect(&spec.target.into()) {
        Ok(()) => {}
        Err(e) if e.raw_os_error() == Some(libc::EINPROGRESS) => {}
        Err(e) => return (Outcome::of_connect_error(&e), Some(e)),
    }
    // The port is bound once the SYN is on its way: recorded now, so that a connect that never
    // completes can still be found in drops.csv (its SYN retransmissions carry this port).
    rec.local_port = socket
        .local_addr()
        .ok()
        .and_then(|a| a.as_socket())
        .map(|a| a.port());
    let stream = match TcpStream::from_std(socket.into()) {
        Ok(s) => s,
        Err(e) => return (Outcome::Other, Some(e)),
    };
    let connect = async {
        stream.writable().await?;
        match stream.take_error()? {
            Some(e) => Err(e),
            None => Ok(()),
        }
    };
    let deadline = (started + spec.connect_timeout).into();
    match timeout_at(deadline, connect).await {
        Err(_) => {
            rec.retransmits = total_retrans(&stream);
            return (Outcome::ConnectTimeout, None);
        }
        Ok(Err(e)) => {
            rec.retransmits = total_retrans(&stream);
            return (Outcome::of_connect_error(&e), Some(e));
        }
        Ok(Ok(())) => {}
    }
    let connected = Instant::now();
    rec.connected_us = Some(us(spec.t0, connected));

    let mut stream = stream;
    let mut first_byte = None;
    let mut bytes = 0u64;
    let talk = async {
        if !spec.request.is_empty() {
            stream.write_all(&spec.request).await?;
        }
        // The response is counted, not kept: it is read into the worker thread's scratch
        // buffer, so that the connection's future holds no buffer of its own (4 KB more per
        // connection in flight, copied each time the future moved).
        loop {
            stream.readable().await?;
            let n = match SCRATCH.with_borrow_mut(|b| stream.try_read(b)) {
                Ok(0) => return Ok::<_, std::io::Error>(()),
                Ok(n) => n,
                Err(e) if e.kind() == std::io::ErrorKind::WouldBlock => continue,
                Err(e) => return Err(e),
            };
            first_byte.get_or_insert_with(Instant::now);
            bytes += n as u64;
        }
    };
    let result = timeout_at((connected + spec.response_timeout).into(), talk).await;
    rec.first_byte_us = first_byte.map(|t| us(spec.t0, t));
    rec.bytes = bytes;
    rec.retransmits = total_retrans(&stream);
    if spec.close == crate::wire::Close::Rst {
        // Linger 0: the close() when `stream` drops sends an RST instead of a FIN.
        let _ = socket2::SockRef::from(&stream).set_linger(Some(Duration::ZERO));
    }
    match result {
        Err(_) => (Outcome::ResponseTimeout, None),
        Ok(Err(e)) => (Outcome::of_exchange_error(&e), Some(e)),
        Ok(Ok(())) if bytes == 0 => (Outcome::ClosedWithoutResponse, None),
        Ok(Ok(())) => (Outcome::Ok, None),
    }
}

thread_local! {
    /// Where each storm worker reads responses into (their bytes are only counted).
    static SCRATCH: std::cell::RefCell<Vec<u8>> = std::cell::RefCell::new(vec![0; 16 * 1024]);
}

/// `tcp_info.tcpi_total_retrans`: every retransmission of this socket, SYNs included.
fn total_retrans(stream: &TcpStream) -> u32 {
    let mut info: libc::tcp_info = unsafe { std::mem::zeroed() };
    let mut len = std::mem::size_of::<libc::tcp_info>() as libc::socklen_t;
    // SAFETY: a valid fd and a buffer of the advertised length.
    let rc = unsafe {
        libc::getsockopt(
            stream.as_raw_fd(),
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
