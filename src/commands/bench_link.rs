//! `backlog-lab bench-link`: measures the emulated link on this machine, against a plain veth
//! pair measured in the same run.
//!
//! 1. Accuracy: for each RTT, sequential TCP handshakes (blocking `connect()` from the client
//!    namespace to a listener that accepts at once); median and p99 against the configured RTT.
//!    The veth row is the floor: the machine's own handshake time.
//! 2. Packet rate: UDP datagrams (64-byte IP packets) from the client namespace to a reader in
//!    the server namespace, paced at each target rate and then unpaced (as fast as one sender
//!    can), through the delay line at a 20 ms RTT and through veth. Reported: packets forwarded
//!    per second, packets the delay line dropped though not told to (TUN ring drops, refused
//!    writes), and packets the reading socket dropped (receive-buffer overruns: the reader's
//!    limit, not the link's).

use std::io::Write;
use std::net::{SocketAddr, UdpSocket};
use std::os::fd::AsRawFd;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use serde::Serialize;
use socket2::{Socket, Type};

use crate::cli::BenchLinkArgs;
use crate::error::Failure;
use crate::family::Family;
use crate::plan::LinkPlan;
use crate::topo::Topology;

/// What `bench-link` measures, from the command line.
#[derive(Debug, Clone)]
pub struct BenchArgs {
    pub rtts: Vec<Duration>,
    pub handshakes: usize,
    pub rates: Vec<u64>,
    pub seconds: f64,
    /// Measure packet rates too.
    pub throughput: bool,
    /// The family of the lab's hosts and of the packets measured.
    pub family: Family,
}

#[derive(Debug, Serialize)]
struct Accuracy {
    link: String,
    rtt_ms: f64,
    handshakes: usize,
    p50_ms: f64,
    p99_ms: f64,
    max_ms: f64,
    /// p50 minus the configured RTT.
    error_ms: f64,
    /// Whether the p50 is within 5 % or 0.2 ms of the RTT (the lab's accuracy target).
    within_target: bool,
    calibration_us: f64,
}

#[derive(Debug, Serialize)]
struct Throughput {
    link: String,
    /// Datagrams per second asked for (`null`: as fast as the sender can).
    target_pps: Option<u64>,
    sent: u64,
    sent_pps: f64,
    received: u64,
    received_pps: f64,
    /// Dropped by the delay line without being told to (TUN ring drops + refused writes).
    link_drops: u64,
    /// Dropped by the reading socket (UDP receive buffer full): the reader's limit.
    socket_drops: i64,
    /// Held when the measurement ended (still in the delay line).
    held_at_stop: u64,
    lateness_us_p99: u64,
}

#[derive(Debug, Serialize)]
struct Report {
    kernel: String,
    family: &'static str,
    accuracy: Vec<Accuracy>,
    throughput: Vec<Throughput>,
}

/// Runs the benchmark, prints a table (or JSON) and returns the exit code.
/// `backlog-lab bench-link`.
pub fn command(args: &BenchLinkArgs, out: &mut impl Write) -> anyhow::Result<u8> {
    crate::netns::become_root_in_user_namespace_if_needed()?;
    crate::topo::require(args.family)?;
    // A measurement of timing: never beside a storm.
    let _storm = crate::topo::claim::StormLock::acquire()?;
    let bench_args = BenchArgs {
        rtts: args.rtts.clone(),
        handshakes: args.handshakes as usize,
        rates: args.rates.clone(),
        seconds: args.seconds,
        throughput: !args.accuracy_only,
        family: args.family,
    };
    run(&bench_args, args.json, out)
}

pub fn run(args: &BenchArgs, json: bool, out: &mut impl Write) -> anyhow::Result<u8> {
    let mut report = Report {
        kernel: nix::sys::utsname::uname()
            .map(|u| u.release().to_string_lossy().into_owned())
            .unwrap_or_default(),
        family: args.family.name(),
        accuracy: Vec::new(),
        throughput: Vec::new(),
    };
    let ideal = LinkPlan::default();
    report
        .accuracy
        .push(accuracy(&ideal, args.handshakes, args.family)?);
    for rtt in &args.rtts {
        let plan = LinkPlan {
            rtt: *rtt,
            ..LinkPlan::default()
        };
        report
            .accuracy
            .push(accuracy(&plan, args.handshakes, args.family)?);
    }
    let emulated = LinkPlan {
        rtt: Duration::from_millis(20),
        ..LinkPlan::default()
    };
    for plan in [&emulated, &ideal].into_iter().filter(|_| args.throughput) {
        for rate in args.rates.iter().map(|r| Some(*r)).chain([None]) {
            report
                .throughput
                .push(throughput(plan, rate, args.seconds, args.family)?);
        }
    }
    if json {
        writeln!(out, "{}", serde_json::to_string_pretty(&report)?)?;
    } else {
        print(&report, out)?;
    }
    Ok(0)
}

