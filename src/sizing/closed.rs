//! Closed forms beside the model: cross-checks a reader can redo by hand, and the ceilings past
//! which no backlog helps.
//!
//! - the fluid bound: arrivals minus accepts over the worst window (no retries, no discreteness),
//!   the peak the accept queue must hold;
//! - M/M/1/K blocking for steady random load: with K = backlog + 1 places, an arrival is lost with
//!   probability (1−ρ)ρ^K / (1−ρ^(K+1)); the smallest K with fewer than half an expected loss
//!   over the storm. Exponential service is more variable than the lab's evenly spaced accepts,
//!   so this errs high;
//! - the ceilings: at load ρ ≥ 1 the queue grows by λ − μ a second whatever the backlog; a queue
//!   deeper than μ × the client's response timeout holds connections whose clients will have
//!   given up before `accept()` returns them; the SYN queue needs about SYN rate × RTT.

use super::workload::{Acceptor, Workload, SECOND};
pub use crate::record::sizing::ClosedForms as Closed;

/// The closed forms of `w`. `poisson`: the arrivals are a Poisson process.
pub fn of(w: &Workload, poisson: bool) -> Closed {
    let lambda = w.mean_rate;
    let mu = w.accept_capacity();
    let accept_rate = mu.is_finite().then_some(mu);
    // (None for a server that never accepts: JSON has no infinity.)
    let load = accept_rate.filter(|m| *m > 0.0).map(|m| lambda / m);
    let fluid_peak = fluid_peak(w);
    let mm1k_backlog = match load {
        Some(rho) if poisson && rho < 1.0 && rho > 0.0 => Some(mm1k(rho, w.starts.len() as f64)),
        _ => None,
    };
    let longest_pause_s = w.pauses_s.iter().map(|(s, e)| e - s).reduce(f64::max);
    Closed {
        arrival_rate: lambda,
        accept_rate,
        load,
        fluid_peak,
        fluid_backlog: fluid_peak.saturating_sub(1),
        mm1k_backlog,
        useful_depth: accept_rate
            .filter(|m| *m > 0.0)
            .map(|m| m * w.response_timeout_ns as f64 / SECOND as f64),
        longest_pause_s,
        syn_queue_need: syn_queue_need(w),
    }
}

/// Arrivals minus accepts at their worst, with accepts as a fluid at the server's rate and
/// every arrival entering the accept queue one and a half RTTs after its `connect()`.
fn fluid_peak(w: &Workload) -> u64 {
    let entry = |s: &u64| s + w.rtt_ns + w.rtt_ns / 2;
    match &w.acceptor {
        Acceptor::Fast => u64::from(!w.starts.is_empty()),
        Acceptor::Never => w.starts.len() as u64,
        Acceptor::Pause { windows } => {
            let inside = windows
                .iter()
                .map(|(s, e)| {
                    w.starts
                        .iter()
                        .filter(|t| (*s..=*e).contains(&entry(t)))
                        .count() as u64
                })
                .max()
                .unwrap_or(0);
            inside.max(u64::from(!w.starts.is_empty()))
        }
        Acceptor::Rate { .. } | Acceptor::Workers { .. } => {
            let mu = w.accept_capacity();
            let (mut q, mut peak, mut last) = (0.0f64, 0.0f64, None::<u64>);
            for t in w.starts.iter().map(entry) {
                if let Some(l) = last {
                    q = (q - mu * (t - l) as f64 / SECOND as f64).max(0.0);
                }
                q += 1.0;
                peak = peak.max(q);
                last = Some(t);
            }
            peak.ceil() as u64
        }
    }
}

/// The smallest backlog (K − 1) at which M/M/1/K loses under half a connection in `n` arrivals.
fn mm1k(rho: f64, n: f64) -> u64 {
    let blocking = |k: i32| (1.0 - rho) * rho.powi(k) / (1.0 - rho.powi(k + 1));
    let k = (1..1_000_000)
        .find(|k| n * blocking(*k) < 0.5)
        .unwrap_or(1_000_000);
    (k - 1) as u64
}

/// SYNs in flight at once: the most connects within one RTT (at least one).
fn syn_queue_need(w: &Workload) -> f64 {
    if w.rtt_ns == 0 || w.starts.is_empty() {
        return 0.0;
    }
    let mut most = 0;
    let mut from = 0;
    for (i, t) in w.starts.iter().enumerate() {
        while w.starts[from] + w.rtt_ns <= *t {
            from += 1;
        }
        most = most.max(i + 1 - from);
    }
    most as f64
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn mm1k_needs_more_room_near_saturation() {
        // ρ = 0.5, 1,000 arrivals: P_K = 0.5^(K+1)/(1-0.5^(K+1)) < 5e-4 first at K = 10.
        assert_eq!(mm1k(0.5, 1000.0), 9);
        assert!(mm1k(0.9, 10_000.0) > mm1k(0.8, 10_000.0));
    }
}
