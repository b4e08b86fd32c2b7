//! A trace instance of the lab's own, on a tracefs mounted where only the lab sees it.
//!
//! Many machines (this one included) have tracefs compiled in but not mounted, and mounting it on
//! the host would change the host. So the tracing thread first leaves the host's mount table:
//! `unshare(CLONE_NEWNS)` (per thread, like the network namespaces), every mount made private so
//! nothing propagates back, then `mount -t tracefs` over `/sys/kernel/tracing` in that private
//! table only. The mount disappears with the thread.
//!
//! Inside it the lab makes an instance, `instances/backlog-lab-<pid>-<n>`: a ring buffer with its
//! own event switches, filters and clock, so the top-level buffer and any other tracer's settings
//! are never touched. The instance is removed on every path out ([`Instance`]'s `Drop`), and a
//! janitor process (`backlog-lab trace-janitor`, started inside the private mount table) removes
//! it when the run dies any other way, `SIGKILL` included: it waits for its stdin, a pipe only the
//! run holds, to close. Should even that fail, the next run removes instances whose process is
//! gone.

use std::ffi::OsStr;
use std::fs;
use std::io::{self, Write};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU32, Ordering};

use super::event::Kind;
use crate::warden::Warden;

/// Where the private mount goes (a directory sysfs always has).
const MOUNT_POINT: &str = "/sys/kernel/tracing";
const PREFIX: &str = "backlog-lab-";

/// Ring size over all CPUs, split between them: at most 4 MB (about 40,000 events) per CPU,
/// and 64 MB in all however many CPUs the host has.
const BUFFER_KB_PER_CPU: u64 = 4096;
const BUFFER_KB_TOTAL: u64 = 65536;

static INSTANCES: AtomicU32 = AtomicU32::new(0);

/// Moves the calling thread into a private mount table and mounts tracefs there. Call it only on
/// a thread of its own: the thread's view of the filesystem changes for good.
pub fn mount_privately() -> Result<PathBuf, String> {
    use nix::mount::{mount, MsFlags};
    nix::sched::unshare(nix::sched::CloneFlags::CLONE_NEWNS)
        .map_err(|e| format!("unshare(CLONE_NEWNS): {e}"))?;
    mount(
        None::<&str>,
        "/",
        None::<&str>,
        MsFlags::MS_REC | MsFlags::MS_PRIVATE,
        None::<&str>,
    )
    .map_err(|e| format!("making the private mount table private: {e}"))?;
    mount(
        Some("nodev"),
        MOUNT_POINT,
        Some("tracefs"),
        MsFlags::empty(),
        None::<&str>,
    )
    .map_err(|e| match e {
        nix::Error::EPERM => {
            "mounting tracefs needs root in the host's user namespace (EPERM)".into()
        }
        nix::Error::ENODEV => "this kernel has no tracefs (CONFIG_TRACING)".into(),
        e => format!("mount -t tracefs: {e}"),
    })?;
    Ok(PathBuf::from(MOUNT_POINT))
}

/// One trace instance, removed when dropped.
pub struct Instance {
    pub dir: PathBuf,
    /// Removes the instance if this process dies without doing it (see the module's notes).
    janitor: Option<Warden>,
}

impl Instance {
    /// Creates a fresh instance under `root` (a tracefs mount), after removing the instances of
    /// earlier lab processes that are gone.
    pub fn create(root: &Path) -> Result<Instance, String> {
        let instances = root.join("instances");
        remove_orphans(&instances);
        let n = INSTANCES.fetch_add(1, Ordering::Relaxed);
        let dir = instances.join(format!("{PREFIX}{}-{n}", std::process::id()));
        fs::create_dir(&dir).map_err(|e| format!("mkdir {}: {e}", dir.display()))?;
        let janitor = Warden::spawn(&[OsStr::new("trace-janitor"), dir.as_os_str()], &[]);
        let instance = Instance { dir, janitor };
        instance.write("trace_clock", "mono")?;
        let cpus = std::thread::available_parallelism().map_or(1, |n| n.get() as u64);
        let per_cpu = BUFFER_KB_PER_CPU.min(BUFFER_KB_TOTAL / cpus).max(256);
        instance.write("buffer_size_kb", &per_cpu.to_string())?;
        Ok(instance)
    }

    /// Writes a control file of the instance.
    pub fn write(&self, file: &str, value: &str) -> Result<(), String> {
        write_file(&self.dir.join(file), value)
    }

    /// Whether this kernel has the event at all (`kfree_skb` drop reasons came in 5.17, the
    /// `tcp_*` events at different times).
    pub fn has(&self, kind: Kind) -> bool {
        self.event_dir(kind).join("enable").exists()
    }

    /// Sets the event's in-kernel filter (none if `filter` is empty; "0" clears one) and
    /// enables the event.
    pub fn enable(&self, kind: Kind, filter: &str) -> Result<(), String> {
        let dir = self.event_dir(kind);
        if !filter.is_empty() {
            write_file(&dir.join("filter"), filter)?;
        }
        write_file(&dir.join("enable"), "1")
    }

    /// The event's format file: its drop reasons are listed there by name.
    pub fn format(&self, kind: Kind) -> io::Result<String> {
        fs::read_to_string(self.event_dir(kind).join("format"))
    }

