//! The storm: an open-loop generator of short connections, bounded in count and time.
//!
//! Attempts start at the absolute times of an arrival schedule ([`arrivals`]) whatever happens
//! to earlier attempts, each on its own task, so a stalled server piles up connections the way
//! real clients do. The storm runs on its own OS threads inside the client namespace, a Tokio
//! runtime with one worker per core (sockets belong to the namespace of the thread that creates
//! them, so every worker enters the namespace when it starts).
//!
//! Ctrl-C stops scheduling; the attempts in flight finish within their own timeouts and are
//! recorded. A second Ctrl-C abandons them.

pub mod arrivals;
pub mod attempt;
pub mod flood;
pub mod program;

use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Arc;
use std::thread::JoinHandle;
use std::time::Instant;

use tokio::sync::Notify;
use tokio::task::JoinSet;

pub use attempt::AttemptSpec;

use crate::error::Failure;
use crate::netns::Netns;
use crate::plan::ClientPlan;
use crate::record::{ConnRecord, Outcome};

/// Live counts the terminal progress line reads while the storm runs.
#[derive(Debug)]
pub struct Progress {
    /// Attempts in the schedule.
    pub planned: u64,
    pub started: AtomicU64,
    pub finished: AtomicU64,
    pub outcomes: [AtomicU64; Outcome::COUNT],
    /// Set by the first Ctrl-C.
    pub interrupted: AtomicBool,
}

impl Progress {
    pub fn new(planned: u64) -> Progress {
        Progress {
            planned,
            started: AtomicU64::new(0),
            finished: AtomicU64::new(0),
            outcomes: Default::default(),
            interrupted: AtomicBool::new(false),
        }
    }
    pub fn outcome(&self, o: Outcome) -> u64 {
        self.outcomes[o.index()].load(Ordering::Relaxed)
    }
}

/// How the storm ended. Its records went out one by one as connections finished
/// ([`Storm::finished`]): one per attempt that was due before the storm stopped.
#[derive(Debug, Default)]
pub struct StormResult {
    /// Attempts in the schedule (more than the records if interrupted).
    pub planned: u64,
    pub interrupted: bool,
    /// Attempts in flight that a second stop signal abandoned (their records say
    /// [`Outcome::Abandoned`]).
    pub abandoned: u64,
    /// The most connections it could have open at once (see [`in_flight_budget`]).
    pub budget: u64,
}

/// Descriptors kept for everything that is not a connection (counter files, sock_diag, the
/// trace, the runtime, the result files).
const RESERVED_FDS: u64 = 256;

/// How many connections the client may have open at once: `asked` (`client.max_in_flight`), at
/// most what the open-files limit `nofile` leaves after [`RESERVED_FDS`]. Also whether `asked`
/// had to be lowered. The lab's own server takes its accepted connections from the same
/// limit; a `socket()` that finds none left ends as `not_started` too (never `other`).
pub fn in_flight_budget(asked: Option<u64>, nofile: u64) -> (u64, bool) {
    let most = nofile.saturating_sub(RESERVED_FDS).max(1);
    match asked {
        Some(n) if n > most => (most, true),
        Some(n) => (n, false),
        None => (most, false),
    }
}

/// A storm running on its thread.
pub struct Storm {
    pub progress: Arc<Progress>,
    thread: JoinHandle<Result<StormResult, Failure>>,
    rows: std::sync::mpsc::Receiver<ConnRecord>,
}

impl Storm {
    /// Computes the schedule and starts the storm; the first attempt is due at `spec.t0`.
    pub fn start(
        ns: &Netns,
        plan: &ClientPlan,
        spec: AttemptSpec,
        budget: u64,
    ) -> Result<Storm, Failure> {
        let offsets = arrivals::schedule(&plan.arrival, plan.connections, plan.duration, plan.seed);
        let progress = Arc::new(Progress::new(offsets.len() as u64));
        let ns = ns.try_clone()?;
        let p = progress.clone();
        let (tx, rows) = std::sync::mpsc::channel();
        let thread = std::thread::Builder::new()
            .name("bl-storm".into())
            .spawn(move || {
                ns.enter()?;
                // One worker per core, each moved into the client namespace before it runs a
                // task: on veth the kernel work of both ends runs inside the client's syscalls,
                // so a single thread saturates near 10,000 connections/s.
                let workers = std::thread::available_parallelism().map_or(2, |n| n.get());
                let rt = tokio::runtime::Builder::new_multi_thread()
                    .worker_threads(workers)
                    .thread_name("bl-storm-worker")
                    .on_thread_start(move || {
                        ns.enter()
                            .expect("a storm worker could not enter the client namespace")
                    })
                    .enable_all()
                    .build()
                    .map_err(|e| {
                        Failure::environment(format!("cannot build the storm runtime: {e}"))
                    })?;
                Ok(rt.block_on(storm(offsets, spec, budget, p, tx)))
            })
            .map_err(|e| Failure::environment(format!("cannot start the storm thread: {e}")))?;
        Ok(Storm {
            progress,
            thread,
            rows,
        })
    }

