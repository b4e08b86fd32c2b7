//! Wardens: small processes that outlive the lab to undo what only a live process can, when the
//! lab dies without doing it itself (`SIGKILL`, `timeout -s KILL`, the OOM killer).
//!
//! A warden is this very executable (`/proc/self/exe`, whatever its name or path) running a
//! hidden subcommand, in a session of its own so that a kill of the run's process group
//! (`kill -9 -PGID`) does not take it along. Its stdin is a pipe only the lab holds: the lab
//! closes it when it has cleaned up by itself, and the kernel closes it when the lab dies. On
//! that end-of-file the warden does its one job and exits. A kill of both at once (a cgroup
//! kill) is the one case no warden covers; `backlog-lab cleanup` and the next run handle it.

use std::ffi::OsStr;
use std::os::fd::RawFd;
use std::os::unix::process::CommandExt;
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicBool, Ordering};

/// Set by the `backlog-lab` binary's `main`: only a process that is that binary (under whatever
/// name) has the hidden warden commands, so only it starts wardens; a test harness that links
/// the library does not.
static HAS_WARDENS: AtomicBool = AtomicBool::new(false);

/// Declares that this process's executable answers the warden commands (called by `main`).
pub fn this_binary_has_wardens() {
    HAS_WARDENS.store(true, Ordering::Relaxed);
}

/// The most descriptors a warden inherits.
const MAX_FDS: usize = 4;

/// A running warden; dropping it tells the warden the lab is done, and waits for it.
pub struct Warden {
    child: Child,
}

impl Warden {
    /// Starts `backlog-lab ARGS...` as a warden. The descriptors `fds` are handed to it as 3, 4,
    /// ... (at most four). `None` when this binary has no wardens or the spawn failed: the lab
    /// then runs unguarded, as it always cleans up by itself on every path it lives through.
    pub fn spawn<S: AsRef<OsStr>>(args: &[S], fds: &[RawFd]) -> Option<Warden> {
        if !HAS_WARDENS.load(Ordering::Relaxed) || fds.len() > MAX_FDS {
            return None;
        }
        let mut c = Command::new("/proc/self/exe");
        c.args(args)
            .stdin(Stdio::piped())
            .stdout(Stdio::null())
            .stderr(Stdio::null());
        let mut from = [-1; MAX_FDS];
        from[..fds.len()].copy_from_slice(fds);
        let n = fds.len();
        // SAFETY: only async-signal-safe calls (setsid, fcntl, dup2, close) on the child's own
        // descriptor table, with no allocation.
        unsafe {
            c.pre_exec(move || {
                libc::setsid();
                // Out of the way first, so that moving one into place never overwrites another;
                // dup2 then gives each a copy without close-on-exec.
                let mut high = [-1; MAX_FDS];
                for i in 0..n {
                    high[i] = libc::fcntl(from[i], libc::F_DUPFD_CLOEXEC, 64);
                    if high[i] < 0 {
                        return Err(std::io::Error::last_os_error());
                    }
                }
                for (i, fd) in high.iter().take(n).enumerate() {
                    if libc::dup2(*fd, 3 + i as RawFd) < 0 {
                        return Err(std::io::Error::last_os_error());
                    }
                    libc::close(*fd);
                }
                Ok(())
            });
        }
        c.spawn().ok().map(|child| Warden { child })
    }
}

impl Drop for Warden {
    fn drop(&mut self) {
        drop(self.child.stdin.take()); // end-of-file: the lab is done
        let _ = self.child.wait();
    }
}

/// In the warden: blocks until the lab is gone or done (its pipe on stdin closes). Ctrl-C, a
/// hangup or a `kill` of the terminal's process group reaches a warden too; it ignores them,
/// since it must outlive the lab to be of use.
pub fn wait_for_the_lab() {
    // SAFETY: setting a signal's disposition to SIG_IGN has no preconditions.
    unsafe {
        libc::signal(libc::SIGINT, libc::SIG_IGN);
        libc::signal(libc::SIGHUP, libc::SIG_IGN);
        libc::signal(libc::SIGTERM, libc::SIG_IGN);
    }
    // Until EOF (io::copy retries EINTR).
    let _ = std::io::copy(&mut std::io::stdin(), &mut std::io::sink());
}
