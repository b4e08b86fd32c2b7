//! One line of `trace_pipe`, parsed.
//!
//! The text format is stable enough to parse and needs no per-kernel binary layout:
//!
//! ```text
//!   bl-delayline-32603 [001] b.... 16208.461247: tcp_send_reset: skbaddr=… skaddr=… src=198.18.0.1:60011 dest=198.18.0.2:41234 state=UNKNOWN reason=NO_SOCKET
//!   <idle>-0           [000] ..s1. 16208.470001: kfree_skb: skbaddr=… rx_sk=… protocol=2048 location=tcp_v4_rcv+0x91/0x13f0 reason: TCP_LISTEN_OVERFLOW
//! ```
//!
//! The timestamp is `CLOCK_MONOTONIC` (the instance's `trace_clock` is `mono`), the clock
//! `std::time::Instant` reads, so events line up with the connection records.

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};

/// The trace events the lab records (their kernel names).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Kind {
    /// `skb:kfree_skb`: a packet freed as dropped, with the kernel's drop reason.
    KfreeSkb,
    /// `tcp:tcp_retransmit_synack`: a request socket resent its SYN-ACK.
    RetransmitSynack,
    /// `tcp:tcp_retransmit_skb`: a socket retransmitted (a SYN while `TCP_SYN_SENT`).
    RetransmitSkb,
    /// `tcp:tcp_send_reset`: a RST went out, with the reason the kernel gives.
    SendReset,
    /// `tcp:tcp_receive_reset`: a socket was reset by its peer.
    ReceiveReset,
}

impl Kind {
    pub const ALL: [Kind; 5] = [
        Kind::KfreeSkb,
        Kind::RetransmitSynack,
        Kind::RetransmitSkb,
        Kind::SendReset,
        Kind::ReceiveReset,
    ];

    /// The event's name in `drops.csv` and in tracefs (`events/<system>/<name>`).
    pub fn name(self) -> &'static str {
        match self {
            Kind::KfreeSkb => "kfree_skb",
            Kind::RetransmitSynack => "tcp_retransmit_synack",
            Kind::RetransmitSkb => "tcp_retransmit_skb",
            Kind::SendReset => "tcp_send_reset",
            Kind::ReceiveReset => "tcp_receive_reset",
        }
    }

    /// The event's subsystem in tracefs.
    pub fn system(self) -> &'static str {
        match self {
            Kind::KfreeSkb => "skb",
            _ => "tcp",
        }
    }
}

/// One recorded event. `local` is the end whose socket the event belongs to (the listener for a
/// SYN-ACK, the sender of a RST, the socket that was reset); `kfree_skb` has no addresses.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Event {
    /// `CLOCK_MONOTONIC`, nanoseconds.
    pub t_ns: u64,
    pub kind: Kind,
    /// The drop reason (`kfree_skb`) or the RST reason (`tcp_send_reset`); empty otherwise.
    pub reason: String,
    /// The TCP state the event names (`tcp_retransmit_skb`, `tcp_send_reset`); empty otherwise.
    pub state: String,
    pub local: Option<SocketAddr>,
    pub remote: Option<SocketAddr>,
    /// Where in the kernel a packet was dropped (`kfree_skb`), e.g. `tcp_v4_rcv+0x91/0x13f0`.
    pub location: String,
    /// The packet's ethertype (`kfree_skb`; 2048 is IPv4), 0 where the event has none.
    pub protocol: u16,
}