    /// The records of the connections that finished since the last call, in the order they
    /// finished. Every record is here once the storm [`is_finished`](Storm::is_finished).
    pub fn finished(&self) -> impl Iterator<Item = ConnRecord> + '_ {
        self.rows.try_iter()
    }

    pub fn is_finished(&self) -> bool {
        self.thread.is_finished()
    }

    pub fn join(self) -> Result<StormResult, Failure> {
        self.thread.join().expect("storm thread panicked")
    }
}

async fn storm(
    offsets: Vec<std::time::Duration>,
    spec: AttemptSpec,
    budget: u64,
    progress: Arc<Progress>,
    rows: std::sync::mpsc::Sender<ConnRecord>,
) -> StormResult {
    let in_flight = Arc::new(AtomicU64::new(0));
    // Each record goes out as its connection ends; the storm keeps none (1M of them were about
    // 100 MB). The receiver outlives the storm, so a send cannot fail.
    let hand_in = |rec: ConnRecord| {
        let _ = rows.send(rec);
    };
    let spec = Arc::new(spec);
    let abandon = Arc::new(Notify::new());
    // Every attempt watches this: a second stop signal ends each where it stands, with its row.
    let (abandon_all, abandoned_rx) = tokio::sync::watch::channel(false);
    let interrupt = Arc::new(Notify::new());
    {
        let (progress, abandon, interrupt) = (progress.clone(), abandon.clone(), interrupt.clone());
        // The stop signals are recorded by `crate::interrupt` (installed before anything was
        // created); polling every 10 ms costs nothing next to the storm.
        tokio::spawn(async move {
            let mut tick = tokio::time::interval(std::time::Duration::from_millis(10));
            loop {
                tick.tick().await;
                let signals = crate::interrupt::count();
                if signals >= 1 && !progress.interrupted.swap(true, Ordering::Relaxed) {
                    interrupt.notify_one();
                    let by =
                        crate::interrupt::requested().map_or("a signal", crate::interrupt::name);
                    eprintln!("\ninterrupted ({by}): no new connections; waiting for those in flight (Ctrl-C again to abandon them)");
                }
                if signals >= 2 {
                    abandon.notify_one();
                    return;
                }
            }
        });
    }
    let mut tasks = JoinSet::new();
    for (id, off) in offsets.iter().enumerate() {
        let at = spec.t0 + *off;
        if Instant::now() < at {
            tokio::select! {
                _ = tokio::time::sleep_until(at.into()) => {}
                _ = interrupt.notified() => {}
            }
        }
        if progress.interrupted.load(Ordering::Relaxed) {
            break;
        }
        // The budget is spent: this attempt never starts, and says so with its own outcome
        // instead of failing its socket() with EMFILE.
        if in_flight.load(Ordering::Relaxed) >= budget {
            hand_in(attempt::not_started(id as u64, at, &spec));
            progress.outcomes[Outcome::NotStarted.index()].fetch_add(1, Ordering::Relaxed);
            progress.finished.fetch_add(1, Ordering::Relaxed);
            continue;
        }
        in_flight.fetch_add(1, Ordering::Relaxed);
        progress.started.fetch_add(1, Ordering::Relaxed);
        let (spec, progress, abandon) = (spec.clone(), progress.clone(), abandoned_rx.clone());
        let in_flight = in_flight.clone();
        tasks.spawn(async move {
            let rec = attempt::run(id as u64, at, &spec, abandon).await;
            in_flight.fetch_sub(1, Ordering::Relaxed);
            progress.outcomes[rec.outcome.index()].fetch_add(1, Ordering::Relaxed);
            progress.finished.fetch_add(1, Ordering::Relaxed);
            rec
        });
        // Collect what has finished as the storm goes: a finished task's memory (its future,
        // about 5 KB with the read buffer) is freed only when it is joined, and joining them
        // all at the end held 5 KB per connection (252 MB for 50,000).
        while let Some(done) = tasks.try_join_next() {
            hand_in(done.unwrap_or_else(|e| panic!("connection task failed: {e}")));
        }
    }
    loop {
        tokio::select! {
            next = tasks.join_next() => match next {
                Some(Ok(rec)) => hand_in(rec),
                Some(Err(e)) => panic!("connection task failed: {e}"),
                None => break,
            },
            _ = abandon.notified() => {
                // The tasks end at once and still hand in their rows.
                let _ = abandon_all.send(true);
            }
        }
    }
    StormResult {
        planned: offsets.len() as u64,
        interrupted: progress.interrupted.load(Ordering::Relaxed),
        abandoned: progress.outcome(Outcome::Abandoned),
        budget,
    }
}
