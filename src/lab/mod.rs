//! The lab: its two hosts standing with their server listening and their probes open
//! ([`Lab`]), one storm through it from time zero to teardown ([`storm`]), and the summary and
//! verdict of what it measured ([`judge`]).
//!
//! The lab hands its measurements out before anything is drawn or judged, and its topology is
//! dropped (which frees both namespaces) on every path out, errors included.

pub mod judge;
pub mod storm;

use std::collections::BTreeMap;
use std::net::SocketAddr;

use crate::counters::{CounterFiles, ListenDiag, Probes, QueueSample};
use crate::error::Failure;
use crate::plan::RunPlan;
use crate::record::Environment;
use crate::server::Server;
use crate::topo::{sysctl, Topology};

/// The lab standing, before any traffic: both hosts with their sysctls read back, the server
/// listening (connections queue but nothing is accepted until [`Server::begin`]), and the
/// counter and queue probes open. Dropping it frees everything.
pub struct Lab {
    pub topo: Topology,
    pub server: Server,
    pub probes: Probes,
    pub target: SocketAddr,
    /// The listener's queue right after `listen()`: its `accept_queue_limit` is the kernel's clamp.
    pub initial_queue: QueueSample,
    /// Every listening socket's limit (Send-Q) then: one, or several with SO_REUSEPORT.
    pub limits: Vec<u32>,
    /// Where a client of the user's own (`client.command`) writes its output.
    pub client_log: std::path::PathBuf,
}

impl Lab {
    /// Builds the hosts, starts the server and opens the probes. The namespaces exist only as
    /// descriptors, so a failure here (a sysctl the kernel refuses) leaves nothing behind.
    /// Programs of the user's own write their output to `dir/server.log` and `dir/client.log`.
    ///
    /// `sockets` bounds the connections the hosts will see, which sizes their TCP hashes
    /// ([`crate::netns::Netns::create_for`]); `None` when the lab cannot know (`serve`, a
    /// client program): they are then as large as the host's.
    pub fn stand_up(
        plan: &RunPlan,
        dir: &std::path::Path,
        sockets: Option<u64>,
    ) -> Result<Lab, Failure> {
        let topo = Topology::build(
            &plan.server.sysctl,
            &plan.client.sysctl,
            &plan.link,
            plan.family,
            sockets,
        )?;
        let target = topo.addrs.server_at(plan.server.port);
        let log = dir.join(crate::results::files::SERVER_LOG);
        let server = Server::start(&topo.server, target, &plan.server, &log)?;
        let mut probes = Probes {
            server: CounterFiles::open(&topo.server, plan.family)?,
            client: Some(CounterFiles::open(&topo.client, plan.family)?),
            diag: ListenDiag::open(&topo.server, plan.server.port, plan.family)?
                .with_mapped(plan.server.program.is_some())
                .sole_listener(plan.server.program.is_none()),
        };
        let initial_queue = probes
            .diag
            .sample()
            .map_err(|e| Failure::environment(format!("sock_diag: {e}")))?;
        let limits = probes
            .diag
            .limits()
            .map_err(|e| Failure::environment(format!("sock_diag: {e}")))?;
        Ok(Lab {
            topo,
            server,
            probes,
            target,
            initial_queue,
            limits,
            client_log: dir.join(crate::results::files::CLIENT_LOG),
        })
    }

    /// The effective sysctls of both namespaces, as read back after setup.
    pub fn sysctls(&self) -> BTreeMap<String, BTreeMap<String, String>> {
        BTreeMap::from([
            ("server".to_string(), self.topo.server_sysctl.clone()),
            ("client".to_string(), self.topo.client_sysctl.clone()),
        ])
    }

    /// Where this run happens, for `environment.json`.
    pub fn environment(&self, plan: &RunPlan, started_at: String, nofile: u64) -> Environment {
        Environment {
            tool: crate::record::environment::TOOL.into(),
            kernel_release: crate::plan::queues::kernel_release(),
            started_at,
            scenario: plan.origin.clone(),
            server_address: self.target.to_string(),
            client_address: self.topo.addrs.client.to_string(),
            namespace_inodes: BTreeMap::from([
                ("server".to_string(), self.topo.server.inode()),
                ("client".to_string(), self.topo.client.inode()),
            ]),
            rlimit_nofile: nofile,
            sysctl: self.sysctls(),
            host_sysctl: sysctl::read_host(),
        }
    }
}

/// Raises the soft open-files limit to the hard one (and the hard one too, where allowed), since
/// every connection in flight is a descriptor. Returns the soft limit in force.
pub fn raise_nofile_limit() -> u64 {
    use nix::sys::resource::{getrlimit, setrlimit, Resource};
    let Ok((soft, hard)) = getrlimit(Resource::RLIMIT_NOFILE) else {
        return 1024;
    };
    let want = 1 << 20;
    if hard < want && setrlimit(Resource::RLIMIT_NOFILE, want, want).is_ok() {
        return want;
    }
    if setrlimit(Resource::RLIMIT_NOFILE, hard, hard).is_ok() {
        return hard;
    }
    soft
}
