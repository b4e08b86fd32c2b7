//! What the kernel will make of the plan's `listen()`, known before any run: the accept queue's
//! limit (the backlog after the somaxconn clamp) and how many connections each queue holds.
//! The rules are the ones `../shared/docs/kernel-notes.md` measured: `listen()` clamps
//! `(unsigned) backlog` to somaxconn (so -1 means somaxconn); the accept queue is full when it
//! holds more than the limit (it holds limit + 1); the SYN queue likewise holds limit + 1 since
//! Linux 6.14, exactly limit before.

use super::RunPlan;

/// somaxconn in a fresh network namespace (the lab's hosts start from it, whatever the host's).
pub const SOMAXCONN_DEFAULT: u32 = 4096;

/// A fresh network namespace's defaults on this machine kind for the keys the rules read (the
/// lab's hosts start from them, whatever the host has).
pub const NAMESPACE_DEFAULTS: &[(&str, u32)] = &[
    ("net.core.somaxconn", SOMAXCONN_DEFAULT),
    ("net.ipv4.tcp_max_syn_backlog", 2048),
    ("net.ipv4.tcp_syncookies", 1),
    ("net.ipv4.tcp_abort_on_overflow", 0),
    ("net.ipv4.tcp_syn_retries", 6),
    ("net.ipv4.tcp_syn_linear_timeouts", 4),
    ("net.ipv4.tcp_synack_retries", 5),
];

/// The listen queues a plan will get.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Queues {
    /// The backlog as the kernel keeps it (`ss -lnt` Send-Q).
    pub limit: u32,
    /// somaxconn in the server namespace, and whether the scenario set it.
    pub somaxconn: u32,
    pub somaxconn_set: bool,
    /// Connections the accept queue holds: limit + 1.
    pub accept_holds: u32,
    /// Request sockets the SYN queue holds on this kernel (cookies, when on, take the rest).
    pub syn_holds: u32,
}

/// Whether a kernel's SYN queue holds backlog + 1 (6.14 and later; an unreadable release is
/// taken as a current kernel).
pub fn syn_queue_holds_one_more(release: &str) -> bool {
    let mut parts = release
        .split(|c: char| !c.is_ascii_digit())
        .filter_map(|p| p.parse::<u32>().ok());
    match (parts.next(), parts.next()) {
        (Some(major), Some(minor)) => (major, minor) >= (6, 14),
        _ => true,
    }
}

/// Which host a sysctl is read from.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Side {
    Server,
    Client,
}

impl RunPlan {
    /// A numeric sysctl of `side` as the run will have it: the scenario's value (and `true`), or
    /// the namespace default ([`NAMESPACE_DEFAULTS`]; 0 for a key not in it).
    pub fn sysctl_value(&self, side: Side, key: &str) -> (u32, bool) {
        let map = match side {
            Side::Server => &self.server.sysctl,
            Side::Client => &self.client.sysctl,
        };
        match map.get(key).and_then(|v| v.trim().parse().ok()) {
            Some(v) => (v, true),
            None => (
                NAMESPACE_DEFAULTS
                    .iter()
                    .find(|(k, _)| *k == key)
                    .map_or(0, |(_, v)| *v),
                false,
            ),
        }
    }

    /// The listen queues this plan gets on a kernel of `release`.
    pub fn queues(&self, release: &str) -> Queues {
        let (somaxconn, set) = self.sysctl_value(Side::Server, "net.core.somaxconn");
        // As __sys_listen does: a negative backlog, seen unsigned, is above any somaxconn.
        let limit = (self.server.backlog as u32).min(somaxconn);
        Queues {
            limit,
            somaxconn,
            somaxconn_set: set,
            accept_holds: limit + 1,
            syn_holds: limit + u32::from(syn_queue_holds_one_more(release)),
        }
    }
}

impl RunPlan {
    /// The most SYN-RECV request sockets this plan's listener can have at once for the lab's
    /// clients: none with syncookies 2 (every SYN gets a cookie); with syncookies 0 the SYN
    /// queue, but no more than `tcp_max_syn_backlog`'s 3/4 rule lets in for an unproven peer (a
    /// SYN is dropped once fewer than a quarter of it is free, so it stops one past three
    /// quarters); with syncookies 1 the SYN queue (cookies take the rest).
    pub fn syn_recv_holds(&self, release: &str) -> u32 {
        let holds = self.queues(release).syn_holds;
        let (max_syn, _) = self.sysctl_value(Side::Server, "net.ipv4.tcp_max_syn_backlog");
        match self.sysctl_value(Side::Server, "net.ipv4.tcp_syncookies").0 {
            2 => 0,
            0 => holds.min(max_syn - max_syn / 4 + 1),
            _ => holds,
        }
    }
}

/// This machine's kernel release (`uname -r`), or "" if unreadable.
pub fn kernel_release() -> String {
    std::fs::read_to_string("/proc/sys/kernel/osrelease")
        .map(|s| s.trim().to_string())
        .unwrap_or_default()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_syn_queue_gained_one_in_6_14() {
        assert!(syn_queue_holds_one_more("6.18.44-fc-v1045"));
        assert!(syn_queue_holds_one_more("6.14.0"));
        assert!(!syn_queue_holds_one_more("6.13.9"));
        assert!(!syn_queue_holds_one_more("3.10.0-1160.el7"));
        assert!(syn_queue_holds_one_more(""));
    }
}
