//! `environment.json`: where a run happened (kernel, tool, namespaces, the sysctls in force and
//! the host's own values of the same keys), so a result folder read on another machine still
//! says what it was measured on.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

/// Facts about where a run happened.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
#[serde(default)]
pub struct Environment {
    /// `backlog-lab VERSION` ([`TOOL`]).
    pub tool: String,
    pub kernel_release: String,
    pub started_at: String,
    pub scenario: String,
    pub server_address: String,
    pub client_address: String,
    pub namespace_inodes: BTreeMap<String, u64>,
    /// `ulimit -n` during the run: the most connections that can be in flight at once.
    pub rlimit_nofile: u64,
    pub sysctl: BTreeMap<String, BTreeMap<String, String>>,
    /// The host namespace's own values of the same keys, read (never written) for comparison.
    pub host_sysctl: BTreeMap<String, String>,
}

/// This program and its version, as `environment.json → tool` names it.
pub const TOOL: &str = concat!("backlog-lab ", env!("CARGO_PKG_VERSION"));
