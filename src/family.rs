//! The address family the lab speaks, and the lab's addresses in it. Every socket, address,
//! route, sock_diag request and trace filter of the lab asks here, so that a second family
//! (IPv6) is a new value of [`Family`] with its [`LabAddrs`], not an edit of every module: a
//! `match` on the family where the packet format itself differs (the SYN flood's raw packets)
//! tells the compiler where that work is. A scenario picks one with `family = "ipv4" |
//! "ipv6"` (IPv4 unless set).

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};

/// The IP version of the lab's hosts.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub enum Family {
    #[default]
    Ipv4,
    Ipv6,
}

/// The values the scenario key `family` takes, as the user writes them.
pub const FAMILY_NAMES: &[&str] = &["ipv4", "ipv6"];

/// A network: an address and its prefix length.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Net {
    pub addr: IpAddr,
    pub len: u8,
}

impl Net {
    /// Whether `ip` lies in this network (never, for an address of the other family).
    pub fn contains(&self, ip: IpAddr) -> bool {
        match (self.addr, ip) {
            (IpAddr::V4(net), IpAddr::V4(ip)) => {
                let mask = u32::MAX.checked_shl(32 - u32::from(self.len)).unwrap_or(0);
                u32::from(ip) & mask == u32::from(net) & mask
            }
            (IpAddr::V6(net), IpAddr::V6(ip)) => {
                let mask = u128::MAX
                    .checked_shl(128 - u32::from(self.len))
                    .unwrap_or(0);
                u128::from(ip) & mask == u128::from(net) & mask
            }
            _ => false,
        }
    }
}

/// The lab's addresses, from the benchmarking ranges (RFC 2544's 198.18.0.0/15, RFC 5180's
/// 2001:2::/48), so no real network is shadowed; they exist only inside the lab's namespaces.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct LabAddrs {
    pub family: Family,
    /// The server's address on the lab link.
    pub server: IpAddr,
    /// The client's address on the lab link.
    pub client: IpAddr,
    /// A second client address, used only to calibrate the delay line, so the calibration's
    /// handshakes leave no tcp_metrics entry for [`LabAddrs::client`] (that would make the
    /// storm's peer "proven" to the `tcp_max_syn_backlog` rule before the run starts).
    pub calibration: IpAddr,
    /// The lab subnet's prefix length (the link's first address on each side).
    pub prefix_len: u8,
    /// Where spoofed SYN-flood sources live: the server routes it back over the link and the
    /// client namespace blackholes it, so SYN-ACKs to spoofed addresses die inside the lab.
    pub flood_net: Net,
}

impl Family {
    /// The family a scenario names (`ipv4`, `ipv6`), or None.
    pub fn parse(name: &str) -> Option<Family> {
        match name {
            "ipv4" => Some(Family::Ipv4),
            "ipv6" => Some(Family::Ipv6),
            _ => None,
        }
    }

