//! The emulated link: a userspace delay line between two TUN devices, for round-trip time,
//! jitter and loss.
//!
//! Why userspace: this kernel has no `sch_netem` (nor `fq`, `etf` or an NFQUEUE front end), so
//! nothing in the kernel can hold a packet for a time. Why TUN and not NFQUEUE: TUN needs no
//! iptables, keeps every packet in our own unbounded queue (NFQUEUE drops or, fail-open, passes
//! packets *undelayed* when its queue fills), and the packets go through unchanged, with no
//! address rewriting. The research and the measurements behind each choice are in
//! `docs/delay-line-design.md`.
//!
//! Each namespace gets a TUN device `bl-dl` (`IFF_TUN | IFF_NO_PI`: raw IPv4 packets, no ARP)
//! with the same address the veth would have had. One pump thread serves both directions: it
//! reads what one namespace's stack sends into its TUN, stamps it with a due time (now + half the
//! RTT, ± jitter, minus the pump's own measured overhead), decides loss, and writes it into the
//! other TUN when due. One thread for both directions, because a `write()` into the server's TUN
//! produces the SYN-ACK synchronously, and it is then readable at once by the same thread; two
//! threads added a cross-CPU wakeup (0.6 ms on a busy host) to every handshake.
//!
//! Timing: the thread sets its timer slack to 1 ns and sleeps in `ppoll` until [`SPIN`] before
//! the earliest due time, then spins: a plain sleep wakes 20–40 µs late at the median and
//! Tokio's timers have 1 ms granularity.
//!
//! Jitter draws each packet's one-way delay independently (uniform in ±jitter), so packets that
//! follow each other closer than the jitter can be reordered, as with netem's default. Keeping
//! order instead would push every packet behind the latest one before it and shift the whole
//! RTT distribution upwards (measured: a 20 ± 5 ms link gave a 23.7 ms median handshake).
//!
//! Nothing is lost that the scenario did not ask for: the pump's queues are unbounded and the
//! TUN rings are 10,000 packets long (a TUN drops silently when its ring is full). The rings'
//! `tx_dropped` counters are read before and after each run and reported, so a run can tell.

use std::cmp::Reverse;
use std::collections::BinaryHeap;
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd, RawFd};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Arc;
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use hdrhistogram::Histogram;
use rand::rngs::SmallRng;
use rand::{Rng, SeedableRng};
use serde::Serialize;

use super::netns::Netns;
use crate::error::Failure;
use crate::plan::LinkPlan;

/// Name of the TUN device in each namespace.
pub const DEVICE: &str = "bl-dl";
/// Ring length of each TUN device: 100 ms at 100,000 packets/s, longer than this VM's stalls.
pub const TXQUEUELEN: u32 = 10_000;
/// How long before a packet is due the pump stops sleeping and spins.
const SPIN: Duration = Duration::from_micros(200);
/// The longest the pump sleeps when nothing is queued, so it notices a stop request.
const IDLE: Duration = Duration::from_millis(20);
/// Reads per device per pass, and due writes per direction per pass: bounded so that a backlog
/// after a stall in one direction cannot starve the other or overflow a ring in one burst.
const READS_PER_PASS: usize = 64;
const WRITES_PER_PASS: usize = 128;
/// Largest packet: the devices' MTU is 1500 and offloads are off, so every read is one wire
/// packet; the slack is for safety.
const BUF: usize = 2048;

