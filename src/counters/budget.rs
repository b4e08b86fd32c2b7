//! A CPU budget for a reading the sampler makes: after a reading that took `c` of the sampler
//! thread's CPU, the next waits `c / share`, so that the reading takes at most `share` of one
//! core. Where it is cheap that is every sample; where it grows (a namespace full of TIME-WAITs,
//! a busy machine formatting `/proc` text) it thins, and every reading it gives is still exact.

use std::time::{Duration, Instant};

#[derive(Debug, Clone)]
pub struct Budget {
    share: f64,
    due: Option<Instant>,
    /// Readings made, and samples that skipped the reading.
    pub taken: u64,
    pub skipped: u64,
}

impl Budget {
    pub fn new(share: f64) -> Budget {
        Budget {
            share,
            due: None,
            taken: 0,
            skipped: 0,
        }
    }

    /// The share the budget has now (the latest [`Budget::set_share`]).
    pub fn share(&self) -> f64 {
        self.share
    }

    /// Changes the share from the next [`Budget::end`] on.
    pub fn set_share(&mut self, share: f64) {
        self.share = share;
    }

    /// Whether the reading is due now: then a [`Reading`] to hand to [`Budget::end`] once it is
    /// made; if not, the sample counts as skipped.
    pub fn begin(&mut self) -> Option<Reading> {
        let now = Instant::now();
        if self.due.is_some_and(|t| now < t) {
            self.skipped += 1;
            return None;
        }
        Some(Reading {
            at: now,
            cpu_ms: super::thread_cpu_ms(),
        })
    }

    /// The reading `r` is made: the next is due after its cost divided by the share.
    pub fn end(&mut self, r: Reading) {
        let cost = Duration::from_secs_f64((super::thread_cpu_ms() - r.cpu_ms).max(0.0) / 1e3);
        self.due = Some(r.at + cost.div_f64(self.share));
        self.taken += 1;
    }
}

/// A reading under way: when it began, and the thread's CPU time then.
#[derive(Debug)]
pub struct Reading {
    at: Instant,
    cpu_ms: f64,
}