/// Parses one `trace_pipe` line; `None` for lines of other events and anything malformed
/// (the reader counts those, it does not guess).
pub fn parse(line: &str) -> Option<Event> {
    // `<task> [cpu] flags <timestamp>: <event>: <fields>`; the task name may hold anything.
    let (kind, head, body) = Kind::ALL.iter().find_map(|&k| {
        let name = k.name();
        let i = line.find(name)?;
        let (head, tail) = (line[..i].strip_suffix(": ")?, &line[i + name.len()..]);
        Some((k, head, tail.strip_prefix(": ")?))
    })?;
    let t_ns = parse_timestamp(head.rsplit(' ').next()?)?;
    let field = |key: &str| field(body, key);
    let mut event = Event {
        t_ns,
        kind,
        reason: String::new(),
        state: String::new(),
        local: None,
        remote: None,
        location: String::new(),
        protocol: 0,
    };
    // Socket events print both an IPv4 (`saddr`) and an IPv6 (`saddrv6`) field; which one holds
    // the address depends on the socket's family (`family=`, absent from tcp_retransmit_synack).
    let family = field("family");
    let addr = |a: &str, p: &str| {
        let v4 = field(a)?.parse::<Ipv4Addr>().ok();
        let v6 = field(&format!("{a}v6")).and_then(|v| v.parse::<Ipv6Addr>().ok());
        let ip = match (family, v4, v6) {
            (Some("AF_INET6"), _, Some(v6)) => IpAddr::V6(v6),
            (Some("AF_INET"), Some(v4), _) => IpAddr::V4(v4),
            // An IPv4 request socket's IPv6 fields hold its addresses mapped (::ffff:a.b.c.d).
            (None, _, Some(v6)) if v6.to_ipv4_mapped().is_none() && !v6.is_unspecified() => {
                IpAddr::V6(v6)
            }
            (None, Some(v4), _) => IpAddr::V4(v4),
            _ => return None,
        };
        Some(canonical(SocketAddr::new(ip, field(p)?.parse().ok()?)))
    };
    match kind {
        Kind::KfreeSkb => {
            event.location = field("location").unwrap_or_default().to_string();
            event.protocol = field("protocol").and_then(|p| p.parse().ok()).unwrap_or(0);
            event.reason = body
                .rsplit_once("reason: ")
                .map(|(_, r)| r.trim().to_string())
                .unwrap_or_default();
        }
        Kind::RetransmitSynack | Kind::RetransmitSkb | Kind::ReceiveReset => {
            event.local = addr("saddr", "sport");
            event.remote = addr("daddr", "dport");
            event.state = field("state").unwrap_or_default().to_string();
        }
        Kind::SendReset => {
            // `src` is the end that sends the RST, also when no socket exists (NO_SOCKET). When the
            // socket is a listener (the RST of tcp_abort_on_overflow), the addresses are the
            // listener's own and `dest` is 0.0.0.0:0: the peer is not in the event.
            // Kernels before 6.10 print it like the other socket events (`sport= ... saddr=`),
            // without a reason, and only for RSTs sent by a socket.
            event.local = field("src")
                .and_then(|s| s.parse().ok())
                .map(canonical)
                .or_else(|| addr("saddr", "sport"));
            event.remote = field("dest")
                .and_then(|s| s.parse::<SocketAddr>().ok())
                .map(canonical)
                .or_else(|| addr("daddr", "dport"))
                .filter(|a| !a.ip().is_unspecified());
            event.state = field("state").unwrap_or_default().to_string();
            event.reason = field("reason").unwrap_or_default().to_string();
        }
    }
    Some(event)
}

/// An IPv4 peer of a dual-stack socket (`[::ffff:198.18.0.2]:4000`) as the IPv4 address it is,
/// so it compares equal to the lab's addresses.
fn canonical(a: SocketAddr) -> SocketAddr {
    match a {
        SocketAddr::V6(v6) => match v6.ip().to_ipv4_mapped() {
            Some(v4) => SocketAddr::new(IpAddr::V4(v4), v6.port()),
            None => a,
        },
        SocketAddr::V4(_) => a,
    }
}

/// `key=value` from a space-separated field list.
fn field<'a>(body: &'a str, key: &str) -> Option<&'a str> {
    body.split(' ')
        .find_map(|kv| kv.strip_prefix(key)?.strip_prefix('='))
}

