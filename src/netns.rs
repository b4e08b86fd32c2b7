//! Network namespaces held by file descriptor, never by name.
//!
//! A namespace is created by a short-lived thread that calls `unshare(CLONE_NEWNET)` and opens
//! `/proc/thread-self/ns/net`; the lab keeps only that descriptor. Nothing is bind-mounted under
//! `/run/netns`, so when the lab exits, however it exits (even `SIGKILL`), the kernel frees the
//! namespace and everything in it (the veth pair, sockets, sysctl values) with the last descriptor.
//! `ip netns list` never shows a lab namespace. Equivalent shell: `unshare --net` with no mount.
//!
//! Each namespace is created from inside a throwaway one whose `tcp_child_ehash_entries` is set,
//! so its TCP sockets live in a hash of its own (see [`host_ehash_entries`]): `unshare --net sh -c
//! 'sysctl -w net.ipv4.tcp_child_ehash_entries=262144; unshare --net ...'`.
//!
//! Namespace membership is per thread, so work inside a namespace runs on a thread that called
//! `setns` ([`Netns::run`] for one-off work, [`Netns::enter`] for a dedicated thread). The
//! process's main thread never leaves the host namespace.

use std::fs::File;
use std::os::fd::{AsFd, AsRawFd, OwnedFd, RawFd};
use std::os::unix::fs::MetadataExt;

use nix::sched::{setns, unshare, CloneFlags};

use crate::error::Failure;

/// A network namespace owned by this process.
#[derive(Debug)]
pub struct Netns {
    fd: OwnedFd,
    label: &'static str,
    inode: u64,
}

impl Netns {
    /// Creates a new, empty network namespace (only `lo`, down), with a TCP established hash
    /// of its own as large as the host's (see [`host_ehash_entries`]).
    pub fn create(label: &'static str) -> Result<Netns, Failure> {
        Netns::create_for(label, None)
    }

    /// [`Netns::create`] for a run that may open up to `sockets` connections: its private hash
    /// is sized to them (a power of two from 1,024 up to the host's size), because the
    /// sampler's SYN-RECV count walks every bucket (10 ns each here: 2.7 ms for 262,144 empty
    /// ones, 0.06 ms for 1,024). `tcp_max_syn_backlog` and `tcp_max_tw_buckets`, which the
    /// kernel derives from the hash's size, are then written back to what a namespace
    /// sharing the host's hash has, so the queues behave the same whatever the size.
    pub fn create_for(label: &'static str, sockets: Option<u64>) -> Result<Netns, Failure> {
        let host = host_ehash_entries();
        let opened = std::thread::spawn(move || -> nix::Result<File> {
            unshare(CloneFlags::CLONE_NEWNET)?;
            if let Some(host) = host {
                let size = sockets.map_or(host, |n| {
                    (n.clamp(1024, u64::from(host)) as u32)
                        .next_power_of_two()
                        .min(host)
                });
                // This thread is now in a throwaway namespace; the one it creates next takes
                // its hash size from there. If the write fails, the next one shares the host's
                // hash, as every namespace did before 5.19.
                if std::fs::write(CHILD_EHASH, size.to_string()).is_ok() {
                    unshare(CloneFlags::CLONE_NEWNET)?;
                    let sys = "/proc/sys/net/ipv4";
                    std::fs::write(
                        format!("{sys}/tcp_max_syn_backlog"),
                        (host / 128).max(128).to_string(),
                    )
                    .and_then(|_| {
                        std::fs::write(format!("{sys}/tcp_max_tw_buckets"), (host / 2).to_string())
                    })
                    .map_err(|e| nix::Error::from_raw(e.raw_os_error().unwrap_or(libc::EIO)))?;
                }
            }
            File::open("/proc/thread-self/ns/net")
                .map_err(|e| nix::Error::from_raw(e.raw_os_error().unwrap_or(libc::EIO)))
        })
        .join()
        .expect("namespace thread panicked");
        let file = opened.map_err(|e| {
            Failure::environment(format!(
                "cannot create the {label} network namespace: {e}. backlog-lab needs CAP_SYS_ADMIN \
                 and CAP_NET_ADMIN: run it as root (sudo -E backlog-lab ...), or as an ordinary user \
                 on a kernel that allows unprivileged user namespaces"
            ))
        })?;
        let inode = file.metadata().map(|m| m.ino()).unwrap_or(0);
        if inode == host_inode() {
            return Err(Failure::environment(
                "unshare(CLONE_NEWNET) returned the host namespace; refusing to continue",
            ));
        }
        Ok(Netns {
            fd: file.into(),
            label,
            inode,
        })
    }

