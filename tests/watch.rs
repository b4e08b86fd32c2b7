//! `backlog-lab watch`: a live listener observed read only. Pointed at a lab's server during a
//! storm of wrk connections, it reports the same counter deltas as that namespace's own counters
//! over the same window, and it leaves the host's sysctls, mounts and tracing as they were. Its
//! --alert sets the exit code. See: issue #9, part 3.

use std::io::{BufRead, BufReader};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use crate::util::{self, out_dir};

/// `backlog-lab serve` (backlog 16, 300 accepts/s) until killed, with the two namespaces and the
/// address it prints.
struct Served {
    child: Child,
    server_ns: String,
    client_ns: String,
    url: String,
}

impl Drop for Served {
    fn drop(&mut self) {
        unsafe { libc::kill(self.child.id() as i32, libc::SIGINT) };
        let _ = self.child.wait();
    }
}

fn serve(out: &std::path::Path, family: &str) -> Served {
    let mut child = util::bin()
        .args([
            "serve",
            "--set",
            &format!("family={family}"),
            "--set",
            "server.backlog=16",
            "--set",
            "server.accept=rate",
            "--set",
            "server.accept_rate=300",
            "--for",
            "60s",
            "--out",
        ])
        .arg(out)
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let mut lines = BufReader::new(child.stdout.take().unwrap()).lines();
    let (mut server_ns, mut client_ns, mut url) = (None, None, None);
    while server_ns.is_none() || client_ns.is_none() || url.is_none() {
        let line = lines.next().expect("serve printed its namespaces").unwrap();
        let word = |prefix: &str| {
            line.trim()
                .strip_prefix(prefix)
                .map(|r| r.split_whitespace().next().unwrap().to_string())
        };
        server_ns = server_ns.or(word("server namespace: "));
        client_ns = client_ns.or(word("client namespace: "));
        url = url.or(word("serving ").map(|a| format!("http://{a}/")));
    }
    // Keep reading, so serve never blocks on a full pipe.
    std::thread::spawn(move || lines.for_each(drop));
    Served {
        child,
        server_ns: server_ns.unwrap(),
        client_ns: client_ns.unwrap(),
        url: url.unwrap(),
    }
}

/// The namespace's own counters, read with `nsenter … cat`: `Name → value` per `Group.Name`.
/// TCP sockets in `ns` that are neither listening nor in TIME-WAIT (`ss state connected`).
fn busy_sockets(ns: &str) -> usize {
    let o = Command::new("nsenter")
        .arg(format!("--net={ns}"))
        .args(["ss", "-Htn", "state", "connected", "exclude", "time-wait"])
        .output()
        .unwrap();
    assert!(o.status.success());
    String::from_utf8_lossy(&o.stdout).lines().count()
}

fn counters_in(ns: &str) -> std::collections::BTreeMap<String, i64> {
    let mut out = std::collections::BTreeMap::new();
    for file in ["/proc/net/netstat", "/proc/net/snmp"] {
        let o = Command::new("nsenter")
            .arg(format!("--net={ns}"))
            .args(["cat", file])
            .output()
            .unwrap();
        assert!(o.status.success());
        let text = String::from_utf8(o.stdout).unwrap();
        let lines: Vec<&str> = text.lines().collect();
        for pair in lines.chunks(2) {
            let names: Vec<&str> = pair[0].split_whitespace().collect();
            let values: Vec<&str> = pair[1].split_whitespace().collect();
            let group = names[0].trim_end_matches(':');
            for (n, v) in names.iter().zip(&values).skip(1) {
                out.insert(format!("{group}.{n}"), v.parse().unwrap_or(0));
            }
        }
    }
    out
}

/// Starts `watch` with `args`, and returns once its first reading is taken (it says so).
fn watch(args: &[&str]) -> (Child, std::io::Lines<BufReader<std::process::ChildStdout>>) {
    let mut child = util::bin()
        .arg("watch")
        .args(args)
        .stdout(Stdio::piped())
        .stderr(Stdio::inherit())
        .spawn()
        .unwrap();
    let mut lines = BufReader::new(child.stdout.take().unwrap()).lines();
    let first = lines.next().expect("watch started").unwrap();
    assert!(first.starts_with("watching TCP port 8080"), "{first}");
    (child, lines)
}

#[test]
fn watch_of_a_lab_during_a_storm_agrees_with_its_counters_and_changes_nothing() {
    watch_during_a_storm("ipv4");
}

/// The same on an IPv6 listener: watch knows no family, so its queue probe and its `kfree_skb`
/// filter take both.
#[test]
fn watch_of_an_ipv6_lab_during_a_storm_agrees_with_its_counters() {
    watch_during_a_storm("ipv6");
}

