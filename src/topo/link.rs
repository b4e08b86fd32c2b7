//! The wire between the two hosts, with addresses from the benchmarking range: a veth pair when
//! the link is ideal, or two TUN devices joined by the lab's delay line ([`super::delay`]) when
//! the scenario asks for RTT, jitter or loss.
//!
//! Both veth ends are created from inside the server namespace, the peer placed directly into the
//! client namespace by file descriptor, so no interface ever appears in the host namespace, not
//! even for a moment. Equivalent shell, run inside the server namespace:
//! `ip link add bl-srv address 02:b1::1 type veth peer name bl-cli address 02:b1::2 netns
//! CLIENT`, then in each namespace `ip link set lo up; ip link set DEV txqueuelen 10000 up; ip
//! addr add ADDR/24 dev DEV; ip neigh add PEER lladdr PEER_MAC dev DEV nud permanent`.
//!
//! The addresses are [`LabAddrs`]' (RFC 2544's benchmarking range), and exist only inside the
//! lab's namespaces. Its `flood_net` is where a SYN flood's spoofed sources come from: the server
//! routes it back over the link, and the client namespace blackholes it, so SYN-ACKs to spoofed
//! addresses die inside the lab.

use std::fs::File;
use std::io::{Read, Seek, SeekFrom};
use std::net::IpAddr;
use std::time::{Duration, Instant};

use futures::TryStreamExt;
use rtnetlink::packet_route::address::{AddressAttribute, AddressFlags, CacheInfo};
use rtnetlink::packet_route::link::{InfoData, InfoVeth, LinkAttribute};
use rtnetlink::packet_route::route::RouteType;
use rtnetlink::{Handle, LinkMessageBuilder, LinkUnspec, LinkVeth, RouteMessageBuilder};

use crate::counters::{CounterFiles, Snapshot};
use crate::error::Failure;
use crate::family::{Family, LabAddrs, Net};
use crate::netns::Netns;

const SERVER_DEV: &str = "bl-srv";
const CLIENT_DEV: &str = "bl-cli";
/// The veth ends' MAC addresses, locally administered. Fixed, so each side's neighbour entry
/// for the other is written at once: every lab's pair is a link of its own, so two labs with
/// the same MACs never meet.
const SERVER_MAC: [u8; 6] = [0x02, 0xb1, 0, 0, 0, 0x01];
const CLIENT_MAC: [u8; 6] = [0x02, 0xb1, 0, 0, 0, 0x02];

/// Creates the veth pair between `server` and `client`, brings both ends and both loopbacks up,
/// and assigns the server's and the client's addresses.
pub fn connect_veth(server: &Netns, client: &Netns, addrs: &LabAddrs) -> Result<(), Failure> {
    let a = *addrs;
    let client_fd = client.raw_fd();
    in_namespace(server, |handle| async move {
        let peer = LinkMessageBuilder::<LinkUnspec>::new()
            .name(CLIENT_DEV.to_string())
            .address(CLIENT_MAC.to_vec())
            .setns_by_fd(client_fd)
            .build();
        let veth = LinkVeth::new(SERVER_DEV, CLIENT_DEV)
            .address(SERVER_MAC.to_vec())
            .set_info_data(InfoData::Veth(InfoVeth::Peer(peer)))
            .build();
        handle.link().add(veth).execute().await?;
        configure(&handle, SERVER_DEV, &a, &[a.server]).await?;
        neighbour(&handle, SERVER_DEV, a.client, CLIENT_MAC).await?;
        route_flood(
            &handle,
            a.flood_net,
            FloodRoute::Back {
                dev: SERVER_DEV,
                via: Some(a.client),
            },
        )
        .await
    })?;
    in_namespace(client, |handle| async move {
        configure(&handle, CLIENT_DEV, &a, &[a.client]).await?;
        neighbour(&handle, CLIENT_DEV, a.server, SERVER_MAC).await?;
        route_flood(&handle, a.flood_net, FloodRoute::Blackhole).await
    })?;
    if a.server.is_ipv6() && !await_quiet_ipv6(&[(server, SERVER_DEV), (client, CLIENT_DEV)])? {
        eprintln!(
            "warning: the IPv6 link was not ready and quiet within {} s; MLD reports may be \
             counted in this run's Ip6.*Mcast* and drops",
            QUIET_BOUND.as_secs()
        );
    }
    Ok(())
}

/// How long [`await_quiet_ipv6`] waits at most.
const QUIET_BOUND: Duration = Duration::from_secs(3);
/// Multicast counters unchanged for this long: the MLD reports, repeated 20 ms apart, are sent.
const QUIET_FOR: Duration = Duration::from_millis(100);

