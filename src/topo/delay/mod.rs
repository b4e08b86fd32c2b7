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
//! Timing: the thread sets its timer slack to 1 ns and sleeps in `ppoll` until
//! [`SPIN`](pump::SPIN) before the earliest due time, then spins: a plain sleep wakes 20–40 µs
//! late at the median and Tokio's timers have 1 ms granularity.
//!
//! Jitter draws each packet's one-way delay independently (uniform in ±jitter), so packets that
//! follow each other closer than the jitter can be reordered, as with netem's default. Keeping
//! order instead would push every packet behind the latest one before it and shift the whole
//! RTT distribution upwards (measured: a 20 ± 5 ms link gave a 23.7 ms median handshake).
//!
//! Nothing is lost that the scenario did not ask for: the pump's queues are unbounded and the
//! TUN rings are 10,000 packets long (a TUN drops silently when its ring is full). The rings'
//! `tx_dropped` counters are read before and after each run and reported, so a run can tell.
//!
//! This file holds what the rest of the lab sees: the stats, and [`DelayLine`], which starts,
//! tunes ([`DelayLine::probe`], [`DelayLine::arm`]) and stops the pump. The pieces: `tun`
//! opens the devices, `pump` is the thread and its hot loop, `calibration` measures the
//! overhead that [`DelayLine::arm`] subtracts.

mod calibration;
mod pump;
mod tun;

use std::os::fd::OwnedFd;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Arc;
use std::thread::JoinHandle;
use std::time::Duration;

pub use calibration::calibrate;
pub use tun::{open_tun, DEVICE, TXQUEUELEN};

use crate::error::Failure;
pub use crate::record::stats::{DirectionStats, LinkStats};
use crate::topo::LinkPlan;
use pump::{pump, PumpResult};

/// Shared settings the pump reads on every packet, so calibration can run before the delays and
/// the loss are switched on.
struct Knobs {
    /// Hold per direction, in ns, after calibration.
    hold_ns: AtomicU64,
    /// `link.jitter` in ns (uniform in ±jitter).
    jitter_ns: AtomicU64,
    /// Whether `link.loss` applies yet.
    armed: AtomicBool,
    /// Packets the pump holds, as of its last idle pass (both directions).
    held: AtomicU64,
    stop: AtomicBool,
}

/// The most calibration may subtract per direction: 2–3 times what this machine measures when
/// calm (29–51 µs).
const MAX_OVERHEAD: Duration = Duration::from_micros(120);

/// A running delay line. Dropping it stops the pump; the TUN devices go with their descriptors.
pub struct DelayLine {
    plan: LinkPlan,
    knobs: Arc<Knobs>,
    thread: Option<JoinHandle<PumpResult>>,
    calibration: Duration,
    calibration_capped: bool,
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
            held: AtomicU64::new(0),
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

    /// Packets held in either direction right now (as of the pump's last idle pass).
    pub fn held(&self) -> u64 {
        self.knobs.held.load(Ordering::Relaxed)
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