fn watch_during_a_storm(family: &str) {
    let _lab = util::lab();
    let (tmp, _) = out_dir();
    let served = serve(&tmp.path().join("serve"), family);
    assert_eq!(served.url.contains('['), family == "ipv6", "{}", served.url);
    let host = util::host_state();
    let tracing = util::tracing_state();

    let out = tmp.path().join("watch");
    let (mut w, lines) = watch(&[
        "--netns",
        &served.server_ns,
        "--port",
        "8080",
        "--for",
        "12s",
        "--quiet",
        "--alert",
        "counters.TcpExt.ListenOverflows > 0",
        "--out",
        out.to_str().unwrap(),
    ]);
    let started = Instant::now();
    let before = counters_in(&served.server_ns);
    let wrk = Command::new("nsenter")
        .arg(format!("--net={}", served.client_ns))
        .args([
            "wrk",
            "-t2",
            "-c64",
            "-d2s",
            "-H",
            "Connection: close",
            &served.url,
        ])
        .output()
        .unwrap();
    assert!(
        wrk.status.success(),
        "{}",
        String::from_utf8_lossy(&wrk.stderr)
    );
    // One SYN to a port nothing listens on: refused, and its packet freed as NO_SOCKET.
    let server_ip = served.url["http://".len()..].rsplit_once(':').unwrap().0;
    let refused = Command::new("nsenter")
        .arg(format!("--net={}", served.client_ns))
        .args(["python3", "-c"])
        .arg(format!(
            "import socket\ntry:\n socket.create_connection(('{}', 1), timeout=5)\nexcept ConnectionRefusedError:\n pass\nelse:\n raise SystemExit('port 1 answered')",
            server_ip.trim_matches(['[', ']'])
        ))
        .output()
        .unwrap();
    assert!(refused.status.success(), "{}", util::stderr(&refused));
    // What the storm's last packets cause settles: late handshakes come from request sockets
    // retransmitting their SYN-ACKs (1, 3, 7 s) and from clients' retransmissions meeting a
    // syncookie, so a quiet second proves nothing (CI saw 20 handshakes after 2 s, and 4 after
    // a quiet second). Read until neither namespace has a socket that could still complete one
    // (anything but listeners and TIME-WAITs) and the counters hold still.
    let mut after = counters_in(&served.server_ns);
    loop {
        std::thread::sleep(Duration::from_millis(500));
        let now = counters_in(&served.server_ns);
        let busy = busy_sockets(&served.server_ns) + busy_sockets(&served.client_ns);
        if now == after && busy == 0 {
            break;
        }
        after = now;
    }
    assert!(
        started.elapsed() < Duration::from_secs(10),
        "the storm fit in the watch"
    );
    let told: Vec<String> = lines.map(Result::unwrap).collect();
    let status = w.wait().unwrap();
    assert_eq!(status.code(), Some(1), "the alert held: exit 1: {told:?}");
    assert!(told
        .iter()
        .any(|l| l.contains("ALERT  counters.server.TcpExt.ListenOverflows > 0")));

    let s = util::summary(&out);
    let delta = |k: &str| after[k] - before[k];
    assert!(delta("TcpExt.ListenOverflows") > 0, "wrk overflowed 17");
    for k in [
        "TcpExt.ListenOverflows",
        "TcpExt.ListenDrops",
        "Tcp.PassiveOpens",
        "Tcp.InSegs",
    ] {
        assert_eq!(
            util::counter(&s, "server", k),
            delta(k),
            "{k}: watch vs the namespace's own counters"
        );
    }
    assert_eq!(s["listen"]["accept_queue_limit"], 16);
    util::assert_full_queue(&s, 16);
    assert_eq!(s["watched"]["port"], 8080);
    assert_eq!(s["alerts"][0]["pass"], true, "{}", s["alerts"]);
    let d = &s["drops"];
    assert_eq!(d["recorded"], true, "{d}");
    let traced = d["by_reason"]["TCP_LISTEN_OVERFLOW"].as_i64().unwrap_or(0);
    assert!(traced <= delta("TcpExt.ListenOverflows"));
    // The SYN to a closed port died in the family's own receive function, and the trace saw it.
    let rcv = format!("tcp_v{}_rcv", if family == "ipv6" { 6 } else { 4 });
    let no_socket = d["by_function"][&rcv]["NO_SOCKET"].as_i64().unwrap_or(0);
    assert!(no_socket >= 1, "{family}: {rcv} NO_SOCKET not traced: {d}");
    for f in [
        "timeseries.csv",
        "counters.csv",
        "drops.csv",
        "report.html",
        "plots/queue-occupancy.png",
    ] {
        assert!(out.join(f).exists(), "{f}");
    }
    assert_eq!(util::host_state(), host, "watch changed the host");
    assert_eq!(
        util::tracing_state(),
        tracing,
        "watch changed the host's tracing"
    );

    // Nothing happens in the next second: the same alert stays quiet (exit 0).
    let (mut quiet, lines) = watch(&[
        "--netns",
        &served.server_ns,
        "--port",
        "8080",
        "--for",
        "1s",
        "--quiet",
        "--no-trace",
        "--alert",
        "counters.TcpExt.ListenOverflows > 0",
        "--out",
        tmp.path().join("quiet").to_str().unwrap(),
    ]);
    let told: Vec<String> = lines.map(Result::unwrap).collect();
    assert_eq!(quiet.wait().unwrap().code(), Some(0), "{told:?}");
}