/// Waits until each veth end's IPv6 is ready (its link-local address exists and is no longer
/// tentative) and no multicast packet has left or reached either host for [`QUIET_FOR`]; false
/// if that took longer than [`QUIET_BOUND`].
///
/// Why: veth reports carrier through linkwatch, which the kernel may defer by up to a second.
/// Only then does IPv6 configure the interface: it adds the link-local address and joins its
/// solicited-node group, and MLD reports the join twice. On a busy machine that came after
/// the run had begun, and the server counted the client's report in `Ip6.InMcastPkts` (CI saw
/// it once in about a hundred IPv6 runs).
fn await_quiet_ipv6(ends: &[(&Netns, &str)]) -> Result<bool, Failure> {
    // A /proc/net file reads the namespace it was opened in, whoever reads it later.
    let mut files = Vec::new();
    for (ns, dev) in ends {
        let counters = CounterFiles::open(ns, Family::Ipv6)?;
        let if_inet6 = ns
            .run(|| File::open("/proc/thread-self/net/if_inet6"))?
            .map_err(|e| {
                Failure::environment(format!(
                    "cannot read the IPv6 addresses of the {} namespace: {e}",
                    ns.label()
                ))
            })?;
        files.push((counters, if_inet6, *dev));
    }
    let start = Instant::now();
    let mut last = None;
    let mut since = start;
    while start.elapsed() < QUIET_BOUND {
        let mut ready = true;
        let mut mcast = 0;
        for (counters, if_inet6, dev) in &mut files {
            ready &= link_local_ready(&reread(if_inet6), dev);
            mcast += mcast_packets(&counters.read()?);
        }
        if !ready || last != Some(mcast) {
            last = Some(mcast);
            since = Instant::now();
        } else if since.elapsed() >= QUIET_FOR {
            return Ok(true);
        }
        std::thread::sleep(Duration::from_millis(10));
    }
    Ok(false)
}

/// The whole of a /proc file, read again from its start ("" if that fails, which reads as
/// not ready).
fn reread(f: &mut File) -> String {
    let mut text = String::new();
    if f.seek(SeekFrom::Start(0)).is_err() || f.read_to_string(&mut text).is_err() {
        text.clear();
    }
    text
}

/// True if `/proc/net/if_inet6` lists a link-local address on `dev` that is not tentative.
/// Its lines: address, ifindex, prefix length, scope, flags (hex), device.
fn link_local_ready(if_inet6: &str, dev: &str) -> bool {
    const IFA_F_TENTATIVE: u32 = 0x40;
    if_inet6.lines().any(|line| {
        let f: Vec<&str> = line.split_whitespace().collect();
        f.len() == 6
            && f[5] == dev
            && f[0].starts_with("fe80")
            && u32::from_str_radix(f[4], 16).is_ok_and(|flags| flags & IFA_F_TENTATIVE == 0)
    })
}

/// IPv6 multicast packets received and sent.
fn mcast_packets(counters: &Snapshot) -> i64 {
    ["Ip6.InMcastPkts", "Ip6.OutMcastPkts"]
        .iter()
        .filter_map(|k| counters.get(k))
        .sum()
}

/// Configures the TUN device [`super::delay::DEVICE`] already created in each namespace: up,
/// addressed, with a long ring, and the flood routes.
pub fn configure_tun(server: &Netns, client: &Netns, addrs: &LabAddrs) -> Result<(), Failure> {
    let dev = super::delay::DEVICE;
    let a = *addrs;
    in_namespace(server, |handle| async move {
        configure(&handle, dev, &a, &[a.server]).await?;
        route_flood(&handle, a.flood_net, FloodRoute::Back { dev, via: None }).await
    })?;
    in_namespace(client, |handle| async move {
        configure(&handle, dev, &a, &[a.client, a.calibration]).await?;
        route_flood(&handle, a.flood_net, FloodRoute::Blackhole).await
    })
}

/// `tx_dropped` of the TUN device in `ns`: packets its ring had no room for.
pub fn ring_drops(ns: &Netns) -> Result<u64, Failure> {
    in_namespace(ns, |handle| async move {
        let mut links = handle
            .link()
            .get()
            .match_name(super::delay::DEVICE.to_string())
            .execute();
        let mut dropped = 0;
        if let Some(link) = links.try_next().await? {
            for attr in link.attributes {
                if let LinkAttribute::Stats64(s) = attr {
                    dropped = s.tx_dropped;
                }
            }
        }
        Ok(dropped)
    })
}