/// `16208.461247` (seconds, then up to 9 digits of fraction) as nanoseconds.
fn parse_timestamp(s: &str) -> Option<u64> {
    let (secs, frac) = s.trim_end_matches(':').split_once('.')?;
    if frac.is_empty() || frac.len() > 9 || !frac.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    let scale = 10u64.pow(9 - frac.len() as u32);
    Some(secs.parse::<u64>().ok()? * 1_000_000_000 + frac.parse::<u64>().ok()? * scale)
}

#[cfg(test)]
mod tests {
    use super::*;

    // Lines as this kernel (6.18) wrote them during a reset-by-peer run.
    const SEND_RESET: &str = "    bl-delayline-32603   [001] b.... 16208.458890: tcp_send_reset: skbaddr=00000000c8bb1a76 skaddr=0000000000000000 src=198.18.0.1:60011 dest=198.18.0.2:36111 state=UNKNOWN reason=NO_SOCKET";
    const RECEIVE_RESET: &str = "    bl-delayline-32603   [001] b..1. 16208.461247: tcp_receive_reset: family=AF_INET sport=36111 dport=60011 saddr=198.18.0.2 daddr=198.18.0.1 saddrv6=::ffff:198.18.0.2 daddrv6=::ffff:198.18.0.1 sock_cookie=6a3e1";
    const KFREE: &str = "          <idle>-0       [000] ..s1. 16209.000123: kfree_skb: skbaddr=000000009f3c0e3d rx_sk=00000000a1b2c3d4 protocol=2048 location=tcp_v4_rcv+0x91/0x13f0 reason: TCP_LISTEN_OVERFLOW";
    const RETRANS: &str = " tokio-runtime-w-4242    [000] ..s.. 16209.5: tcp_retransmit_skb: skbaddr=0000000011 skaddr=0000000022 family=AF_INET sport=40000 dport=60011 saddr=198.18.0.2 daddr=198.18.0.1 saddrv6=::ffff:198.18.0.2 daddrv6=::ffff:198.18.0.1 state=TCP_SYN_SENT err=0";

    #[test]
    fn parses_each_event_kind() {
        let e = parse(SEND_RESET).unwrap();
        assert_eq!(e.kind, Kind::SendReset);
        assert_eq!(e.t_ns, 16_208_458_890_000);
        assert_eq!(e.local, Some("198.18.0.1:60011".parse().unwrap()));
        assert_eq!(e.remote, Some("198.18.0.2:36111".parse().unwrap()));
        assert_eq!(
            (e.reason.as_str(), e.state.as_str()),
            ("NO_SOCKET", "UNKNOWN")
        );
        let listener = SEND_RESET.replace("198.18.0.2:36111", "0.0.0.0:0");
        assert_eq!(
            parse(&listener).unwrap().remote,
            None,
            "a listener's RST has no peer"
        );
        // Before 6.10: the socket-event layout, no reason.
        let old = "  x-1 [000] ..s.. 100.000001: tcp_send_reset: skbaddr=0 skaddr=0 family=AF_INET sport=8080 dport=4000 saddr=198.18.0.1 daddr=198.18.0.2 saddrv6=::1 daddrv6=::1 state=TCP_SYN_RECV";
        let e = parse(old).unwrap();
        assert_eq!(e.local, Some("198.18.0.1:8080".parse().unwrap()));
        assert_eq!(e.remote, Some("198.18.0.2:4000".parse().unwrap()));
        assert_eq!((e.reason.as_str(), e.state.as_str()), ("", "TCP_SYN_RECV"));

        let e = parse(RECEIVE_RESET).unwrap();
        assert_eq!(e.kind, Kind::ReceiveReset);
        assert_eq!(e.local, Some("198.18.0.2:36111".parse().unwrap()));
        assert_eq!(e.remote, Some("198.18.0.1:60011".parse().unwrap()));

        let e = parse(KFREE).unwrap();
        assert_eq!(e.kind, Kind::KfreeSkb);
        assert_eq!(e.reason, "TCP_LISTEN_OVERFLOW");
        assert_eq!(e.location, "tcp_v4_rcv+0x91/0x13f0");
        assert_eq!(e.protocol, 2048);
        assert_eq!((e.local, e.remote), (None, None));

        let e = parse(RETRANS).unwrap();
        assert_eq!(e.t_ns, 16_209_500_000_000);
        assert_eq!(e.state, "TCP_SYN_SENT");
        assert_eq!(e.local.unwrap().port(), 40000);
    }

