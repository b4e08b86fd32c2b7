//! Per-namespace `net.*` sysctls: write inside the namespace, read back, refuse everything else.
//!
//! `/proc/sys/net` resolves against the network namespace of the *calling thread*, so a write
//! made from a thread inside a lab namespace changes only that namespace
//! (equivalent: `ip netns exec NS sysctl -w KEY=VALUE`). Host-wide keys such as
//! `net.core.netdev_max_backlog` do not exist inside a child namespace, and a few
//! (`net.core.rmem_max`) appear there read-only; both are refused with a message saying so. The
//! host namespace is never written: [`apply`] checks the namespace it runs in.

use std::collections::BTreeMap;
use std::path::PathBuf;

use crate::error::Failure;
use crate::netns::{host_inode, inode_of, Netns};

/// Keys recorded for every namespace, whether a scenario set them or not, so that a result
/// always says which values the kernel really used.
pub const REPORTED: &[&str] = &[
    "net.core.somaxconn",
    "net.ipv4.tcp_max_syn_backlog",
    "net.ipv4.tcp_abort_on_overflow",
    "net.ipv4.tcp_syncookies",
    "net.ipv4.tcp_synack_retries",
    "net.ipv4.tcp_syn_retries",
    "net.ipv4.tcp_syn_linear_timeouts",
    "net.ipv4.tcp_timestamps",
    "net.ipv4.tcp_tw_reuse",
    "net.ipv4.tcp_fin_timeout",
    "net.ipv4.tcp_max_tw_buckets",
    "net.ipv4.tcp_no_metrics_save",
    "net.ipv4.ip_local_port_range",
];

fn path_of(key: &str) -> PathBuf {
    PathBuf::from("/proc/sys").join(key.replace('.', "/"))
}

/// Same text as the kernel prints, ignoring whitespace differences ("1024 65535" vs "1024\t65535").
fn normalize(value: &str) -> String {
    value.split_whitespace().collect::<Vec<_>>().join(" ")
}

/// Whether the kernel's read-back equals what was written: field by field, as numbers where
/// both are numbers (so "0128" stored as "128" counts as the same value).
fn same_value(got: &str, wrote: &str) -> bool {
    let (g, w) = (normalize(got), normalize(wrote));
    g.split(' ').count() == w.split(' ').count()
        && g.split(' ')
            .zip(w.split(' '))
            .all(|(a, b)| match (a.parse::<i64>(), b.parse::<i64>()) {
                (Ok(x), Ok(y)) => x == y,
                _ => a == b,
            })
}

/// Checks that a key is shaped like a network sysctl, before anything is created.
pub fn validate_key(key: &str) -> Result<(), Failure> {
    let ok = key.starts_with("net.")
        && key.split('.').count() >= 3
        && key
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || c == '.' || c == '_' || c == '-');
    if ok {
        Ok(())
    } else {
        Err(Failure::bad_input(format!(
            "sysctl `{key}`: only per-namespace network sysctls (net.core.*, net.ipv4.*, net.ipv6.*, ...) \
             can be set; backlog-lab never changes host-wide settings"
        )))
    }
}

/// Writes each `key = value` inside `ns`, reads it back, and fails if a value did not stick.
pub fn apply(ns: &Netns, values: &BTreeMap<String, String>) -> Result<(), Failure> {
    ns.run(|| {
        if host_inode() == inode_of("/proc/thread-self/ns/net") {
            return Err(Failure::environment(
                "refusing to write sysctls in the host namespace",
            ));
        }
        for (key, value) in values {
            write_one(ns.label(), key, value)?;
        }
        Ok(())
    })?
}

/// Sets `values` in a namespace made for the purpose and dropped at once: exactly what a run
/// does with them, without a lab, so that `check` refuses what `run` would refuse (a key that is
/// host-wide or read-only in a namespace, a value the kernel rejects or rewrites). Fails as
/// [`Failure::environment`] when no namespace can be made here.
pub fn try_in_scratch(
    side: &'static str,
    values: &BTreeMap<String, String>,
) -> Result<(), Failure> {
    let ns = Netns::create(side)?;
    apply(&ns, values)
}

fn write_one(ns: &str, key: &str, value: &str) -> Result<(), Failure> {
    validate_key(key)?;
    let path = path_of(key);
    let meta = match std::fs::metadata(&path) {
        Ok(m) => m,
        Err(_) if host_has(key) => {
            return Err(Failure::bad_input(format!(
            "sysctl `{key}` is not per network namespace (it exists only in the host namespace), \
                 so backlog-lab will not set it: changing it would change the whole machine"
        )))
        }
        Err(_) => {
            return Err(Failure::bad_input(format!(
                "sysctl `{key}` does not exist on this kernel (no {})",
                path.display()
            )))
        }
    };
    use std::os::unix::fs::PermissionsExt;
    if meta.permissions().mode() & 0o222 == 0 {
        return Err(Failure::bad_input(format!(
            "sysctl `{key}` is read-only inside a network namespace (it is a host-wide setting), \
             so backlog-lab will not set it"
        )));
    }
    std::fs::write(&path, value).map_err(|e| {
        let msg = format!("cannot set {key}={value} in the {ns} namespace: {e}");
        if e.kind() == std::io::ErrorKind::PermissionDenied {
            Failure::environment(format!(
                "{msg}. Run as root or with CAP_NET_ADMIN (sudo -E backlog-lab ...)"
            ))
        } else {
            Failure::bad_input(format!(
                "{msg} (is the value in the range the kernel accepts?)"
            ))
        }
    })?;
    let got = read_one(key).unwrap_or_default();
    if !same_value(&got, value) {
        return Err(Failure::bad_input(format!(
            "sysctl {key}={value} did not stick in the {ns} namespace: the kernel stores `{got}` \
             (it clamps or rewrites some values; give one it keeps as is)"
        )));
    }
    Ok(())
}

/// Whether a key exists in the host namespace. Looked up (never written) from a thread that
/// joins the namespace of the process's main thread, which never leaves the host.
fn host_has(key: &str) -> bool {
    let Ok(host) = std::fs::File::open("/proc/self/ns/net") else {
        return false;
    };
    std::thread::scope(|s| {
        s.spawn(|| {
            nix::sched::setns(&host, nix::sched::CloneFlags::CLONE_NEWNET).is_ok()
                && path_of(key).exists()
        })
        .join()
        .unwrap_or(false)
    })
}

fn read_one(key: &str) -> Option<String> {
    std::fs::read_to_string(path_of(key))
        .ok()
        .map(|s| normalize(&s))
}

/// The host namespace's values of [`REPORTED`], read (never written) from the calling thread,
/// which must be in the host namespace (the main thread always is).
pub fn read_host() -> BTreeMap<String, String> {
    REPORTED
        .iter()
        .filter_map(|k| read_one(k).map(|v| (k.to_string(), v)))
        .collect()
}

/// Reads the effective values of [`REPORTED`] plus `extra` keys inside `ns`.
pub fn read_effective<'a>(
    ns: &Netns,
    extra: impl IntoIterator<Item = &'a String>,
) -> Result<BTreeMap<String, String>, Failure> {
    let mut keys: Vec<String> = REPORTED.iter().map(|k| k.to_string()).collect();
    keys.extend(extra.into_iter().cloned());
    ns.run(|| {
        keys.into_iter()
            .filter_map(|k| read_one(&k).map(|v| (k, v)))
            .collect()
    })
}
