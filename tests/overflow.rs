//! The accept queue, as the kernel really sizes and fills it. See ../shared/docs/kernel-notes.md.

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};
use std::os::unix::process::CommandExt;
use std::process::Command;

use backlog_lab::counters::{CounterFiles, ListenDiag};
use backlog_lab::family::Family;
use backlog_lab::netns::Netns;
use backlog_lab::server::listener;
use backlog_lab::topo::sysctl;

use crate::util::{self, connections, counter, out_dir, outcome, run, summary};

/// A server that never accepts, listen(backlog=4): exactly 5 handshakes complete (the queue holds
/// backlog + 1), every later SYN is dropped on arrival, and those clients time out after
/// retransmitting their SYNs. Arrivals are 20 ms apart so each handshake ends before the next
/// SYN (zero RTT), which keeps syncookies out of the picture.
#[test]
fn never_accepting_backlog_4_completes_exactly_5_handshakes() {
    backlog_4_completes_exactly_5_handshakes("ipv4");
}

/// The same numbers on IPv6: the accept queue and the SYN retransmissions do not depend on the
/// family (`tcp_v6_syn_recv_sock` checks the same `sk_acceptq_is_full`).
#[test]
fn never_accepting_backlog_4_completes_exactly_5_handshakes_on_ipv6() {
    backlog_4_completes_exactly_5_handshakes("ipv6");
}

fn backlog_4_completes_exactly_5_handshakes(family: &str) {
    let _lab = util::lab();
    let (_tmp, out) = out_dir();
    let family_set = format!("family={family}");
    let o = run(
        "envoy-somaxconn-128",
        &out,
        &[
            &family_set,
            "server.backlog=4",
            "server.accept=never",
            "server.accept_rate=",
            "client.rate=50",
            "client.connections=20",
            "client.duration=1s",
            "client.connect_timeout=2500ms",
            "client.response_timeout=500ms",
        ],
    );
    // The scenario's own expectations are about a different storm; only the run matters here.
    assert!(
        matches!(o.status.code(), Some(0) | Some(1)),
        "{}",
        util::stderr(&o)
    );
    let s = summary(&out);
    assert_eq!(s["family"], family);
    let rows = connections(&out);
    assert_eq!(rows.len(), 20);

    let connected = rows
        .iter()
        .filter(|r| !r["connected_us"].is_empty())
        .count();
    assert_eq!(connected, 5, "handshakes the client saw complete");
    assert_eq!(
        counter(&s, "server", "Tcp.PassiveOpens"),
        5,
        "children the server created"
    );
    assert_eq!(s["listen"]["accept_queue_limit"], 4);
    assert_eq!(s["listen"]["accept_queue_max_seen"], 5);
    assert_eq!(
        outcome(&s, "response_timeout"),
        5,
        "queued, never accepted, never answered"
    );
    assert_eq!(outcome(&s, "connect_timeout"), 15);
    for r in rows.iter().filter(|r| r["outcome"] == "connect_timeout") {
        let retrans: u32 = r["retransmits"].parse().unwrap();
        // 2.5 s of SYN retransmissions at +1 s and +2 s (linear timeouts on 6.x).
        assert_eq!(retrans, 2, "SYN retransmissions of connection {}", r["id"]);
    }
    // Each of the 15 dropped clients sent 3 SYNs, each dropped on arrival at a full queue.
    assert_eq!(counter(&s, "server", "TcpExt.ListenOverflows"), 45);
    assert_eq!(counter(&s, "server", "TcpExt.ListenDrops"), 45);
    assert_eq!(counter(&s, "client", "TcpExt.TCPSynRetrans"), 30);
    assert_eq!(counter(&s, "server", "TcpExt.SyncookiesSent"), 0);
    // Nothing but the storm crossed the link during the run: no neighbour discovery (veth's
    // neighbours are written in advance), no router solicitation, no MLD report, on either side.
    for ns in ["server", "client"] {
        let moved: Vec<_> = s["counters"][ns]
            .as_object()
            .unwrap()
            .keys()
            .filter(|k| k.starts_with("Icmp") || k.contains("Mcast") || k.starts_with("Udp"))
            .collect();
        assert!(moved.is_empty(), "{family} {ns}: {moved:?} moved");
    }
}

