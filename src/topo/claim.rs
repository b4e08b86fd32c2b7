//! Claims that keep labs on one machine apart: a subnet of the benchmarking range for each lab's
//! hosts, so that two labs never share a 4-tuple and the trace's address filter is exact, and
//! the storm lock, so that two storms do not share the cores unless the user asks for it.
//!
//! Both are `flock`s on files in a runtime folder, `/run/backlog-lab`, shared by every user's
//! labs: root makes it sticky and world-writable (as `/tmp` is) and each lock file
//! world-writable, so a lab an ordinary user runs in a user namespace claims from the same
//! files as root's labs and the two never take the same subnet. Only where that folder cannot
//! be used (no root lab ever made it) does a lab fall back to a folder of the user's own under
//! the temporary directory. The kernel drops a process's locks when it dies, by SIGKILL too, so
//! nothing can be left claimed.

use std::fs::{File, OpenOptions, Permissions};
use std::io::Write;
use std::os::unix::fs::PermissionsExt;
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
    for (i, dir) in candidates.iter().enumerate() {
        if std::fs::create_dir_all(dir).is_ok() {
            if i == 0 {
                share_folder(dir);
            }
            if probe(dir) {
                return Ok(dir.clone());
            }
        }
    }
    Err(Failure::environment(format!(
        "cannot create a folder for the lab's locks ({} or {}): the lab needs one to keep two \
         labs on this machine apart",
        candidates[0].display(),
        candidates[1].display()
    )))
}

/// Makes the folder, and the lock files earlier versions made for root alone, usable by every
/// user's labs. Only the owner (root) can; for anyone else it already is so, or fails harmlessly.
fn share_folder(dir: &std::path::Path) {
    if std::fs::set_permissions(dir, Permissions::from_mode(0o1777)).is_err() {
        return;
    }
    for entry in std::fs::read_dir(dir).into_iter().flatten().flatten() {
        let shared = entry
            .metadata()
            .is_ok_and(|m| m.permissions().mode() & 0o777 == 0o666);
        if !shared {
            let _ = std::fs::set_permissions(entry.path(), Permissions::from_mode(0o666));
        }
    }
}

fn probe(dir: &std::path::Path) -> bool {
    OpenOptions::new()
        .create(true)
        .append(true)
        .open(dir.join("storm.lock"))
        .inspect(share)
        .is_ok()
}

/// Makes a lock file usable by every user's labs (only its creator can; for anyone else it
/// already is, or the call fails harmlessly).
fn share(file: &File) {
    let _ = file.set_permissions(Permissions::from_mode(0o666));
}

fn open(name: &str) -> Result<File, Failure> {
    let path = runtime_dir()?.join(name);
    OpenOptions::new()
        .create(true)
        .read(true)
        .write(true)
        .truncate(false)
        .open(&path)
        .inspect(share)
        .map_err(|e| Failure::environment(format!("cannot open {}: {e}", path.display())))
}

/// How long a subnet rests after a lab used it. A lab's namespaces no longer outlive it (it ends
/// their sockets, or its warden does after a SIGKILL), but a kill that takes the warden along
/// (a cgroup kill) leaves orphans retransmitting for up to 105 s on veth and 202 s on TUN, and
/// a new lab on the same addresses would trace and count those ghosts' packets as its own.
const REST: Duration = Duration::from_secs(240);

/// A subnet claimed for this lab's lifetime (released when dropped, or when the process dies).
#[derive(Debug)]
pub struct Subnet {
    /// Which /24: the third octet of the lab's IPv4 addresses.
    pub index: u8,
    lock: Flock<File>,
    /// Whether this lab took it (a candidate passed over is only unlocked, not marked).
    taken: bool,
}

fn now_s() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_secs())
}

impl Subnet {
    /// The lowest free subnet that no lab used in the last [`REST`]: on a quiet machine a lab
    /// gets 198.18.0.0/24, the one the documentation shows; back-to-back runs take the next ones
    /// in turn, so none storms among the previous run's ghosts. If every free subnet was used
    /// that recently, the one used longest ago.
    pub fn claim() -> Result<Subnet, Failure> {
        let now = now_s();
        let mut oldest: Option<(u64, Subnet)> = None;
        for index in 0..SUBNETS {
            let file = open(&format!("net-{index}.lock"))?;
            let Ok(lock) = Flock::lock(file, FlockArg::LockExclusiveNonblock) else {
                continue;
            };
            let mut subnet = Subnet {
                index: index as u8,
                lock,
                taken: false,
            };
            let last = subnet.last_used();
            if now.saturating_sub(last) >= REST.as_secs() {
                subnet.mark_used();
                return Ok(subnet);
            }
            if oldest.as_ref().is_none_or(|(l, _)| last < *l) {
                oldest = Some((last, subnet));
            }
        }
        match oldest {
            Some((_, mut subnet)) => {
                subnet.mark_used();
                Ok(subnet)
            }
            None => Err(Failure::environment(format!(
                "all {SUBNETS} lab subnets are in use: {SUBNETS} labs already run on this machine"
            ))),
        }
    }

    /// When a lab last held this subnet (seconds since the epoch; 0: never).
    fn last_used(&mut self) -> u64 {
        use std::io::{Read, Seek};
        let mut text = String::new();
        let _ = self.lock.rewind();
        let _ = self.lock.read_to_string(&mut text);
        text.trim().parse().unwrap_or(0)
    }

    /// Records now as this subnet's last use (at the claim, and again at the release).
    fn mark_used(&mut self) {
        use std::io::Seek;
        self.taken = true;
        let _ = self.lock.set_len(0);
        let _ = self.lock.rewind();
        let _ = write!(self.lock, "{}", now_s());
    }
}

impl Drop for Subnet {
    /// The rest counts from the end of the run (a SIGKILL leaves the claim's own time).
    fn drop(&mut self) {
        if self.taken {
            self.mark_used();
        }
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