    /// Opens an existing network namespace (`/proc/PID/ns/net`, a bind mount under
    /// `/run/netns/`, or `/proc/PID/fd/N` of a process that holds one, as `serve` prints), to
    /// read it: nothing is created or changed.
    pub fn open(path: &std::path::Path, label: &'static str) -> Result<Netns, Failure> {
        let file = File::open(path).map_err(|e| {
            Failure::bad_input(format!(
                "cannot open the network namespace {}: {e} (give /proc/PID/ns/net, a file under \
                 /run/netns/, or the /proc/PID/fd/N that `backlog-lab serve` prints)",
                path.display()
            ))
        })?;
        // NS_GET_NSTYPE: what kind of namespace the file is, if it is one at all.
        const NS_GET_NSTYPE: libc::c_ulong = 0xb703;
        let kind = unsafe { libc::ioctl(file.as_raw_fd(), NS_GET_NSTYPE as _) };
        if kind != libc::CLONE_NEWNET {
            return Err(Failure::bad_input(format!(
                "{} is not a network namespace",
                path.display()
            )));
        }
        let inode = file.metadata().map(|m| m.ino()).unwrap_or(0);
        Ok(Netns {
            fd: file.into(),
            label,
            inode,
        })
    }

    /// A short name for messages: `server` or `client`.
    pub fn label(&self) -> &'static str {
        self.label
    }

    /// The namespace's inode number, as in `ls -l /proc/PID/ns/net` (`net:[INODE]`).
    pub fn inode(&self) -> u64 {
        self.inode
    }

    pub fn raw_fd(&self) -> RawFd {
        self.fd.as_raw_fd()
    }

    /// A second handle on the same namespace, for a thread that must own one.
    pub fn try_clone(&self) -> Result<Netns, Failure> {
        let fd = self
            .fd
            .try_clone()
            .map_err(|e| Failure::environment(format!("dup namespace fd: {e}")))?;
        Ok(Netns {
            fd,
            label: self.label,
            inode: self.inode,
        })
    }

    /// Moves the calling thread into this namespace. Only for threads the lab owns outright
    /// (the server and storm threads); the main thread must never call it.
    pub fn enter(&self) -> Result<(), Failure> {
        setns(self.fd.as_fd(), CloneFlags::CLONE_NEWNET).map_err(|e| {
            Failure::environment(format!("cannot enter the {} namespace: {e}", self.label))
        })
    }

    /// Runs `f` on a fresh thread inside this namespace and returns its result.
    pub fn run<T: Send>(&self, f: impl FnOnce() -> T + Send) -> Result<T, Failure> {
        std::thread::scope(|s| {
            s.spawn(|| {
                self.enter()?;
                Ok(f())
            })
            .join()
            .expect("thread inside namespace panicked")
        })
    }
}

const CHILD_EHASH: &str = "/proc/sys/net/ipv4/tcp_child_ehash_entries";
const EHASH: &str = "/proc/sys/net/ipv4/tcp_ehash_entries";

/// The size of the host's TCP established hash, which every lab namespace gets a private copy
/// of: `None` on a kernel without `tcp_child_ehash_entries` (before 5.19).
///
/// Why: the sampler's SYN-RECV dump (sock_diag) walks the whole hash its namespace uses. A
/// namespace created from the host shares the host's global hash, with every namespace's
/// sockets and TIME-WAITs in it: at 10 ms that walk took 43–52 % of a core during a storm. A
/// namespace created from inside one whose `tcp_child_ehash_entries` is set gets a hash of that
/// size holding only its own sockets, and the same dump returns the same sockets.
///
/// The lab's namespaces size their hash to the run ([`Netns::create_for`]) and write back the
/// two defaults the kernel derives from its size: `tcp_max_syn_backlog` (entries / 128, at
/// least 128: 2048 for 262,144) and `tcp_max_tw_buckets` (entries / 2).
fn host_ehash_entries() -> Option<u32> {
    let text = std::fs::read_to_string(EHASH).ok()?;
    // The host's value is positive; inside a namespace sharing the global hash it reads as
    // negative. Either way its magnitude is the global hash's size.
    let n: i64 = text.trim().parse().ok()?;
    u32::try_from(n.unsigned_abs()).ok().filter(|n| *n > 0)
}

