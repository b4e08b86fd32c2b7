//! The lab's two hosts: a server and a client network namespace joined by a veth pair, each with
//! its own sysctls. [`Topology::build`] returns them live; dropping the [`Topology`] closes the
//! namespace descriptors and the kernel tears everything down.

pub mod link;
pub mod netns;
pub mod sysctl;

use std::collections::BTreeMap;

pub use netns::Netns;

use crate::error::Failure;

/// The live lab: two namespaces, linked, with their sysctls applied and read back.
pub struct Topology {
    pub server: Netns,
    pub client: Netns,
    /// Effective sysctl values per namespace, as read back after setup.
    pub server_sysctl: BTreeMap<String, String>,
    pub client_sysctl: BTreeMap<String, String>,
}

impl Topology {
    /// Creates both namespaces, applies the sysctls, links them, and reads the values back.
    pub fn build(
        server_sysctl: &BTreeMap<String, String>,
        client_sysctl: &BTreeMap<String, String>,
    ) -> Result<Topology, Failure> {
        let server = Netns::create("server")?;
        let client = Netns::create("client")?;
        sysctl::apply(&server, server_sysctl)?;
        sysctl::apply(&client, client_sysctl)?;
        link::connect_veth(&server, &client)?;
        let server_eff = sysctl::read_effective(&server, server_sysctl.keys())?;
        let client_eff = sysctl::read_effective(&client, client_sysctl.keys())?;
        Ok(Topology {
            server,
            client,
            server_sysctl: server_eff,
            client_sysctl: client_eff,
        })
    }
}
