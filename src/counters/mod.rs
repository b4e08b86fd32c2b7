//! Kernel counters and listen-queue occupancy of the lab's namespaces, before, during and after a
//! storm. [`Sampler`] reads them on its own thread at a fixed interval so sampling never waits
//! on the storm (or the other way round).

pub mod diag;
pub mod netstat;
pub mod read;

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

pub use diag::{ListenDiag, QueueSample};
pub use netstat::Snapshot;
pub use read::CounterFiles;

/// One point of the time series.
#[derive(Debug, Clone)]
pub struct Sample {
    /// Microseconds since the storm's time zero.
    pub t_us: u64,
    pub server: Snapshot,
    pub client: Snapshot,
    pub queue: QueueSample,
}

/// What the sampler needs: the open counter files of both namespaces and the diag socket.
pub struct Probes {
    pub server: CounterFiles,
    pub client: CounterFiles,
    pub diag: ListenDiag,
}

impl Probes {
    /// Reads everything once; a failed queue read becomes an empty sample, not an abort.
    pub fn sample(&mut self, t0: Instant) -> Result<Sample, crate::error::Failure> {
        let t_us = t0.elapsed().as_micros() as u64;
        Ok(Sample {
            t_us,
            server: self.server.read()?,
            client: self.client.read()?,
            queue: self.diag.sample().unwrap_or_default(),
        })
    }
}

/// Samples [`Probes`] every `interval` until stopped.
pub struct Sampler {
    stop: Arc<AtomicBool>,
    thread: JoinHandle<(Probes, Vec<Sample>)>,
}

impl Sampler {
    pub fn start(mut probes: Probes, t0: Instant, interval: Duration) -> Sampler {
        let stop = Arc::new(AtomicBool::new(false));
        let flag = stop.clone();
        let thread = std::thread::Builder::new()
            .name("bl-sampler".into())
            .spawn(move || {
                let mut samples = Vec::new();
                let mut next = Instant::now();
                while !flag.load(Ordering::Relaxed) {
                    if let Ok(s) = probes.sample(t0) {
                        samples.push(s);
                    }
                    next += interval;
                    let now = Instant::now();
                    if next > now {
                        // Parked, not slept, so that stop() wakes it at once.
                        std::thread::park_timeout(next - now);
                    } else {
                        next = now;
                    }
                }
                (probes, samples)
            })
            .expect("spawn sampler thread");
        Sampler { stop, thread }
    }

    /// Stops sampling and hands back the probes (for the final reading) and the series.
    pub fn stop(self) -> (Probes, Vec<Sample>) {
        self.stop.store(true, Ordering::Relaxed);
        self.thread.thread().unpark();
        self.thread.join().expect("sampler thread panicked")
    }
}