    #[test]
    fn ipv6_sockets_give_their_ipv6_fields_and_mapped_peers_become_ipv4() {
        let v6 = |s: &str| Some(s.parse::<SocketAddr>().unwrap());
        let retrans = RETRANS
            .replace("family=AF_INET ", "family=AF_INET6 ")
            .replace(
                "saddr=198.18.0.2 daddr=198.18.0.1",
                "saddr=0.0.0.0 daddr=0.0.0.0",
            )
            .replace("::ffff:198.18.0.2", "2001:2::2")
            .replace("::ffff:198.18.0.1", "2001:2::1");
        let e = parse(&retrans).unwrap();
        assert_eq!(e.local, v6("[2001:2::2]:40000"));
        assert_eq!(e.remote, v6("[2001:2::1]:60011"));
        // tcp_retransmit_synack prints no family.
        let synack = " <idle>-0 [001] ..s1. 12.5: tcp_retransmit_synack: skaddr=0 req=0 sport=8080 dport=4000 saddr=0.0.0.0 daddr=0.0.0.0 saddrv6=2001:2::1 daddrv6=2001:2:0:ff00::7";
        let e = parse(synack).unwrap();
        assert_eq!(e.local, v6("[2001:2::1]:8080"));
        assert_eq!(e.remote, v6("[2001:2:0:ff00::7]:4000"));
        let synack4 = synack
            .replace(
                "saddr=0.0.0.0 daddr=0.0.0.0",
                "saddr=198.18.0.1 daddr=198.18.0.2",
            )
            .replace(
                "saddrv6=2001:2::1 daddrv6=2001:2:0:ff00::7",
                "saddrv6=::ffff:198.18.0.1 daddrv6=::ffff:198.18.0.2",
            );
        assert_eq!(parse(&synack4).unwrap().local, v6("198.18.0.1:8080"));
        let reset = SEND_RESET.replace(
            "src=198.18.0.1:60011 dest=198.18.0.2:36111",
            "src=[2001:2::1]:60011 dest=[::ffff:198.18.0.2]:36111",
        );
        let e = parse(&reset).unwrap();
        assert_eq!(e.local, v6("[2001:2::1]:60011"));
        assert_eq!(
            e.remote,
            v6("198.18.0.2:36111"),
            "a mapped peer is an IPv4 one"
        );
        let listener = SEND_RESET.replace(
            "src=198.18.0.1:60011 dest=198.18.0.2:36111",
            "src=[2001:2::1]:60011 dest=[::]:0",
        );
        assert_eq!(parse(&listener).unwrap().remote, None);
        let kfree = KFREE.replace(
            "protocol=2048 location=tcp_v4_rcv",
            "protocol=34525 location=tcp_v6_rcv",
        );
        assert_eq!(
            parse(&kfree).unwrap().protocol,
            crate::family::Family::Ipv6.ethertype()
        );
    }

    #[test]
    fn ignores_other_lines() {
        assert_eq!(parse(""), None);
        assert_eq!(parse("CPU:1 [LOST 12 EVENTS]"), None);
        assert_eq!(parse(&KFREE.replace("16209.000123", "x.1")), None);
        assert_eq!(
            parse(&KFREE.replace("kfree_skb", "consume_skb")),
            None,
            "an event the lab did not enable"
        );
    }
}