    /// The scenario's name for it, as in the results' settings and labels.
    pub fn name(self) -> &'static str {
        match self {
            Family::Ipv4 => "ipv4",
            Family::Ipv6 => "ipv6",
        }
    }

    /// What the kernel's trace events and function names call it (`v4`, `v6`), as in
    /// `cookie_v6_check`.
    pub fn short(self) -> &'static str {
        match self {
            Family::Ipv4 => "v4",
            Family::Ipv6 => "v6",
        }
    }

    /// The addresses of a lab alone on the machine (subnet 0): 198.18.0.1 and .2, or 2001:2::1
    /// and ::2.
    pub const fn addrs(self) -> LabAddrs {
        self.addrs_in(0)
    }

    /// The lab's addresses in subnet `subnet` of the range (`198.18.<subnet>.0/24`): each lab on
    /// the machine claims a subnet of its own ([`crate::topo::claim::Subnet`]), so two labs never
    /// share a 4-tuple, and a run does not reuse the one a run before it just left. The flood's
    /// spoofed sources share one /16: they never answer anyway. On IPv6 the subnet is the /64
    /// `2001:2:0:<subnet>::/64` and the flood's sources come from `2001:2:0:ff00::/64`, outside
    /// every lab's subnet.
    pub const fn addrs_in(self, subnet: u8) -> LabAddrs {
        match self {
            Family::Ipv4 => LabAddrs {
                family: self,
                server: IpAddr::V4(Ipv4Addr::new(198, 18, subnet, 1)),
                client: IpAddr::V4(Ipv4Addr::new(198, 18, subnet, 2)),
                calibration: IpAddr::V4(Ipv4Addr::new(198, 18, subnet, 3)),
                prefix_len: 24,
                flood_net: Net {
                    addr: IpAddr::V4(Ipv4Addr::new(198, 19, 0, 0)),
                    len: 16,
                },
            },
            Family::Ipv6 => {
                let s = subnet as u16;
                LabAddrs {
                    family: self,
                    server: IpAddr::V6(Ipv6Addr::new(0x2001, 2, 0, s, 0, 0, 0, 1)),
                    client: IpAddr::V6(Ipv6Addr::new(0x2001, 2, 0, s, 0, 0, 0, 2)),
                    calibration: IpAddr::V6(Ipv6Addr::new(0x2001, 2, 0, s, 0, 0, 0, 3)),
                    prefix_len: 64,
                    flood_net: Net {
                        addr: IpAddr::V6(Ipv6Addr::new(0x2001, 2, 0, 0xff00, 0, 0, 0, 0)),
                        len: 64,
                    },
                }
            }
        }
    }

    /// The socket domain (`AF_INET`, `AF_INET6`).
    pub fn domain(self) -> socket2::Domain {
        match self {
            Family::Ipv4 => socket2::Domain::IPV4,
            Family::Ipv6 => socket2::Domain::IPV6,
        }
    }

    /// The address family number that sock_diag requests carry.
    pub fn af(self) -> u8 {
        match self {
            Family::Ipv4 => libc::AF_INET as u8,
            Family::Ipv6 => libc::AF_INET6 as u8,
        }
    }

    /// The ethertype `skb:kfree_skb` reports as its `protocol` for this family's packets.
    pub const fn ethertype(self) -> u16 {
        match self {
            Family::Ipv4 => 0x0800,
            Family::Ipv6 => 0x86dd,
        }
    }

    /// The prefix length of a single host (`/32`, `/128`).
    pub fn host_prefix(self) -> u8 {
        match self {
            Family::Ipv4 => 32,
            Family::Ipv6 => 128,
        }
    }

    /// The unspecified address (`0.0.0.0`, `::`), to listen on every address.
    pub fn unspecified(self) -> IpAddr {
        match self {
            Family::Ipv4 => IpAddr::V4(Ipv4Addr::UNSPECIFIED),
            Family::Ipv6 => IpAddr::V6(Ipv6Addr::UNSPECIFIED),
        }
    }

    /// Whether this machine's kernel speaks the family: IPv6 can be compiled out, or disabled
    /// at boot with `ipv6.disable=1`, and then its sysctls (`/proc/sys/net/ipv6/conf`, which
    /// the lab writes to quiet its interfaces) are absent.
    pub fn available(self) -> bool {
        match self {
            Family::Ipv4 => true,
            Family::Ipv6 => std::path::Path::new("/proc/sys/net/ipv6/conf").exists(),
        }
    }
}

impl std::fmt::Display for Family {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.name())
    }
}

impl LabAddrs {
    /// The server's socket address on `port`.
    pub fn server_at(&self, port: u16) -> SocketAddr {
        SocketAddr::new(self.server, port)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_flood_net_holds_spoofed_sources_and_not_the_lab_hosts() {
        let a = Family::Ipv4.addrs();
        assert!(a.flood_net.contains("198.19.3.4".parse().unwrap()));
        assert!(!a.flood_net.contains(a.client));
        assert!(!a.flood_net.contains(a.server));
        assert!(!a.flood_net.contains("::1".parse().unwrap()));
        assert_eq!(a.server_at(80).to_string(), "198.18.0.1:80");
        let b = Family::Ipv4.addrs_in(7);
        assert_eq!(b.client.to_string(), "198.18.7.2");
        assert_eq!(b.flood_net, a.flood_net);
    }

    #[test]
    fn ipv6_uses_the_benchmarking_range_and_floods_from_outside_every_subnet() {
        let a = Family::Ipv6.addrs();
        assert_eq!(a.server.to_string(), "2001:2::1");
        assert_eq!(a.client.to_string(), "2001:2::2");
        assert_eq!(a.calibration.to_string(), "2001:2::3");
        assert_eq!(a.server_at(80).to_string(), "[2001:2::1]:80");
        let b = Family::Ipv6.addrs_in(255);
        assert_eq!(b.client.to_string(), "2001:2:0:ff::2");
        let lab = Net {
            addr: b.server,
            len: b.prefix_len,
        };
        assert!(!lab.contains(a.flood_net.addr));
        assert!(a.flood_net.contains("2001:2:0:ff00::1234".parse().unwrap()));
        assert!(!a.flood_net.contains(a.client));
        assert_eq!(Family::parse("ipv6"), Some(Family::Ipv6));
        assert_eq!(Family::parse("ipv5"), None);
        assert_eq!(Family::Ipv6.to_string(), "ipv6");
    }
}
