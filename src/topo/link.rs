//! The wire between the two hosts: a veth pair with addresses from the benchmarking range.
//!
//! Both ends are created from inside the server namespace, the peer placed directly into the
//! client namespace by file descriptor, so no interface ever appears in the host namespace, not
//! even for a moment. Equivalent shell, run inside the server namespace:
//! `ip link add bl-srv type veth peer name bl-cli netns CLIENT`, then in each namespace
//! `ip link set lo up; ip link set DEV up; ip addr add ADDR/24 dev DEV`.
//!
//! Addresses come from 198.18.0.0/15 (RFC 2544, benchmarking), so no real network is shadowed,
//! and they exist only inside the lab's namespaces.

use std::net::{IpAddr, Ipv4Addr};

use futures::TryStreamExt;
use rtnetlink::packet_route::link::{InfoData, InfoVeth};
use rtnetlink::{Handle, LinkMessageBuilder, LinkUnspec, LinkVeth};

use super::netns::Netns;
use crate::error::Failure;

/// The server's address on the lab link.
pub const SERVER_ADDR: Ipv4Addr = Ipv4Addr::new(198, 18, 0, 1);
/// The client's address on the lab link.
pub const CLIENT_ADDR: Ipv4Addr = Ipv4Addr::new(198, 18, 0, 2);
/// Prefix length of the lab subnet 198.18.0.0/24.
pub const PREFIX_LEN: u8 = 24;

const SERVER_DEV: &str = "bl-srv";
const CLIENT_DEV: &str = "bl-cli";

/// Creates the veth pair between `server` and `client`, brings both ends and both loopbacks up,
/// and assigns [`SERVER_ADDR`] and [`CLIENT_ADDR`].
pub fn connect_veth(server: &Netns, client: &Netns) -> Result<(), Failure> {
    let client_fd = client.raw_fd();
    in_namespace(server, |handle| async move {
        let peer = LinkMessageBuilder::<LinkUnspec>::new()
            .name(CLIENT_DEV.to_string())
            .setns_by_fd(client_fd)
            .build();
        let veth = LinkVeth::new(SERVER_DEV, CLIENT_DEV)
            .set_info_data(InfoData::Veth(InfoVeth::Peer(peer)))
            .build();
        handle.link().add(veth).execute().await?;
        configure(&handle, SERVER_DEV, SERVER_ADDR).await
    })?;
    in_namespace(client, |handle| async move {
        configure(&handle, CLIENT_DEV, CLIENT_ADDR).await
    })
}

/// `ip link set lo up; ip link set DEV up; ip addr add ADDR/24 dev DEV`.
async fn configure(handle: &Handle, dev: &str, addr: Ipv4Addr) -> Result<(), rtnetlink::Error> {
    for name in ["lo", dev] {
        let index = index_of(handle, name).await?;
        handle
            .link()
            .set(LinkUnspec::new_with_index(index).up().build())
            .execute()
            .await?;
    }
    let index = index_of(handle, dev).await?;
    handle
        .address()
        .add(index, IpAddr::V4(addr), PREFIX_LEN)
        .execute()
        .await
}

async fn index_of(handle: &Handle, name: &str) -> Result<u32, rtnetlink::Error> {
    let mut links = handle.link().get().match_name(name.to_string()).execute();
    match links.try_next().await? {
        Some(link) => Ok(link.header.index),
        None => Err(rtnetlink::Error::RequestFailed),
    }
}

/// Runs an rtnetlink conversation from inside `ns`: the netlink socket is opened by a thread in
/// the namespace, so every request addresses that namespace's links.
fn in_namespace<F, Fut>(ns: &Netns, f: F) -> Result<(), Failure>
where
    F: FnOnce(Handle) -> Fut + Send,
    Fut: std::future::Future<Output = Result<(), rtnetlink::Error>>,
{
    let label = ns.label();
    ns.run(|| {
        let rt = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()?;
        rt.block_on(async {
            let (conn, handle, _) = rtnetlink::new_connection()?;
            tokio::spawn(conn);
            f(handle).await.map_err(std::io::Error::other)
        })
    })?
    .map_err(|e| {
        Failure::environment(format!(
            "cannot set up the veth link in the {label} namespace: {e} (this needs CAP_NET_ADMIN \
             and a kernel with veth support: modprobe veth)"
        ))
    })
}