/// A malformed alert is bad input (exit 2) before anything is watched; a port nothing listens
/// on, or a path that is not a network namespace, stops the watch with a clear error.
#[test]
fn watch_refuses_bad_alerts_and_empty_ports() {
    let (tmp, _) = out_dir();
    let o = util::bin()
        .args([
            "watch",
            "--port",
            "8080",
            "--alert",
            "counters.TcpExt.Nope >",
        ])
        .output()
        .unwrap();
    assert_eq!(o.status.code(), Some(2), "{}", util::stderr(&o));
    let o = util::bin()
        .args(["watch", "--port", "8080", "--alert", "outcomes.okay > 0"])
        .output()
        .unwrap();
    assert_eq!(o.status.code(), Some(2), "{}", util::stderr(&o));
    assert!(
        util::stderr(&o).contains("is not a summary value"),
        "{}",
        util::stderr(&o)
    );
    // A fresh namespace of our own, where nothing listens.
    let o = Command::new("unshare")
        .arg("-n")
        .arg(env!("CARGO_BIN_EXE_backlog-lab"))
        .args(["watch", "--port", "8080", "--for", "1s", "--out"])
        .arg(tmp.path().join("empty"))
        .output()
        .unwrap();
    assert_eq!(o.status.code(), Some(3), "{}", util::stderr(&o));
    assert!(
        util::stderr(&o).contains("nothing listens on TCP port 8080 in the host's namespace"),
        "{}",
        util::stderr(&o)
    );
    assert!(
        !tmp.path().join("empty").exists(),
        "no folder for a watch that never began"
    );
    let o = util::bin()
        .args(["watch", "--port", "8080", "--netns", "/etc/hostname"])
        .output()
        .unwrap();
    assert_eq!(o.status.code(), Some(2), "{}", util::stderr(&o));
    assert!(util::stderr(&o).contains("is not a network namespace"));
}

/// SIGTERM (systemd, `timeout`) ends a watch the way Ctrl-C does: everything seen so far is
/// written, marked interrupted, and the exit code is 128 + 15. Here the listener is the test's
/// own, on loopback in the host's namespace, which the watch leaves as it found it.
#[test]
fn a_sigterm_ends_a_watch_with_everything_written() {
    // Alone on the machine: it compares the host's tracing before and after, and another
    // test's trace instance would come and go in between.
    let _lab = util::lab();
    let (tmp, _) = out_dir();
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let port = listener.local_addr().unwrap().port().to_string();
    let host = util::host_state();
    let out = tmp.path().join("w");
    let mut child = util::bin()
        .args(["watch", "--port", &port, "--for", "30s", "--quiet", "--out"])
        .arg(&out)
        .stdout(Stdio::piped())
        .spawn()
        .unwrap();
    let mut lines = BufReader::new(child.stdout.take().unwrap()).lines();
    let first = lines.next().unwrap().unwrap();
    assert!(first.contains("in the host's namespace"), "{first}");
    // Three connections that nobody accepts: the queue holds them.
    let _held: Vec<_> = (0..3)
        .map(|_| std::net::TcpStream::connect(listener.local_addr().unwrap()).unwrap())
        .collect();
    std::thread::sleep(Duration::from_millis(500));
    unsafe { libc::kill(child.id() as i32, libc::SIGTERM) };
    let rest: Vec<String> = lines.map(Result::unwrap).collect();
    assert_eq!(child.wait().unwrap().code(), Some(143), "{rest:?}");
    let s = util::summary(&out);
    assert_eq!(s["interrupted"], true);
    assert_eq!(s["listen"]["accept_queue_max_seen"], 3, "{}", s["listen"]);
    assert!(out.join("report.html").exists() && out.join("timeseries.csv").exists());
    assert_eq!(util::host_state(), host);
}