/// The size of the TCP established hash of `ns`, and whether it is its own (`false`: it
/// shares the host's global hash). `None` on a kernel without the sysctl.
pub fn private_ehash(ns: &Netns) -> Option<(u64, bool)> {
    let text = ns.run(|| std::fs::read_to_string(EHASH).ok()).ok()??;
    let n: i64 = text.trim().parse().ok()?;
    Some((n.unsigned_abs(), n > 0))
}

/// Starts the namespaces' [warden](crate::warden) (`backlog-lab netns-warden N`), holding its
/// own descriptors of `namespaces`: if the lab dies without ending their sockets, the warden does
/// (see [`end_sockets`]), so no orphan keeps a namespace alive (they did for 105 s on veth and
/// 202 s on TUN after a SIGKILL). `None` if it could not start.
pub fn guard(namespaces: &[&Netns]) -> Option<crate::warden::Warden> {
    let fds: Vec<RawFd> = namespaces.iter().map(|n| n.raw_fd()).collect();
    let count = fds.len().to_string();
    crate::warden::Warden::spawn(&["netns-warden", &count], &fds)
}

/// `backlog-lab netns-warden N`: once the lab is gone or done, ends the sockets of the `N`
/// namespaces it was handed as descriptors 3, 4, ..., then exits, letting them go.
pub fn warden(count: usize) {
    crate::warden::wait_for_the_lab();
    for fd in 3..3 + count as RawFd {
        // SAFETY: the descriptor was handed over by `guard` and nothing else in this process
        // owns it.
        let ns = unsafe { <OwnedFd as std::os::fd::FromRawFd>::from_raw_fd(fd) };
        if setns(ns.as_fd(), CloneFlags::CLONE_NEWNET).is_ok() {
            let _ = crate::sockdiag::end_all_tcp();
        }
    }
}

/// Ends every TCP socket in `ns` (SOCK_DESTROY, as `ss -K` does). The lab calls it when it
/// takes its hosts down, after the last counter reading: a socket closed after the link is gone
/// would otherwise linger as an orphan, retransmitting its FIN for minutes and keeping the
/// namespace alive, into the next run's subnet and counters. Returns how many it ended.
pub fn end_sockets(ns: &Netns) -> std::io::Result<usize> {
    ns.run(crate::sockdiag::end_all_tcp)
        .map_err(|e| std::io::Error::other(e.to_string()))?
}

/// Inode of the namespace the process started in (the main thread never moves).
pub fn host_inode() -> u64 {
    inode_of("/proc/self/ns/net")
}

/// Inode of a namespace file such as `/proc/thread-self/ns/net` (0 if unreadable).
pub fn inode_of(path: &str) -> u64 {
    std::fs::metadata(path).map(|m| m.ino()).unwrap_or(0)
}

/// Makes an unprivileged caller able to build namespaces: if the process is not root, it moves
/// into a new user namespace where it is root (uid and gid mapped to its own), which grants
/// CAP_NET_ADMIN over network namespaces created from then on, and over nothing on the host.
/// Must run while the process is single-threaded, i.e. first thing in `main`.
pub fn become_root_in_user_namespace_if_needed() -> Result<(), Failure> {
    let uid = nix::unistd::geteuid();
    if uid.is_root() {
        return Ok(());
    }
    let gid = nix::unistd::getegid();
    unshare(CloneFlags::CLONE_NEWUSER).map_err(|e| {
        Failure::environment(format!(
            "not root, and unprivileged user namespaces are unavailable ({e}). Run as root \
             (sudo -E backlog-lab ...), or enable them (sysctl kernel.unprivileged_userns_clone=1 \
             or user.max_user_namespaces > 0)"
        ))
    })?;
    let write = |path: &str, text: String| {
        std::fs::write(path, text).map_err(|e| {
            Failure::environment(format!("cannot write {path} for the user namespace: {e}"))
        })
    };
    write("/proc/self/uid_map", format!("0 {uid} 1"))?;
    write("/proc/self/setgroups", "deny".into())?;
    write("/proc/self/gid_map", format!("0 {gid} 1"))?;
    Ok(())
}
