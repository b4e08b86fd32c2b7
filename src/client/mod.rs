//! The storm: an open-loop generator of short connections, bounded in count and time.
//!
//! Attempts start at the absolute times of an arrival schedule ([`arrivals`]) whatever happens
//! to earlier attempts, so a stalled server piles up connections the way real clients do. The
//! storm runs on its own OS threads inside the client namespace, one event loop
//! ([`engine`]) per core, each with every n-th attempt of the schedule (sockets belong to the
//! namespace of the thread that creates them, so every worker enters the namespace first).
//!
//! Ctrl-C stops scheduling; the attempts in flight finish within their own timeouts and are
//! recorded. A second Ctrl-C abandons them.

pub mod arrivals;
pub mod attempt;
mod engine;
pub mod flood;
pub mod program;

use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Arc;
use std::thread::JoinHandle;

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
/// trace, the storm workers' epoll sets, the result files).
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

/// Grows the process's descriptor table, once and before time zero, to hold what a storm of
/// `connections` with the in-flight budget `budget` (see [`in_flight_budget`]) can need: its
/// connections, as many again for the server's side of them (the lab's own server shares this
/// process), and [`RESERVED_FDS`]; at most the open-files limit `nofile` and [`MOST_RESERVED`].
///
/// Why: the kernel grows the table as descriptor numbers climb, and in a multi-threaded process
/// each growth waits for an RCU grace period while every other `socket()` and `accept()` of the
/// process that needs a higher descriptor waits on the resize. Mid-storm that stalled both
/// storm workers and the lab's server together (11 ms in `perf sched`), each time the
/// connections in flight first reached a new power of two: start-lag episodes of 15-43 ms at a
/// schedule the machine otherwise kept to within 2 ms. The table never shrinks, so growing it
/// once up front costs 8 bytes a slot of kernel memory and nothing later.
pub fn reserve_descriptors(budget: u64, connections: u64, nofile: u64) {
    let fds = 2 * budget.min(connections) + RESERVED_FDS;
    reserve_fd_table(fds.min(MOST_RESERVED).min(nofile));
}

/// The largest table grown up front (8 MiB of kernel memory): a limit raised to a billion must
/// not turn into a table of a billion slots. Above it, growth happens as it comes.
const MOST_RESERVED: u64 = 1 << 20;

/// Grows the descriptor table to at least `fds` slots: a duplicate at descriptor `fds - 1`,
/// closed at once. Best effort: without any open standard descriptor to copy, nothing happens.
fn reserve_fd_table(fds: u64) {
    let highest = fds.saturating_sub(1).min(i32::MAX as u64) as libc::c_int;
    for fd in [2, 1, 0] {
        // SAFETY: plain descriptor syscalls; the duplicate is ours and closed at once.
        let dup = unsafe { libc::fcntl(fd, libc::F_DUPFD_CLOEXEC, highest) };
        if dup >= 0 {
            unsafe { libc::close(dup) };
            return;
        }
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
                // One worker per core: on veth the kernel work of both ends runs inside the
                // client's syscalls, so a single thread saturates near 10,000 connections/s.
                let workers = std::thread::available_parallelism().map_or(2, |n| n.get());
                let in_flight = AtomicU64::new(0);
                let shared = engine::Shared {
                    spec: &spec,
                    budget,
                    in_flight: &in_flight,
                    progress: &p,
                };
                let (offsets, shared, ns) = (&offsets, &shared, &ns);
                std::thread::scope(|s| {
                    let handles: Vec<_> = (0..workers)
                        .map(|w| {
                            let tx = tx.clone();
                            std::thread::Builder::new()
                                .name("bl-storm-worker".into())
                                .spawn_scoped(s, move || {
                                    ns.enter()?;
                                    let due = offsets.iter().enumerate().skip(w).step_by(workers);
                                    let due =
                                        due.map(|(id, off)| (id as u64, shared.spec.t0 + *off));
                                    engine::run(due, shared, tx).map_err(|e| {
                                        Failure::environment(format!("a storm worker failed: {e}"))
                                    })
                                })
                                .map_err(|e| {
                                    Failure::environment(format!(
                                        "cannot start a storm worker: {e}"
                                    ))
                                })
                        })
                        .collect();
                    drop(tx);
                    for h in handles {
                        h?.join().expect("storm worker panicked")?;
                    }
                    Ok::<_, Failure>(())
                })?;
                Ok(StormResult {
                    planned: offsets.len() as u64,
                    interrupted: p.interrupted.load(Ordering::Relaxed),
                    abandoned: p.outcome(Outcome::Abandoned),
                    budget,
                })
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

#[cfg(test)]
mod tests {
    /// `FDSize` in /proc/self/status: the slots of the process's descriptor table.
    fn fd_table_size() -> u64 {
        let status = std::fs::read_to_string("/proc/self/status").unwrap();
        let line = status.lines().find(|l| l.starts_with("FDSize:")).unwrap();
        line.split_whitespace().nth(1).unwrap().parse().unwrap()
    }

    #[test]
    fn the_descriptor_table_is_grown_up_front_and_no_descriptor_is_left_open() {
        let nofile = nix::sys::resource::getrlimit(nix::sys::resource::Resource::RLIMIT_NOFILE)
            .unwrap()
            .0;
        let want = nofile.min(5000);
        if want <= 64 {
            // FDSize starts at 64: a limit this low leaves nothing to grow.
            eprintln!("open-files limit {nofile}: nothing to grow");
            return;
        }
        assert!(
            fd_table_size() < want,
            "nothing to grow: FDSize {}",
            fd_table_size()
        );
        let open = || std::fs::read_dir("/proc/self/fd").unwrap().count();
        let before = open();
        // (want - 256) / 2 connections, the budget no limit: want descriptors in all.
        let (budget, _) = super::in_flight_budget(None, nofile);
        super::reserve_descriptors(budget, (want - super::RESERVED_FDS) / 2, nofile);
        assert!(fd_table_size() >= want, "FDSize {}", fd_table_size());
        // Other tests of this binary open and close descriptors meanwhile; none is ours.
        assert!(open() <= before + 8, "{} open, {before} before", open());
    }
}