fn name(plan: &LinkPlan) -> String {
    if plan.is_ideal() {
        "veth".into()
    } else {
        format!("delay line {} ms", plan.rtt.as_secs_f64() * 1e3)
    }
}

fn lab(plan: &LinkPlan, family: Family) -> Result<Topology, Failure> {
    Topology::build(&Default::default(), &Default::default(), plan, family, None)
}

fn accuracy(plan: &LinkPlan, n: usize, family: Family) -> anyhow::Result<Accuracy> {
    let mut topo = lab(plan, family)?;
    let target = topo.addrs.server_at(9000);
    let domain = topo.addrs.family.domain();
    let listener = topo.server.run(|| -> std::io::Result<Socket> {
        let s = Socket::new(domain, Type::STREAM.cloexec(), None)?;
        s.set_reuse_address(true)?;
        s.bind(&target.into())?;
        s.listen(4096)?;
        Ok(s)
    })??;
    let times = std::thread::scope(|scope| {
        let acceptor = scope.spawn(|| {
            for _ in 0..n {
                if listener.accept().is_err() {
                    break;
                }
            }
        });
        let times = topo.client.run(|| -> std::io::Result<Vec<u64>> {
            (0..n)
                .map(|_| {
                    let s = Socket::new(domain, Type::STREAM.cloexec(), None)?;
                    let start = Instant::now();
                    s.connect_timeout(&target.into(), Duration::from_secs(5))?;
                    Ok(start.elapsed().as_micros() as u64)
                })
                .collect()
        });
        let _ = listener.shutdown(std::net::Shutdown::Both);
        let _ = acceptor.join();
        times
    })??;
    let stats = topo.stop_link(Some(0));
    // Exact order statistics: a histogram's 3 significant digits would round 200 ms to 0.1 ms.
    let mut times = times;
    times.sort_unstable();
    let at = |q: f64| {
        times
            .get(((times.len() as f64 * q).ceil() as usize).saturating_sub(1))
            .map_or(f64::NAN, |us| *us as f64 / 1e3)
    };
    let rtt_ms = plan.rtt.as_secs_f64() * 1e3;
    let p50 = at(0.5);
    Ok(Accuracy {
        link: name(plan),
        rtt_ms,
        handshakes: n,
        p50_ms: p50,
        p99_ms: at(0.99),
        max_ms: at(1.0),
        error_ms: p50 - rtt_ms,
        within_target: plan.is_ideal() || (p50 - rtt_ms).abs() <= (0.05 * rtt_ms).max(0.2),
        calibration_us: stats.map_or(0.0, |s| s.calibration_us),
    })
}

/// Reads UDP `RcvbufErrors` of the calling thread's namespace (`Udp6.RcvbufErrors` from
/// `/proc/net/snmp6` on IPv6).
fn udp_rcvbuf_errors(family: Family) -> i64 {
    let read = |f: &str| std::fs::read_to_string(format!("/proc/thread-self/net/{f}"));
    let text = read("snmp").unwrap_or_default();
    let mut snapshot = crate::counters::Snapshot::parse(&text).unwrap_or_default();
    let key = match family {
        Family::Ipv4 => "Udp.RcvbufErrors",
        Family::Ipv6 => {
            let _ = snapshot.add_snmp6(&read("snmp6").unwrap_or_default());
            "Udp6.RcvbufErrors"
        }
    };
    snapshot.get(key).unwrap_or(0)
}