/// What `ss -lnt` shows as Send-Q for a listener in `ns` on `port`, run inside the namespace.
fn ss_send_q(ns: &Netns, port: u16) -> u32 {
    let fd = ns.raw_fd();
    let mut cmd = Command::new("ss");
    cmd.args(["-Hlnt", &format!("sport = :{port}")]);
    // SAFETY: setns is async-signal-safe; the fd stays open in the parent for the call.
    unsafe {
        cmd.pre_exec(move || {
            if libc::setns(fd, libc::CLONE_NEWNET) == 0 {
                Ok(())
            } else {
                Err(std::io::Error::last_os_error())
            }
        });
    }
    let o = cmd.output().expect("ss from iproute2");
    let text = String::from_utf8_lossy(&o.stdout);
    let fields: Vec<&str> = text.split_whitespace().collect();
    assert_eq!(fields.first(), Some(&"LISTEN"), "ss output: {text}");
    fields[2].parse().expect("Send-Q")
}

/// `listen()` clamps the backlog to the namespace's somaxconn, and -1 means somaxconn; the lab's
/// sock_diag reading agrees with `ss`.
#[test]
fn somaxconn_clamps_the_backlog_and_minus_one_means_somaxconn() {
    util::require_root();
    let ns = Netns::create("server").unwrap();
    sysctl::apply(
        &ns,
        &[("net.core.somaxconn".to_string(), "128".to_string())].into(),
    )
    .unwrap();
    let cases = [(1000, 128), (-1, 128), (64, 64), (0, 0), (128, 128)];
    let families = [Family::Ipv4, Family::Ipv6];
    for (i, (family, (backlog, limit))) in families
        .iter()
        .flat_map(|f| cases.iter().map(move |c| (*f, *c)))
        .enumerate()
    {
        let port = 9000 + i as u16;
        // lo is down in a fresh namespace; 127.0.0.1 can still be bound, and on IPv6 (where
        // ::1 appears only once lo is up) the unspecified address.
        let ip = match family {
            Family::Ipv4 => IpAddr::V4(Ipv4Addr::LOCALHOST),
            Family::Ipv6 => IpAddr::V6(Ipv6Addr::UNSPECIFIED),
        };
        let l = ns.run(|| listener::bind(SocketAddr::new(ip, port), backlog));
        let l = l.unwrap().unwrap();
        let mut diag = ListenDiag::open(&ns, port, family).unwrap();
        let q = diag.sample().unwrap();
        assert_eq!(
            q.accept_queue_limit,
            Some(limit),
            "listen({backlog}) under somaxconn 128, {family}"
        );
        assert_eq!(
            ss_send_q(&ns, port),
            limit,
            "ss Send-Q for listen({backlog})"
        );
        // The listener had to stay open while diag and ss read it; now it may go.
        drop(l);
    }
}

/// The counters a run reports are its namespaces' own: an overflowing storm moves them by
/// thousands while the host's ListenOverflows does not move at all.
#[test]
fn counters_are_the_namespaces_own() {
    let _lab = util::lab();
    let mut host = CounterFiles::open_host().unwrap();
    let before = host.read().unwrap();
    let (_tmp, out) = out_dir();
    let o = run(
        "envoy-somaxconn-128",
        &out,
        &["client.connections=3000", "client.duration=1200ms"],
    );
    assert!(
        matches!(o.status.code(), Some(0) | Some(1)),
        "{}",
        util::stderr(&o)
    );
    let after = host.read().unwrap();
    let s = summary(&out);
    let lab_overflows = counter(&s, "server", "TcpExt.ListenOverflows");
    let lab_opens = counter(&s, "client", "Tcp.ActiveOpens");
    assert!(
        lab_overflows > 500,
        "the storm overflowed the lab's queue: {lab_overflows}"
    );
    assert_eq!(lab_opens, 3000);
    let host_delta = |k: &str| after.get(k).unwrap() - before.get(k).unwrap();
    assert_eq!(
        host_delta("TcpExt.ListenOverflows"),
        0,
        "the host's listen queues never overflowed"
    );
    assert!(
        host_delta("Tcp.ActiveOpens") < 100,
        "the host did not open the storm's connections"
    );
}

/// `accept = "rate"` accepts at the configured rate: from the time series, accepted(t) =
/// PassiveOpens(t) - accept_queue(t), and its slope over the busy middle of the run is the rate.
/// Only rows that read the counters count (the sampler's counter budget may skip some).
#[test]
fn rate_policy_accepts_at_its_rate() {
    let _lab = util::lab();
    let (_tmp, out) = out_dir();
    let o = run(
        "envoy-somaxconn-128",
        &out,
        &[
            "server.backlog=4096",
            "server.sysctl.net.core.somaxconn=4096",
            "server.accept_rate=2500",
            "client.rate=5000",
            "client.connections=10000",
            "client.duration=2s",
            "client.response_timeout=1s",
            "expect=",
        ],
    );
    assert_eq!(o.status.code(), Some(0), "{}", util::stderr(&o));
    let mut r = csv::Reader::from_path(out.join("timeseries.csv")).unwrap();
    let rows: Vec<std::collections::BTreeMap<String, String>> =
        r.deserialize().map(|x| x.unwrap()).collect();
    let accepted_at = |t_us: u64| -> (f64, f64) {
        let row = rows
            .iter()
            .filter(|r| !r["server:Tcp.PassiveOpens"].is_empty())
            .min_by_key(|r| r["t_us"].parse::<u64>().unwrap().abs_diff(t_us))
            .unwrap();
        let n = |k: &str| row[k].parse::<f64>().unwrap();
        (
            n("t_us") / 1e6,
            n("server:Tcp.PassiveOpens") - n("accept_queue"),
        )
    };
    let (t1, a1) = accepted_at(500_000);
    let (t2, a2) = accepted_at(1_500_000);
    let rate = (a2 - a1) / (t2 - t1);
    assert!(
        (2250.0..=2750.0).contains(&rate),
        "accepted {rate:.0}/s for a configured 2500/s"
    );
}

