//! Kernel counters and listen-queue occupancy of the lab's namespaces, before, during and after a
//! storm. [`Sampler`] reads them on its own thread at a fixed interval so sampling never waits
//! on the storm (or the other way round).

pub mod budget;
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

pub use crate::record::stats::SamplingStats;

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
    /// None when only one namespace is watched (`watch`): its client counters read as empty.
    pub client: Option<CounterFiles>,
    pub diag: ListenDiag,
}

impl Probes {
    /// Reads everything once; a failed queue read becomes an empty sample, not an abort.
    pub fn sample(&mut self, t0: Instant) -> Result<Sample, crate::error::Failure> {
        let t_us = t0.elapsed().as_micros() as u64;
        Ok(Sample {
            t_us,
            server: self.server.read()?,
            client: match &mut self.client {
                Some(c) => c.read()?,
                None => Snapshot::default(),
            },
            queue: self.diag.sample().unwrap_or_default(),
        })
    }
}

/// The sampled time series, stored sparsely: each point keeps only the counters that changed
/// since the point before (as new absolute values). At the default 10 ms a 600 s run is 60,000
/// points; storing all ~310 counters of both namespaces each time would take ~300 MB, while a
/// storm moves a few dozen per point.
#[derive(Debug, Default)]
pub struct Series {
    /// Counter names of the server and client namespaces, in file order.
    pub names: [Vec<String>; 2],
    pub points: Vec<Point>,
}

/// One sample: the listen queue, and the counters that changed (per namespace: index into
/// [`Series::names`], new value).
#[derive(Debug, Clone)]
pub struct Point {
    /// Microseconds since the storm's time zero.
    pub t_us: u64,
    pub queue: QueueSample,
    /// Whether this sample read the counters; one that skipped them to keep within their CPU
    /// budget ([`COUNTER_SHARE`]) changes none.
    pub counted: bool,
    changed: [Vec<(u16, i64)>; 2],
}

/// The share of one core that reading the counters may take in the sampler. The kernel formats
/// `/proc/net/netstat` and `/proc/net/snmp` as text for each of the two namespaces (about 300
/// numbers through `vsnprintf` each), and the sampler parses them back: in a storm this was
/// about half of the sampler's 3 % at 10 ms. The queue is read every sample regardless.
pub const COUNTER_SHARE: f64 = 0.005;

impl Series {
    /// Calls `f` with each point and the full counter values of both namespaces at that point.
    pub fn replay(&self, mut f: impl FnMut(&Point, &[Vec<i64>; 2])) {
        let mut values = [
            vec![0i64; self.names[0].len()],
            vec![0i64; self.names[1].len()],
        ];
        for p in &self.points {
            for (ns, changes) in p.changed.iter().enumerate() {
                for &(i, v) in changes {
                    values[ns][i as usize] = v;
                }
            }
            f(p, &values);
        }
    }

    /// The last point as snapshots (server, client), if there is one.
    pub fn last_snapshots(&self) -> Option<(Snapshot, Snapshot)> {
        let mut last = None;
        self.replay(|_, v| last = Some(v.clone()));
        let [s, c] = last?;
        let snap =
            |names: &[String], vals: Vec<i64>| Snapshot(names.iter().cloned().zip(vals).collect());
        Some((snap(&self.names[0], s), snap(&self.names[1], c)))
    }
}

/// The queue samples of the last [`LiveQueue::SPAN_US`], for a display that runs beside the
/// sampler (`watch`'s live line).
#[derive(Debug, Default)]
pub struct LiveQueue {
    samples: std::sync::Mutex<std::collections::VecDeque<(u64, QueueSample)>>,
}

impl LiveQueue {
    pub const SPAN_US: u64 = 10_000_000;

    fn push(&self, t_us: u64, q: QueueSample) {
        let mut s = self.samples.lock().unwrap_or_else(|e| e.into_inner());
        s.push_back((t_us, q));
        while s.front().is_some_and(|(t, _)| t + Self::SPAN_US < t_us) {
            s.pop_front();
        }
    }

    /// The samples of the last ten seconds, oldest first.
    pub fn recent(&self) -> Vec<QueueSample> {
        let s = self.samples.lock().unwrap_or_else(|e| e.into_inner());
        s.iter().map(|(_, q)| *q).collect()
    }
}

/// Samples [`Probes`] every `interval` until stopped.
pub struct Sampler {
    stop: Arc<AtomicBool>,
    thread: JoinHandle<(Probes, Series, SamplingStats)>,
}

impl Sampler {
    pub fn start(probes: Probes, t0: Instant, interval: Duration) -> Sampler {
        Sampler::start_live(probes, t0, interval, None)
    }