/// Opens a TUN device named [`DEVICE`] inside `ns`. The device exists as long as the returned
/// descriptor is open, so it dies with the lab, however the lab ends.
pub fn open_tun(ns: &Netns) -> Result<OwnedFd, Failure> {
    let label = ns.label();
    ns.run(|| -> std::io::Result<OwnedFd> {
        // SAFETY: plain syscalls on a path and a descriptor we own; `ifr` is a zeroed ifreq
        // (40 bytes) with the name and flags where the kernel expects them.
        unsafe {
            let fd = libc::open(
                c"/dev/net/tun".as_ptr(),
                libc::O_RDWR | libc::O_CLOEXEC | libc::O_NONBLOCK,
            );
            if fd < 0 {
                return Err(std::io::Error::last_os_error());
            }
            let fd = OwnedFd::from_raw_fd(fd);
            let mut ifr = [0u8; 40];
            ifr[..DEVICE.len()].copy_from_slice(DEVICE.as_bytes());
            let flags = (libc::IFF_TUN | libc::IFF_NO_PI) as i16;
            ifr[16..18].copy_from_slice(&flags.to_ne_bytes());
            if libc::ioctl(fd.as_raw_fd(), libc::TUNSETIFF, ifr.as_mut_ptr()) < 0 {
                return Err(std::io::Error::last_os_error());
            }
            Ok(fd)
        }
    })?
    .map_err(|e| {
        Failure::environment(format!(
            "cannot create the TUN device for the emulated link in the {label} namespace: {e}. \
             Link emulation (link.rtt, link.jitter, link.loss) needs /dev/net/tun (modprobe tun) \
             and real root: run as root, or drop the [link] settings to use a plain veth"
        ))
    })
}

/// Counts for one direction of the delay line.
#[derive(Debug, Clone, Default, Serialize)]
pub struct DirectionStats {
    /// Packets the pump read from the sending namespace.
    pub packets: u64,
    /// Dropped on purpose (`link.loss`).
    pub lost: u64,
    /// Written into the receiving namespace.
    pub delivered: u64,
    /// Writes the receiving TUN refused (should stay 0).
    pub write_errors: u64,
    /// Most packets held at once.
    pub max_queued: u64,
    /// Still held when the lab stopped (e.g. the last ACKs of connections in TIME_WAIT):
    /// `packets` = `lost` + `delivered` + `write_errors` + this.
    pub held_at_stop: u64,
}

/// What the delay line did during a run, for `summary.json`.
#[derive(Debug, Clone, Default, Serialize)]
pub struct LinkStats {
    pub rtt_ms: f64,
    pub jitter_ms: f64,
    pub loss_to_server: f64,
    pub loss_to_client: f64,
    /// The pump's own overhead per direction, measured before the run and subtracted from each
    /// packet's hold so a handshake takes the configured RTT, not RTT plus overhead.
    pub calibration_us: f64,
    /// The measured overhead was implausibly large (a stalled machine) and was capped.
    pub calibration_capped: bool,
    pub to_server: DirectionStats,
    pub to_client: DirectionStats,
    /// How late packets left the pump against their due time, µs: p50, p99 and max. Large
    /// values mean the machine stalled (the pump could not run), not a wrong delay.
    pub lateness_us_p50: u64,
    pub lateness_us_p99: u64,
    pub lateness_us_max: u64,
    /// Packets the TUN rings dropped during the run (`tx_dropped` of `bl-dl` in the server and
    /// client namespaces): loss nobody asked for. 0 in a trustworthy run.
    pub ring_drops: u64,
    /// The rings' counters could not be read, so `ring_drops` proves nothing.
    pub ring_drops_unknown: bool,
}

/// Shared settings the pump reads on every packet, so calibration can run before the delays and
/// the loss are switched on.
struct Knobs {
    /// Hold per direction, in ns, after calibration.
    hold_ns: AtomicU64,
    /// `link.jitter` in ns (uniform in ±jitter).
    jitter_ns: AtomicU64,
    /// Whether `link.loss` applies yet.
    armed: AtomicBool,
    stop: AtomicBool,
}

/// A running delay line. Dropping it stops the pump; the TUN devices go with their descriptors.
pub struct DelayLine {
    plan: LinkPlan,
    knobs: Arc<Knobs>,
    thread: Option<JoinHandle<PumpResult>>,
    calibration: Duration,
    calibration_capped: bool,
}

struct PumpResult {
    to_server: DirectionStats,
    to_client: DirectionStats,
    lateness: Histogram<u64>,
}

