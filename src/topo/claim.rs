//! Claims that keep labs on one machine apart: a subnet of the benchmarking range for each lab's
//! hosts, so that two labs never share a 4-tuple and the trace's address filter is exact, and
//! the storm lock, so that two storms do not share the cores unless the user asks for it.
//!
//! Both are `flock`s on files in a runtime folder (`/run/backlog-lab`, or a folder of the
//! user's own under the temporary directory where `/run` is not writable). The kernel drops a
//! process's locks when it dies, by SIGKILL too, so nothing can be left claimed.

use std::fs::{File, OpenOptions};
use std::io::Write;
use std::path::PathBuf;
use std::time::Duration;

use nix::fcntl::{Flock, FlockArg};

use crate::error::Failure;

/// How many subnets there are to claim: 198.18.0.0/24 to 198.18.255.0/24.
pub const SUBNETS: u16 = 256;

/// The folder the lock files live in, created if need be.
fn runtime_dir() -> Result<PathBuf, Failure> {
    let candidates = [
        PathBuf::from("/run/backlog-lab"),
        std::env::temp_dir().join(format!("backlog-lab-{}", nix::unistd::geteuid())),
    ];
    for dir in &candidates {
        if std::fs::create_dir_all(dir).is_ok() && probe(dir) {
            return Ok(dir.clone());
        }
    }
    Err(Failure::environment(format!(
        "cannot create a folder for the lab's locks ({} or {}): the lab needs one to keep two \
         labs on this machine apart",
        candidates[0].display(),
        candidates[1].display()
    )))
}

fn probe(dir: &std::path::Path) -> bool {
    OpenOptions::new()
        .create(true)
        .append(true)
        .open(dir.join("storm.lock"))
        .is_ok()
}

fn open(name: &str) -> Result<File, Failure> {
    let path = runtime_dir()?.join(name);
    OpenOptions::new()
        .create(true)
        .read(true)
        .write(true)
        .truncate(false)
        .open(&path)
        .map_err(|e| Failure::environment(format!("cannot open {}: {e}", path.display())))
}

/// A subnet claimed for this lab's lifetime (released when dropped, or when the process dies).
#[derive(Debug)]
pub struct Subnet {
    /// Which /24: the third octet of the lab's IPv4 addresses.
    pub index: u8,
    _lock: Flock<File>,
}

impl Subnet {
    /// The lowest free subnet: a lab alone on the machine always gets 198.18.0.0/24, the one the
    /// documentation shows; a second lab at the same time gets the next.
    pub fn claim() -> Result<Subnet, Failure> {
        for index in 0..SUBNETS {
            let file = open(&format!("net-{index}.lock"))?;
            if let Ok(lock) = Flock::lock(file, FlockArg::LockExclusiveNonblock) {
                return Ok(Subnet {
                    index: index as u8,
                    _lock: lock,
                });
            }
        }
        Err(Failure::environment(format!(
            "all {SUBNETS} lab subnets are in use: {SUBNETS} labs already run on this machine"
        )))
    }
}

/// The subnets other labs on this machine hold right now (their lock files cannot be taken):
/// while one runs, machine-wide evidence such as `kfree_skb` counts is not this lab's alone.
pub fn other_labs(own: u8) -> Vec<u8> {
    let Ok(dir) = runtime_dir() else {
        return Vec::new();
    };
    (0..SUBNETS)
        .filter(|&k| k != u16::from(own))
        .filter(|k| {
            // Only files that exist: a subnet never claimed has none.
            let Ok(file) = File::open(dir.join(format!("net-{k}.lock"))) else {
                return false;
            };
            Flock::lock(file, FlockArg::LockSharedNonblock).is_err()
        })
        .map(|k| k as u8)
        .collect()
}

/// The right to storm: one lab at a time on the machine unless `--concurrent`.
#[derive(Debug)]
pub struct StormLock {
    _lock: Flock<File>,
}

impl StormLock {
    /// Takes the storm lock, waiting (and saying so, once) while another lab holds it. Gives up
    /// with `None` if a stop signal arrives while waiting.
    pub fn acquire() -> Result<Option<StormLock>, Failure> {
        let mut file = open("storm.lock")?;
        let mut said = false;
        loop {
            match Flock::lock(file, FlockArg::LockExclusiveNonblock) {
                Ok(mut lock) => {
                    // Who holds it, for the message a waiting lab prints.
                    let _ = lock.set_len(0);
                    let _ = write!(lock, "{}", std::process::id());
                    return Ok(Some(StormLock { _lock: lock }));
                }
                Err((f, _)) => file = f,
            }
            if crate::interrupt::requested().is_some() {
                return Ok(None);
            }
            if !said {
                let holder = std::fs::read_to_string(runtime_dir()?.join("storm.lock"))
                    .ok()
                    .filter(|p| !p.trim().is_empty())
                    .map_or_else(String::new, |p| format!(" (pid {})", p.trim()));
                eprintln!(
                    "waiting for another backlog-lab storm{holder} to finish: two storms on one \
                     machine distort each other (--concurrent runs beside it)"
                );
                said = true;
            }
            std::thread::sleep(Duration::from_millis(100));
        }
    }
}