    /// [`Sampler::start`], also keeping the last queue samples in `live` for a live display.
    pub fn start_live(
        mut probes: Probes,
        t0: Instant,
        interval: Duration,
        live: Option<Arc<LiveQueue>>,
    ) -> Sampler {
        let stop = Arc::new(AtomicBool::new(false));
        let flag = stop.clone();
        let thread = std::thread::Builder::new()
            .name("bl-sampler".into())
            .spawn(move || {
                let started = Instant::now();
                let mut series = Series::default();
                let mut stats = SamplingStats {
                    interval_ms: interval.as_secs_f64() * 1e3,
                    ..Default::default()
                };
                let mut layouts = [read::Layout::default(), read::Layout::default()];
                let mut prev: [Vec<i64>; 2] = Default::default();
                let mut now_vals: [Vec<i64>; 2] = Default::default();
                let mut next = Instant::now();
                let mut counters = budget::Budget::new(COUNTER_SHARE);
                while !flag.load(Ordering::Relaxed) {
                    let t_us = t0.elapsed().as_micros() as u64;
                    let queue = probes.diag.sample_within_budget().unwrap_or_default();
                    if let Some(live) = &live {
                        live.push(t_us, queue);
                    }
                    let reading = counters.begin();
                    let counted = reading.is_some();
                    let read = match reading {
                        Some(_) => probes
                            .server
                            .read_values(&mut layouts[0], &mut now_vals[0])
                            .and_then(|_| match &mut probes.client {
                                Some(c) => c.read_values(&mut layouts[1], &mut now_vals[1]),
                                None => Ok(()),
                            }),
                        None => Ok(()),
                    };
                    if let Some(r) = reading {
                        counters.end(r);
                    }
                    if read.is_err() {
                        stats.failed += 1;
                    } else {
                        let mut changed: [Vec<(u16, i64)>; 2] = Default::default();
                        for ns in (0..2).filter(|_| counted) {
                            prev[ns].resize(now_vals[ns].len(), 0);
                            for (i, v) in now_vals[ns].iter().enumerate() {
                                if prev[ns].get(i) != Some(v) {
                                    changed[ns].push((i as u16, *v));
                                }
                            }
                            stats.series_bytes += changed[ns].len() as u64 * 16;
                            prev[ns].clone_from(&now_vals[ns]);
                        }
                        stats.series_bytes += std::mem::size_of::<Point>() as u64;
                        series.points.push(Point {
                            t_us,
                            queue,
                            counted,
                            changed,
                        });
                    }
                    next += interval;
                    let now = Instant::now();
                    if next > now {
                        // Parked, not slept, so that stop() wakes it at once.
                        std::thread::park_timeout(next - now);
                    } else {
                        stats.late += 1;
                        next = now;
                    }
                }
                series.names = layouts.map(|l| l.names);
                stats.samples = series.points.len() as u64;
                stats.syn_recv_counted = probes.diag.syn_recv.taken;
                stats.syn_recv_skipped = probes.diag.syn_recv.skipped;
                stats.syn_recv_share = probes.diag.syn_recv.share();
                stats.counters_read = counters.taken;
                stats.counters_skipped = counters.skipped;
                stats.counter_share = counters.share();
                stats.cpu_ms = thread_cpu_ms();
                let span_ms = started.elapsed().as_secs_f64() * 1e3;
                if span_ms > 0.0 {
                    stats.cpu_share = stats.cpu_ms / span_ms;
                }
                (probes, series, stats)
            })
            .expect("spawn sampler thread");
        Sampler { stop, thread }
    }

    /// Stops sampling and hands back the probes (for the final reading), the series and what
    /// sampling cost.
    pub fn stop(self) -> (Probes, Series, SamplingStats) {
        self.stop.store(true, Ordering::Relaxed);
        self.thread.thread().unpark();
        self.thread.join().expect("sampler thread panicked")
    }
}

/// User + system CPU time of the calling thread, ms (the sampler's and the tracer's cost, and
/// what their budgets measure).
///
/// `CLOCK_THREAD_CPUTIME_ID`, not `getrusage(RUSAGE_THREAD)`: getrusage reads the scheduler's
/// `sum_exec_runtime`, which advances only at ticks and context switches, so a reading made
/// within one time slice (the sampler wakes, reads, sleeps) cost "nothing" and the counters'
/// 0.5 % budget let them be read in 428 of 605 samples, 1.3 % of a core. The clock adds the
/// running slice (`task_sched_runtime`).
pub(crate) fn thread_cpu_ms() -> f64 {
    nix::time::clock_gettime(nix::time::ClockId::CLOCK_THREAD_CPUTIME_ID)
        .map(|t| Duration::from(t).as_secs_f64() * 1e3)
        .unwrap_or(0.0)
}