impl DelayLine {
    /// Starts the pump between the server's and the client's TUN descriptors, with no delay and
    /// no loss until [`DelayLine::arm`].
    pub fn start(
        server_tun: OwnedFd,
        client_tun: OwnedFd,
        plan: &LinkPlan,
    ) -> Result<Self, Failure> {
        let knobs = Arc::new(Knobs {
            hold_ns: AtomicU64::new(0),
            jitter_ns: AtomicU64::new(0),
            armed: AtomicBool::new(false),
            stop: AtomicBool::new(false),
        });
        let k = knobs.clone();
        let p = plan.clone();
        let thread = std::thread::Builder::new()
            .name("bl-delayline".into())
            .spawn(move || pump(server_tun, client_tun, &p, &k))
            .map_err(|e| Failure::environment(format!("cannot start the delay line: {e}")))?;
        Ok(DelayLine {
            plan: plan.clone(),
            knobs,
            thread: Some(thread),
            calibration: Duration::ZERO,
            calibration_capped: false,
        })
    }

    /// Holds every packet for `hold` each way, with no jitter and no loss: for calibration.
    pub fn probe(&self, hold: Duration) {
        self.knobs
            .hold_ns
            .store(hold.as_nanos() as u64, Ordering::SeqCst);
    }

    /// Switches on the configured delay, jitter and loss. `overhead` is the measured one-way
    /// cost of the path beyond the hold (the pump, the stacks, waking the receiver), subtracted
    /// from each packet's hold.
    pub fn arm(&mut self, overhead: Duration) {
        let one_way = self.plan.rtt / 2;
        // A measured overhead above the cap means the machine stalled through every batch;
        // trusting it would remove real delay (it once zeroed a 1 ms link).
        self.calibration_capped = overhead > MAX_OVERHEAD;
        self.calibration = overhead.min(MAX_OVERHEAD).min(one_way);
        let hold = one_way - self.calibration;
        self.knobs
            .hold_ns
            .store(hold.as_nanos() as u64, Ordering::SeqCst);
        self.knobs
            .jitter_ns
            .store(self.plan.jitter.as_nanos() as u64, Ordering::SeqCst);
        self.knobs.armed.store(true, Ordering::SeqCst);
    }

    /// Stops the pump and returns what it did. `ring_drops` is filled in by the caller, which
    /// reads the devices' counters.
    pub fn stop(mut self) -> LinkStats {
        self.knobs.stop.store(true, Ordering::SeqCst);
        let r = self
            .thread
            .take()
            .expect("stopped once")
            .join()
            .expect("delay line thread panicked");
        let q = |q: f64| {
            if r.lateness.is_empty() {
                0
            } else {
                r.lateness.value_at_quantile(q)
            }
        };
        LinkStats {
            rtt_ms: self.plan.rtt.as_secs_f64() * 1e3,
            jitter_ms: self.plan.jitter.as_secs_f64() * 1e3,
            loss_to_server: self.plan.loss_to_server,
            loss_to_client: self.plan.loss_to_client,
            calibration_us: self.calibration.as_secs_f64() * 1e6,
            calibration_capped: self.calibration_capped,
            to_server: r.to_server,
            to_client: r.to_client,
            lateness_us_p50: q(0.5),
            lateness_us_p99: q(0.99),
            lateness_us_max: r.lateness.max(),
            ring_drops: 0,
            ring_drops_unknown: false,
        }
    }
}