    /// Events the ring buffer overwrote or could not take, summed over CPUs (`per_cpu/*/stats`).
    pub fn lost(&self) -> u64 {
        let Ok(cpus) = fs::read_dir(self.dir.join("per_cpu")) else {
            return 0;
        };
        cpus.flatten()
            .filter_map(|cpu| fs::read_to_string(cpu.path().join("stats")).ok())
            .flat_map(|text| {
                text.lines()
                    .filter_map(|l| {
                        let (k, v) = l.split_once(':')?;
                        matches!(k.trim(), "overrun" | "dropped events")
                            .then(|| v.trim().parse::<u64>().ok())?
                    })
                    .collect::<Vec<_>>()
            })
            .sum()
    }

    fn event_dir(&self, kind: Kind) -> PathBuf {
        self.dir
            .join("events")
            .join(kind.system())
            .join(kind.name())
    }
}

impl Drop for Instance {
    fn drop(&mut self) {
        // Events off first, so the buffer stops growing even if rmdir has to be retried.
        let _ = self.write("tracing_on", "0");
        if let Err(e) = remove(&self.dir) {
            eprintln!(
                "warning: could not remove the trace instance {}: {e}; remove it with `rmdir` \
                 on a tracefs mount",
                self.dir.display()
            );
        }
        drop(self.janitor.take()); // the janitor finds the instance gone and exits
    }
}

/// Removes an instance directory; a reader still closing its `trace_pipe` keeps it busy for a
/// moment, so EBUSY is retried for a second. Already gone is fine.
fn remove(dir: &Path) -> io::Result<()> {
    for _ in 0..50 {
        match fs::remove_dir(dir) {
            Err(e) if e.raw_os_error() == Some(libc::EBUSY) => {
                std::thread::sleep(std::time::Duration::from_millis(20))
            }
            Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(()),
            other => return other,
        }
    }
    fs::remove_dir(dir)
}

/// `backlog-lab trace-janitor DIR`, a [warden](crate::warden): once the run has ended, however
/// it ended, removes the instance if the run did not.
///
/// It acts only on a lab's instance, `.../instances/backlog-lab-<pid>-<n>`, of its parent or of
/// a lab that is gone (the parent may die before the janitor looks). Given any other folder it
/// does nothing at all.
pub fn janitor(dir: &Path) {
    let parent = std::os::unix::process::parent_id();
    let gone = |pid: u32| !Path::new(&format!("/proc/{pid}")).exists();
    if !instance_pid(dir).is_some_and(|pid| pid == parent || gone(pid)) {
        return;
    }
    crate::warden::wait_for_the_lab();
    let _ = write_file(&dir.join("tracing_on"), "0");
    let _ = remove(dir);
}

/// The pid of the lab that made `dir`, if it is a lab's trace instance:
/// `<...>/instances/backlog-lab-<pid>-<n>`.
fn instance_pid(dir: &Path) -> Option<u32> {
    let in_instances = dir
        .parent()
        .and_then(Path::file_name)
        .is_some_and(|n| n == "instances");
    let name = dir.file_name()?.to_string_lossy().into_owned();
    let (pid, n) = name.strip_prefix(PREFIX)?.split_once('-')?;
    n.parse::<u32>().ok()?;
    in_instances.then_some(pid.parse().ok()?)
}

/// `backlog-lab cleanup`: removes the trace instances of labs that are no longer running (a
/// leftover nothing could prevent, such as a cgroup kill of a run and its janitor together), in
/// a tracefs mounted privately for the purpose. Returns the names removed.
pub fn cleanup() -> Result<Vec<String>, String> {
    let root = mount_privately()?;
    Ok(remove_orphans(&root.join("instances")))
}

fn write_file(path: &Path, value: &str) -> Result<(), String> {
    fs::OpenOptions::new()
        .write(true)
        .open(path)
        .and_then(|mut f| f.write_all(value.as_bytes()))
        .map_err(|e| format!("writing `{value}` to {}: {e}", path.display()))
}

/// Removes `backlog-lab-<pid>-<n>` instances whose process no longer exists (a run killed by
/// `SIGKILL`); instances of running labs and of anyone else are left alone. Returns their names.
fn remove_orphans(instances: &Path) -> Vec<String> {
    let mut removed = Vec::new();
    let Ok(entries) = fs::read_dir(instances) else {
        return removed;
    };
    for entry in entries.flatten() {
        let name = entry.file_name().to_string_lossy().into_owned();
        let Some(pid) = name
            .strip_prefix(PREFIX)
            .and_then(|r| r.split('-').next())
            .and_then(|p| p.parse::<u32>().ok())
        else {
            continue;
        };
        if !Path::new(&format!("/proc/{pid}")).exists() {
            // A dead lab's instance may still be tracing: switch it off, then remove it.
            let _ = write_file(&entry.path().join("tracing_on"), "0");
            if fs::remove_dir(entry.path()).is_ok() {
                removed.push(name);
            }
        }
    }
    removed
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_a_labs_instance_is_one() {
        let p = |s: &str| instance_pid(Path::new(s));
        assert_eq!(
            p("/sys/kernel/tracing/instances/backlog-lab-42-0"),
            Some(42)
        );
        assert_eq!(p("/x/instances/backlog-lab-42-7"), Some(42));
        assert_eq!(p("/etc"), None);
        assert_eq!(p("/tmp/backlog-lab-42-0"), None);
        assert_eq!(p("/x/instances/backlog-lab-42"), None);
        assert_eq!(p("/x/instances/other-42-0"), None);
    }
}