/// `accept = "workers"`: a pool of 4 workers that each hold a connection for 200 ms, and an accept
/// loop that only accepts when a worker is free. A burst of 20 is served in waves of 4, one wave
/// per 200 ms, while the rest wait in the accept queue.
#[test]
fn workers_policy_serves_in_waves_and_backs_up_the_accept_queue() {
    let _lab = util::lab();
    let (_tmp, out) = out_dir();
    let o = run(
        "node-backlog-511",
        &out,
        &[
            "server.accept=workers",
            "server.pauses=",
            "server.workers=4",
            "server.service_time=200ms",
            "client.burst_size=20",
            "client.connections=20",
            "expect=",
        ],
    );
    assert_eq!(o.status.code(), Some(0), "{}", util::stderr(&o));
    let s = summary(&out);
    assert_eq!(outcome(&s, "ok"), 20);
    // 4 taken by workers at once; the other 16 queue (give or take one in flight). A sample
    // taken before all four workers have taken theirs sees up to 2 more (CI once saw 17).
    let max_seen = s["listen"]["accept_queue_max_seen"].as_u64().unwrap();
    assert!(
        (14..=18).contains(&max_seen),
        "accept queue max seen {max_seen}"
    );
    let mut firsts: Vec<f64> = connections(&out)
        .iter()
        .map(|r| r["first_byte_us"].parse::<f64>().unwrap() / 1000.0)
        .collect();
    firsts.sort_by(f64::total_cmp);
    // Five waves: at ~200, 400, 600, 800, 1000 ms. Tolerances: timers and a shared 2-core machine.
    for (wave, chunk) in firsts.chunks(4).enumerate() {
        let due = 200.0 * (wave + 1) as f64;
        for t in chunk {
            assert!(
                (due - 5.0..due + 60.0).contains(t),
                "wave {wave}: first byte at {t:.1} ms, due {due}"
            );
        }
    }
}

/// Each lab namespace has a TCP established hash of its own, sized to the run (so the sampler's
/// SYN-RECV count walks only its sockets), yet the two defaults the kernel derives from a hash's
/// size read as in a namespace that shares the host's hash: the queues behave the same.
#[test]
fn a_lab_namespace_has_a_private_hash_and_the_hosts_defaults() {
    util::require_root();
    let read = |ns: &Netns, key: &str| {
        ns.run(|| std::fs::read_to_string(format!("/proc/sys/net/ipv4/{key}")).unwrap())
            .unwrap()
            .trim()
            .to_string()
    };
    let host: u64 = std::fs::read_to_string("/proc/sys/net/ipv4/tcp_ehash_entries")
        .unwrap()
        .trim()
        .parse()
        .unwrap();
    let shared = Command::new("unshare")
        .args(["--net", "sh", "-c"])
        .arg("cat /proc/sys/net/ipv4/tcp_ehash_entries /proc/sys/net/ipv4/tcp_max_syn_backlog /proc/sys/net/ipv4/tcp_max_tw_buckets")
        .output()
        .unwrap();
    let shared: Vec<String> = String::from_utf8_lossy(&shared.stdout)
        .lines()
        .map(String::from)
        .collect();
    assert_eq!(
        shared[0],
        format!("-{host}"),
        "a plain namespace shares the host's hash"
    );
    for (sockets, size) in [(Some(300), 1024), (Some(5000), 8192), (None, host)] {
        let ns = Netns::create_for("server", sockets).unwrap();
        assert_eq!(
            backlog_lab::netns::private_ehash(&ns),
            Some((size, true)),
            "{sockets:?}"
        );
        assert_eq!(read(&ns, "tcp_max_syn_backlog"), shared[1], "{sockets:?}");
        assert_eq!(read(&ns, "tcp_max_tw_buckets"), shared[2], "{sockets:?}");
    }
}