impl Drop for DelayLine {
    fn drop(&mut self) {
        self.knobs.stop.store(true, Ordering::SeqCst);
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}

/// A packet held until `due`; `seq` keeps packets with the same due time in arrival order.
struct Held {
    due: Instant,
    seq: u64,
    packet: Vec<u8>,
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

/// One direction: packets read from `from`, held, written to `to`.
struct Direction {
    from: RawFd,
    to: RawFd,
    loss: f64,
    /// Earliest due first.
    queue: BinaryHeap<Reverse<Held>>,
    seq: u64,
    stats: DirectionStats,
}

fn pump(server_tun: OwnedFd, client_tun: OwnedFd, plan: &LinkPlan, knobs: &Knobs) -> PumpResult {
    // SAFETY: prctl with an integer argument affects only this thread.
    unsafe { libc::prctl(libc::PR_SET_TIMERSLACK, 1 as libc::c_ulong, 0, 0, 0) };
    let mut dirs = [
        Direction {
            from: client_tun.as_raw_fd(),
            to: server_tun.as_raw_fd(),
            loss: plan.loss_to_server,
            queue: BinaryHeap::new(),
            seq: 0,
            stats: DirectionStats::default(),
        },
        Direction {
            from: server_tun.as_raw_fd(),
            to: client_tun.as_raw_fd(),
            loss: plan.loss_to_client,
            queue: BinaryHeap::new(),
            seq: 0,
            stats: DirectionStats::default(),
        },
    ];
    let mut rng = SmallRng::seed_from_u64(plan.seed);
    let mut lateness = Histogram::<u64>::new_with_bounds(1, 60_000_000, 3).expect("valid bounds");
    let mut pool: Vec<Vec<u8>> = Vec::new();
    let mut fds = [
        libc::pollfd {
            fd: client_tun.as_raw_fd(),
            events: libc::POLLIN,
            revents: 0,
        },
        libc::pollfd {
            fd: server_tun.as_raw_fd(),
            events: libc::POLLIN,
            revents: 0,
        },
    ];
    while !knobs.stop.load(Ordering::Relaxed) {
        let hold = Duration::from_nanos(knobs.hold_ns.load(Ordering::Relaxed));
        let jitter = knobs.jitter_ns.load(Ordering::Relaxed) as i64;
        let armed = knobs.armed.load(Ordering::Relaxed);
        let mut busy = false;
        for d in &mut dirs {
            // Deliver what is due.
            let now = Instant::now();
            for _ in 0..WRITES_PER_PASS {
                match d.queue.peek() {
                    Some(Reverse(h)) if h.due <= now => {}
                    _ => break,
                }
                let Reverse(Held {
                    due, packet: buf, ..
                }) = d.queue.pop().expect("peeked");
                // SAFETY: writing an initialized buffer to a descriptor we hold open.
                let n = unsafe { libc::write(d.to, buf.as_ptr().cast(), buf.len()) };
                if n < 0 {
                    d.stats.write_errors += 1;
                } else {
                    d.stats.delivered += 1;
                }
                lateness.saturating_record((now - due).as_micros() as u64);
                pool.push(buf);
                busy = true;
            }
            // Take in what was sent.
            for _ in 0..READS_PER_PASS {
                let mut buf = pool.pop().unwrap_or_default();
                buf.resize(BUF, 0);
                // SAFETY: reading into a buffer of the length given.
                let n = unsafe { libc::read(d.from, buf.as_mut_ptr().cast(), buf.len()) };
                if n <= 0 {
                    pool.push(buf);
                    break;
                }
                buf.truncate(n as usize);
                busy = true;
                d.stats.packets += 1;
                if armed && d.loss > 0.0 && rng.random::<f64>() < d.loss {
                    d.stats.lost += 1;
                    pool.push(buf);
                    continue;
                }
                let now = Instant::now();
                let mut due = now + hold;
                if armed && jitter > 0 {
                    let j = rng.random_range(-jitter..=jitter);
                    due = if j >= 0 {
                        due + Duration::from_nanos(j as u64)
                    } else {
                        due.checked_sub(Duration::from_nanos(j.unsigned_abs()))
                            .unwrap_or(now)
                            .max(now)
                    };
                }
                d.seq += 1;
                d.queue.push(Reverse(Held {
                    due,
                    seq: d.seq,
                    packet: buf,
                }));
                d.stats.max_queued = d.stats.max_queued.max(d.queue.len() as u64);
            }
        }
        if busy {
            continue;
        }
        let now = Instant::now();
        let next = dirs
            .iter()
            .filter_map(|d| d.queue.peek().map(|Reverse(h)| h.due))
            .min();
        let wait = match next {
            None => IDLE,
            Some(due) => due.saturating_duration_since(now + SPIN).min(IDLE),
        };
        if wait.is_zero() {
            std::hint::spin_loop();
            continue;
        }
        let ts = libc::timespec {
            tv_sec: wait.as_secs() as libc::time_t,
            tv_nsec: wait.subsec_nanos() as libc::c_long,
        };
        // SAFETY: two valid pollfds and a timespec on the stack.
        unsafe { libc::ppoll(fds.as_mut_ptr(), 2, &ts, std::ptr::null()) };
    }
    for d in &mut dirs {
        d.stats.held_at_stop = d.queue.len() as u64;
    }
    PumpResult {
        to_server: std::mem::take(&mut dirs[0].stats),
        to_client: std::mem::take(&mut dirs[1].stats),
        lateness,
    }
}

/// Handshakes timed to measure the pump's overhead.
const CALIBRATION_HANDSHAKES: usize = 120;
/// The most calibration may subtract per direction: 2–3 times what this machine measures when
/// calm (29–51 µs).
const MAX_OVERHEAD: Duration = Duration::from_micros(120);
/// ... in this many batches: the result is the lowest batch median. A VM stall only ever adds
/// time, and it comes in bursts, so one stalled batch must not decide the correction (it did:
/// a 268 µs "overhead" once made a 1 ms link 0.72 ms).
const CALIBRATION_BATCHES: usize = 3;

/// The lowest batch median of [`CALIBRATION_HANDSHAKES`] TCP handshakes over the line as it is
/// (see [`DelayLine::probe`]): what a handshake costs beyond the holds. The client side binds
/// [`super::link::CALIBRATION_ADDR`] and the server side accepts on an ephemeral port, so the
/// storm's own address and port see nothing; the counters' baseline is taken after this.
pub fn calibrate(server: &Netns, client: &Netns) -> Result<Duration, Failure> {
    use socket2::{Domain, Socket, Type};
    use std::net::SocketAddrV4;
    let failed = |what: &str, e: std::io::Error| {
        Failure::environment(format!(
            "the emulated link did not carry a TCP handshake in time ({what}: {e}); a scenario \
             sysctl that breaks TCP in the lab, or a machine too busy to run the delay line, can \
             do this: check [server.sysctl]/[client.sysctl], or retry on an idle machine"
        ))
    };
    let listener = server
        .run(|| -> std::io::Result<Socket> {
            let s = Socket::new(Domain::IPV4, Type::STREAM.cloexec(), None)?;
            s.bind(&SocketAddrV4::new(super::link::SERVER_ADDR, 0).into())?;
            s.listen(64)?;
            Ok(s)
        })?
        .map_err(|e| failed("listen", e))?;
    let target = listener
        .local_addr()
        .ok()
        .and_then(|a| a.as_socket_ipv4())
        .ok_or_else(|| failed("listen", std::io::Error::other("no local address")))?;
    std::thread::scope(|scope| {
        // Accept every calibration connection, so a small somaxconn cannot stall the next one.
        let acceptor = scope.spawn(|| {
            for _ in 0..CALIBRATION_HANDSHAKES {
                if listener.accept().is_err() {
                    break;
                }
            }
        });
        let times = client.run(|| -> std::io::Result<Vec<Duration>> {
            let mut times = Vec::with_capacity(CALIBRATION_HANDSHAKES);
            for _ in 0..CALIBRATION_HANDSHAKES {
                let s = Socket::new(Domain::IPV4, Type::STREAM.cloexec(), None)?;
                s.bind(&SocketAddrV4::new(super::link::CALIBRATION_ADDR, 0).into())?;
                let start = Instant::now();
                s.connect_timeout(&target.into(), Duration::from_secs(2))?;
                times.push(start.elapsed());
            }
            Ok(times)
        });
        // Unblocks the acceptor if the client gave up early.
        let _ = listener.shutdown(std::net::Shutdown::Both);
        let _ = acceptor.join();
        let times = times?.map_err(|e| failed("connect", e))?;
        Ok(times
            .chunks(CALIBRATION_HANDSHAKES / CALIBRATION_BATCHES)
            .map(|batch| {
                let mut batch = batch.to_vec();
                batch.sort();
                batch[batch.len() / 2]
            })
            .min()
            .expect("at least one batch"))
    })
}