/// `ip link set lo up; ip link set DEV txqueuelen 10000 up; ip addr add ADDR/24 dev DEV` (the
/// first address, with the lab subnet's prefix; later ones as single hosts, /32; on IPv6
/// `/64 nodad`, then `/128 nodad preferred_lft 0`).
async fn configure(
    handle: &Handle,
    dev: &str,
    lab: &LabAddrs,
    addrs: &[IpAddr],
) -> Result<(), rtnetlink::Error> {
    for name in ["lo", dev] {
        let index = index_of(handle, name).await?;
        let mut change = LinkUnspec::new_with_index(index).up();
        if name == dev {
            change = change.txqueuelen(super::delay::TXQUEUELEN);
        }
        handle.link().set(change.build()).execute().await?;
    }
    let index = index_of(handle, dev).await?;
    for (i, addr) in addrs.iter().enumerate() {
        let prefix = if i == 0 {
            lab.prefix_len
        } else {
            lab.family.host_prefix()
        };
        let mut add = handle.address().add(index, *addr, prefix);
        if addr.is_ipv6() {
            // `nodad`: usable at once, not tentative. A later address (the calibration
            // client's) is `preferred_lft 0`: IPv6 source selection avoids deprecated addresses
            // (RFC 6724 rule 3), so the storm's connections come from the client's address, as
            // IPv4's primary address does, while a socket bound to it can still use it.
            let attrs = &mut add.message_mut().attributes;
            attrs.push(AddressAttribute::Flags(AddressFlags::Nodad));
            if i > 0 {
                let mut lifetimes = CacheInfo::default();
                lifetimes.ifa_preferred = 0;
                lifetimes.ifa_valid = u32::MAX;
                attrs.push(AddressAttribute::CacheInfo(lifetimes));
            }
        }
        add.execute().await?;
    }
    Ok(())
}

/// `ip neigh add IP lladdr MAC dev DEV nud permanent`: the host knows its peer's MAC from the
/// start, so no ARP or neighbour discovery (ICMPv6, counted in `Icmp6.*` and `Ip6.*`) crosses
/// the link during a run, and the storm's first SYN does not wait for one.
async fn neighbour(
    handle: &Handle,
    dev: &str,
    ip: IpAddr,
    mac: [u8; 6],
) -> Result<(), rtnetlink::Error> {
    let index = index_of(handle, dev).await?;
    handle
        .neighbours()
        .add(index, ip)
        .link_layer_address(&mac)
        .execute()
        .await
}

/// The route each namespace has for the flood's network.
enum FloodRoute<'a> {
    /// Server side: over the link (`via` the client's address on veth, directly on TUN), so
    /// SYN-ACKs to spoofed sources go to the client namespace.
    Back { dev: &'a str, via: Option<IpAddr> },
    /// Client side: a blackhole, where those SYN-ACKs end without an answer.
    Blackhole,
}

async fn route_flood(
    handle: &Handle,
    net: Net,
    how: FloodRoute<'_>,
) -> Result<(), rtnetlink::Error> {
    // The builder over `IpAddr` checks that destination and gateway are of one family.
    let invalid = |_| rtnetlink::Error::RequestFailed;
    let route = RouteMessageBuilder::<IpAddr>::new()
        .destination_prefix(net.addr, net.len)
        .map_err(invalid)?;
    let message = match how {
        FloodRoute::Blackhole => route.kind(RouteType::BlackHole).build(),
        FloodRoute::Back { dev, via } => {
            let route = route.output_interface(index_of(handle, dev).await?);
            match via {
                Some(gw) => route.gateway(gw).map_err(invalid)?.build(),
                None => route.build(),
            }
        }
    };
    handle.route().add(message).execute().await
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
fn in_namespace<T, F, Fut>(ns: &Netns, f: F) -> Result<T, Failure>
where
    T: Send,
    F: FnOnce(Handle) -> Fut + Send,
    Fut: std::future::Future<Output = Result<T, rtnetlink::Error>>,
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
            "cannot set up the lab link in the {label} namespace: {e} (this needs CAP_NET_ADMIN \
             and a kernel with veth and tun support: modprobe veth tun)"
        ))
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_tentative_or_foreign_link_local_is_not_ready() {
        let line = |flags: &str, dev: &str| {
            format!("fe8000000000000000b100fffe000001 02 40 20 {flags} {dev}\n")
        };
        assert!(link_local_ready(&line("80", "bl-srv"), "bl-srv"));
        assert!(
            !link_local_ready(&line("c0", "bl-srv"), "bl-srv"),
            "tentative"
        );
        assert!(
            !link_local_ready(&line("80", "bl-cli"), "bl-srv"),
            "other device"
        );
        let global = "20010002000000090000000000000001 02 40 00 80 bl-srv\n";
        assert!(!link_local_ready(global, "bl-srv"), "not link-local");
        assert!(!link_local_ready("", "bl-srv"));
    }

    #[test]
    fn multicast_packets_sum_both_directions() {
        let mut counters = Snapshot::default();
        let snmp6 = "Ip6InReceives                   \t12\nIp6InMcastPkts                  \t4\n\
                     Ip6OutMcastPkts                 \t3\nIcmp6InMsgs                     \t7\n";
        counters.add_snmp6(snmp6).unwrap();
        assert_eq!(mcast_packets(&counters), 7);
    }
}