fn throughput(
    plan: &LinkPlan,
    target_pps: Option<u64>,
    seconds: f64,
    family: Family,
) -> anyhow::Result<Throughput> {
    let mut topo = lab(plan, family)?;
    let port = 9001;
    let addrs = topo.addrs;
    let drops_before = topo.ring_drops();
    let rcvbuf_before = topo.server.run(|| udp_rcvbuf_errors(family))?;
    let reader = topo.server.run(|| -> std::io::Result<UdpSocket> {
        let s = Socket::new(addrs.family.domain(), Type::DGRAM.cloexec(), None)?;
        // 32 MB, past net.core.rmem_max (212,992 by default: about 300 of these packets, 1.5 ms
        // at 200,000/s) where allowed (SO_RCVBUFFORCE needs CAP_NET_ADMIN): the reader is the
        // benchmark's, and a stall of it is not a drop of the link's.
        s.set_recv_buffer_size(32 << 20)?;
        let size: libc::c_int = 32 << 20;
        // SAFETY: setsockopt on a socket we own, with an int of the size given.
        unsafe {
            libc::setsockopt(
                s.as_raw_fd(),
                libc::SOL_SOCKET,
                libc::SO_RCVBUFFORCE,
                (&size as *const libc::c_int).cast(),
                std::mem::size_of::<libc::c_int>() as libc::socklen_t,
            )
        };
        s.bind(&addrs.server_at(port).into())?;
        s.set_read_timeout(Some(Duration::from_millis(50)))?;
        Ok(s.into())
    })??;
    let sender = topo.client.run(|| -> std::io::Result<UdpSocket> {
        let s = UdpSocket::bind(SocketAddr::new(addrs.client, 0))?;
        s.connect(addrs.server_at(port))?;
        Ok(s)
    })??;
    let received = Arc::new(AtomicU64::new(0));
    let done = Arc::new(AtomicBool::new(false));
    let duration = Duration::from_secs_f64(seconds);
    let (sent, span) = std::thread::scope(|scope| {
        let (r, d) = (received.clone(), done.clone());
        let reader = &reader;
        scope.spawn(move || {
            let mut buf = [0u8; 2048];
            while !d.load(Ordering::Relaxed) {
                if reader.recv(&mut buf).is_ok() {
                    r.fetch_add(1, Ordering::Relaxed);
                }
            }
        });
        let payload = [0u8; 36]; // + 8 UDP + 20 IP = 64-byte packets
        let start = Instant::now();
        let mut sent = 0u64;
        while start.elapsed() < duration {
            if let Some(pps) = target_pps {
                let due = start + Duration::from_secs_f64(sent as f64 / pps as f64);
                let now = Instant::now();
                if due > now {
                    if due - now > Duration::from_micros(200) {
                        std::thread::sleep(due - now - Duration::from_micros(100));
                    }
                    continue;
                }
            }
            if sender.send(&payload).is_ok() {
                sent += 1;
            }
        }
        let span = start.elapsed();
        // Let the line drain: one RTT plus margin.
        std::thread::sleep(plan.rtt + Duration::from_millis(200));
        done.store(true, Ordering::Relaxed);
        (sent, span)
    });
    let socket_drops = topo.server.run(|| udp_rcvbuf_errors(family))? - rcvbuf_before;
    let stats = topo.stop_link(drops_before);
    let received = received.load(Ordering::Relaxed);
    let secs = span.as_secs_f64();
    Ok(Throughput {
        link: name(plan),
        target_pps,
        sent,
        sent_pps: sent as f64 / secs,
        received,
        received_pps: received as f64 / secs,
        link_drops: stats.as_ref().map_or(0, |s| {
            s.ring_drops + s.to_server.write_errors + s.to_client.write_errors
        }),
        socket_drops,
        held_at_stop: stats
            .as_ref()
            .map_or(0, |s| s.to_server.held_at_stop + s.to_client.held_at_stop),
        lateness_us_p99: stats.map_or(0, |s| s.lateness_us_p99),
    })
}

fn print(r: &Report, out: &mut impl Write) -> std::io::Result<()> {
    writeln!(
        out,
        "delay line benchmark on Linux {}, {}\n",
        r.kernel, r.family
    )?;
    writeln!(
        out,
        "handshake time (blocking connect(), ms)\n  {:<22} {:>8} {:>8} {:>8} {:>8} {:>9}  target (5 % or 0.2 ms)",
        "link", "p50", "p99", "max", "error", "calib us"
    )?;
    for a in &r.accuracy {
        writeln!(
            out,
            "  {:<22} {:>8.3} {:>8.3} {:>8.3} {:>+8.3} {:>9.1}  {}",
            a.link,
            a.p50_ms,
            a.p99_ms,
            a.max_ms,
            a.error_ms,
            a.calibration_us,
            if a.link == "veth" {
                "(floor)"
            } else if a.within_target {
                "met"
            } else {
                "MISSED"
            }
        )?;
    }
    if r.throughput.is_empty() {
        return Ok(());
    }
    writeln!(
        out,
        "\npacket rate (64-byte UDP packets, client -> server)\n  {:<22} {:>9} {:>10} {:>10} {:>10} {:>11} {:>10}",
        "link", "target", "sent/s", "recv/s", "link drops", "socket drops", "late p99 us"
    )?;
    for t in &r.throughput {
        writeln!(
            out,
            "  {:<22} {:>9} {:>10.0} {:>10.0} {:>10} {:>11} {:>10}",
            t.link,
            t.target_pps.map_or("max".into(), |p| p.to_string()),
            t.sent_pps,
            t.received_pps,
            t.link_drops,
            t.socket_drops,
            t.lateness_us_p99
        )?;
    }
    Ok(())
}
