//! The host is left exactly as found: sysctls, links, named namespaces, even after SIGKILL.

use std::os::unix::fs::MetadataExt;
use std::time::{Duration, Instant};

use crate::util::{self, host_state, out_dir, run};

/// Also with the emulated link (TUN devices, created inside the namespaces) and a SYN flood from
/// spoofed addresses (routed back and blackholed inside the lab).
/// On IPv6 too: the flood's raw IPv6 SYNs, the lab's addresses and its IPv6 settings stay in its
/// namespaces.
#[test]
fn a_run_leaves_host_sysctls_and_links_unchanged() {
    for family in ["ipv4", "ipv6"] {
        a_run_leaves_the_host_unchanged(family);
    }
}

fn a_run_leaves_the_host_unchanged(family: &str) {
    let _lab = util::lab();
    let before = host_state();
    let (_tmp, out) = out_dir();
    let family_set = format!("family={family}");
    let o = run(
        "envoy-somaxconn-128",
        &out,
        &[
            &family_set,
            "client.connections=500",
            "client.duration=500ms",
            "server.sysctl.net.ipv4.tcp_max_syn_backlog=64",
            "server.sysctl.net.ipv4.tcp_syncookies=0",
            "server.sysctl.net.ipv4.tcp_synack_retries=2",
            "client.sysctl.net.ipv4.tcp_syn_retries=2",
            "link.rtt=2ms",
            "flood.rate=5000",
            "flood.count=2000",
        ],
    );
    assert!(
        matches!(o.status.code(), Some(0) | Some(1)),
        "{}",
        util::stderr(&o)
    );
    let s = util::summary(&out);
    assert_eq!(s["family"], family);
    // The namespaces really had the values (read back by the lab)...
    assert_eq!(s["sysctl"]["server"]["net.core.somaxconn"], "128");
    assert_eq!(s["sysctl"]["server"]["net.ipv4.tcp_syncookies"], "0");
    assert_eq!(s["sysctl"]["client"]["net.ipv4.tcp_syn_retries"], "2");
    assert_eq!(
        s["sysctl"]["client"]["net.ipv4.ip_local_port_range"],
        "1024 65535"
    );
    assert_eq!(s["flood"]["sent"], 2000);
    assert_eq!(s["link"]["ring_drops"], 0);
    // Drop reasons were traced (in a private tracefs mount, gone with the run)...
    assert_eq!(s["drops"]["recorded"], true, "{}", s["drops"]);
    assert!(s["drops"]["synack_retransmits"].as_u64().unwrap() > 0);
    // ...and the host never did, nor its mount table or its tracing setup.
    assert_eq!(host_state(), before, "{family}");
}

/// SIGKILL in the middle of a storm, on veth and on the delay line: the run cannot clean up, and
/// nothing needs it to. The namespaces' warden ends their sockets, so no orphan keeps one alive
/// (without it they lived 105 s on veth and 202 s on TUN, retransmitting); the trace instance is
/// removed by the janitor that was waiting for exactly this. See: issue #6, items 1 and 7.
#[test]
fn sigkill_mid_run_leaves_nothing_behind() {
    let _lab = util::lab();
    for (rtt, family) in [
        ("link.rtt=0ms", "family=ipv4"),
        ("link.rtt=20ms", "family=ipv4"),
        ("link.rtt=0ms", "family=ipv6"),
        ("link.rtt=20ms", "family=ipv6"),
    ] {
        let link = &format!("{rtt} {family}");
        let before = host_state();
        let orphans = util::nswatch::tcp_orphans();
        let (_tmp, out) = out_dir();
        let mut child = crate::util::long_storm(&out)
            .args(["--set", rtt, "--set", family])
            .spawn()
            .unwrap();
        let watch = util::nswatch::NsWatch::new();
        // Wait until the storm is under way: the run's namespaces exist once environment.json
        // does.
        crate::util::wait_until_started(&out);
        std::thread::sleep(Duration::from_millis(1500));
        assert_eq!(
            watch.watch_namespaces_of(child.id()),
            2,
            "{link}: the lab's two namespaces"
        );
        assert_eq!(watch.alive(), 2);
        child.kill().unwrap();
        child.wait().unwrap();
        rows_written_so_far(&out, link);
        assert_eq!(
            watch.alive_after(Duration::from_secs(1)),
            0,
            "{link}: a lab namespace outlived the lab by 1 s"
        );
        assert!(
            util::nswatch::tcp_orphans() <= orphans,
            "{link}: the machine's TCP orphans went from {orphans} to {}",
            util::nswatch::tcp_orphans()
        );
        // The trace instance is removed by the run's janitor, a moment later.
        let t = Instant::now();
        while host_state() != before && t.elapsed() < Duration::from_secs(5) {
            std::thread::sleep(Duration::from_millis(100));
        }
        assert_eq!(
            host_state(),
            before,
            "{link}: host sysctls, links, named namespaces, mounts and tracing"
        );
    }
}

/// connections.csv after a SIGKILL: the rows go out as connections finish (issue #10, goal 6), so
/// a killed run keeps those it had written, in id order from 0, each complete but perhaps the
/// last line, which the kill may have cut.
fn rows_written_so_far(out: &std::path::Path, link: &str) {
    let text = std::fs::read_to_string(out.join("connections.csv"))
        .unwrap_or_else(|e| panic!("{link}: no connections.csv after a SIGKILL: {e}"));
    let mut lines: Vec<&str> = text.split_inclusive('\n').collect();
    if lines.last().is_some_and(|l| !l.ends_with('\n')) {
        lines.pop();
    }
    assert!(lines[0].starts_with("id,"), "{link}: header {:?}", lines[0]);
    let header = lines[0].split(',').count();
    let rows = &lines[1..];
    assert!(!rows.is_empty(), "{link}: no row written in 1.5 s of storm");
    for (i, row) in rows.iter().enumerate() {
        let fields: Vec<&str> = row.trim_end().split(',').collect();
        assert_eq!(fields.len(), header, "{link}: row {row:?}");
        assert_eq!(fields[0], i.to_string(), "{link}: rows in id order from 0");
    }
    eprintln!("{link}: {} rows on disk at the SIGKILL", rows.len());
}

/// After a clean run on the delay line, no namespace of the lab outlives it: the lab ends the
/// sockets left in its namespaces (orphans whose FIN the stopped link would never carry) as it
/// takes its hosts down. See: issue #6, item 7.
#[test]
fn after_a_clean_run_no_namespace_outlives_the_lab() {
    let _lab = util::lab();
    let (_tmp, out) = out_dir();
    let mut child = util::bin()
        .args(["run", "reset-by-peer", "--quiet", "--out"])
        .arg(&out)
        .args(["--set", "expect="])
        .spawn()
        .unwrap();
    let watch = util::nswatch::NsWatch::new();
    crate::util::wait_until_started(&out);
    assert_eq!(watch.watch_namespaces_of(child.id()), 2);
    assert!(child.wait().unwrap().success());
    assert_eq!(
        watch.alive_after(Duration::from_secs(1)),
        0,
        "a lab namespace outlived a clean run by 1 s"
    );
}

/// An ordinary user can run the lab where the kernel allows unprivileged user namespaces: it
/// becomes root of its own user namespace, which owns the lab's network namespaces (and nothing
/// on the host). Where they are disabled, the run says so and exits 3. Whichever the machine's
/// setting, the test asserts the behaviour that setting implies.
#[test]
fn an_ordinary_user_runs_the_lab_in_a_user_namespace() {
    use std::os::unix::fs::PermissionsExt;
    use std::os::unix::process::CommandExt;
    let _lab = util::lab();
    let before = host_state();
    // A root lab first: the user's lab must claim from the same files, and so take another subnet.
    let started = std::time::SystemTime::now();
    let (_root_tmp, root_out) = out_dir();
    let o = run(
        "envoy-somaxconn-128",
        &root_out,
        &["client.connections=200", "client.duration=200ms", "expect="],
    );
    assert_eq!(o.status.code(), Some(0), "{}", util::stderr(&o));
    // `nobody` must reach the binary and a writable folder.
    let tmp = tempfile::tempdir().unwrap();
    std::fs::set_permissions(tmp.path(), std::fs::Permissions::from_mode(0o777)).unwrap();
    let exe = tmp.path().join("backlog-lab");
    std::fs::copy(env!("CARGO_BIN_EXE_backlog-lab"), &exe).unwrap();
    let out = tmp.path().join("run");
    let o = std::process::Command::new(&exe)
        .current_dir(tmp.path())
        .args(["run", "envoy-somaxconn-128", "--quiet", "--out"])
        .arg(&out)
        .args([
            "--set",
            "client.connections=500",
            "--set",
            "client.duration=500ms",
            "--set",
            "expect=",
        ])
        .uid(65534)
        .gid(65534)
        .output()
        .unwrap();
    let allowed = std::fs::read_to_string("/proc/sys/user/max_user_namespaces")
        .is_ok_and(|v| v.trim() != "0");
    if allowed {
        assert_eq!(o.status.code(), Some(0), "{}", util::stderr(&o));
        let s = util::summary(&out);
        assert_eq!(s["connections"], 500);
        assert_eq!(
            s["sysctl"]["server"]["net.core.somaxconn"], "128",
            "set inside the user's netns"
        );
        assert_eq!(s["listen"]["accept_queue_limit"], 128);
        // It claimed its subnet in the machine's shared folder, next to root's labs.
        let subnet = |dir: &std::path::Path| -> String {
            let env: serde_json::Value = serde_json::from_str(
                &std::fs::read_to_string(dir.join("environment.json")).unwrap(),
            )
            .unwrap();
            env["server_address"]
                .as_str()
                .unwrap()
                .split('.')
                .nth(2)
                .unwrap()
                .to_string()
        };
        let (root_net, user_net) = (subnet(&root_out), subnet(&out));
        assert_ne!(
            root_net, user_net,
            "the user's lab took the subnet root's lab had just used"
        );
        let lock = format!("/run/backlog-lab/net-{user_net}.lock");
        let stamped = std::fs::metadata(&lock).and_then(|m| m.modified());
        assert!(
            stamped.as_ref().is_ok_and(|t| *t >= started),
            "the user's lab did not claim {lock}: {stamped:?}"
        );
        // tracefs cannot be mounted from a user namespace: said once, and the run goes on.
        assert_eq!(s["drops"]["recorded"], false);
        assert_eq!(
            util::stderr(&o)
                .matches("drop reasons are not recorded")
                .count(),
            1,
            "{}",
            util::stderr(&o)
        );
        assert!(!out.join("drops.csv").exists());
    } else {
        assert_eq!(o.status.code(), Some(3), "{}", util::stderr(&o));
        assert!(
            util::stderr(&o).contains("user namespaces"),
            "{}",
            util::stderr(&o)
        );
    }
    assert_eq!(host_state(), before);
}

/// `serve` stands up the lab without a storm and prints the client namespace as a /proc path:
/// a client that joins it (as `nsenter --net=` would) reaches the server and gets its response.
#[test]
fn serve_lets_a_client_of_your_own_in_through_the_printed_namespace() {
    use std::io::{BufRead, Read, Write};
    let _lab = util::lab();
    let before = host_state();
    let (_tmp, out) = out_dir();
    // The example of `serve --help`, as written (the override drops the file's accept_rate).
    let mut child = util::bin()
        .args([
            "serve",
            "--set",
            "server.accept=fast",
            "--for",
            "20s",
            "--out",
        ])
        .arg(&out)
        .stdout(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    let mut lines = std::io::BufReader::new(child.stdout.take().unwrap()).lines();
    // `serving 198.18.N.1:8080 (...)`: the subnet this lab claimed.
    let target = lines
        .by_ref()
        .map(|l| l.unwrap())
        .find_map(|l| Some(l.strip_prefix("serving ")?.split(' ').next()?.to_string()))
        .expect("serve prints its address");
    let ns_path = lines
        .by_ref()
        .map(|l| l.unwrap())
        .find_map(|l| l.strip_prefix("client namespace: ").map(str::to_string))
        .expect("serve prints the client namespace");
    let server_ns = lines
        .by_ref()
        .map(|l| l.unwrap())
        .find_map(|l| {
            Some(
                l.strip_prefix("server namespace: ")?
                    .split(' ')
                    .next()?
                    .to_string(),
            )
        })
        .expect("serve prints the server namespace");
    assert_ne!(
        std::fs::metadata(&server_ns).unwrap().ino(),
        std::fs::metadata(&ns_path).unwrap().ino()
    );
    let ns = std::fs::File::open(&ns_path).unwrap();
    let reply = std::thread::spawn(move || {
        nix::sched::setns(&ns, nix::sched::CloneFlags::CLONE_NEWNET).unwrap();
        let mut s = std::net::TcpStream::connect(target.as_str()).unwrap();
        s.write_all(b"GET / HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
            .unwrap();
        let mut text = String::new();
        s.read_to_string(&mut text).unwrap();
        text
    })
    .join()
    .unwrap();
    assert!(reply.starts_with("HTTP/1.1 200 OK"), "{reply}");
    nix::sys::signal::kill(
        nix::unistd::Pid::from_raw(child.id() as i32),
        nix::sys::signal::SIGINT,
    )
    .unwrap();
    let rest: Vec<String> = lines.map(|l| l.unwrap()).collect();
    assert_eq!(
        child.wait().unwrap().code(),
        Some(130),
        "Ctrl-C ends serve with 130"
    );
    assert!(
        rest.iter()
            .any(|l| l.contains("server accepted 1, served 1")),
        "{rest:?}"
    );
    assert!(
        rest.iter()
            .any(|l| l.contains("Tcp.PassiveOpens") && l.ends_with(" 1")),
        "{rest:?}"
    );
    // counters.csv as `run` writes it: the one connection is in the server's PassiveOpens.
    let csv = std::fs::read_to_string(out.join("counters.csv")).unwrap();
    let row = csv
        .lines()
        .find(|l| l.starts_with("server,Tcp.PassiveOpens,"))
        .unwrap_or_else(|| panic!("{csv}"));
    assert!(row.ends_with(",1"), "{row}");
    assert!(out.join("environment.json").exists() && out.join("scenario.toml").exists());
    assert_eq!(host_state(), before);
}

/// A SIGKILL of the run's whole process group (`timeout -s KILL`, `kill -9 -PGID`, what a
/// supervisor does) reaches the wardens no more: they have a session of their own, so the trace
/// instance is still removed and the namespaces still go. See: issue #6, items 7 and 8.
#[test]
fn a_group_sigkill_leaves_no_trace_instance() {
    use std::os::unix::process::CommandExt;
    let _lab = util::lab();
    let before = host_state();
    let (_tmp, out) = out_dir();
    let mut child = crate::util::long_storm(&out)
        .process_group(0)
        .spawn()
        .unwrap();
    let watch = util::nswatch::NsWatch::new();
    crate::util::wait_until_started(&out);
    std::thread::sleep(Duration::from_millis(1000));
    assert_eq!(watch.watch_namespaces_of(child.id()), 2);
    let group = nix::unistd::Pid::from_raw(-(child.id() as i32));
    nix::sys::signal::kill(group, nix::sys::signal::SIGKILL).unwrap();
    child.wait().unwrap();
    // The namespaces' warden has a session of its own too.
    assert_eq!(
        watch.alive_after(Duration::from_secs(1)),
        0,
        "a lab namespace outlived a group kill by 1 s"
    );
    let t = Instant::now();
    while host_state() != before && t.elapsed() < Duration::from_secs(5) {
        std::thread::sleep(Duration::from_millis(100));
    }
    assert_eq!(host_state(), before, "tracing left behind by a group kill");
    // And `cleanup` finds nothing left to remove.
    let o = util::bin().arg("cleanup").output().unwrap();
    assert!(o.status.success(), "{}", util::stderr(&o));
    assert!(
        String::from_utf8_lossy(&o.stdout).contains("removed 0 trace instance(s)"),
        "{}",
        String::from_utf8_lossy(&o.stdout)
    );
}

/// The hidden `trace-janitor DIR` acts only on a lab's own instance: given any other folder
/// (or one shaped like an instance of a live process that is not its parent) it changes
/// nothing. See: issue #6, item 8.
#[test]
fn the_janitor_touches_nothing_but_a_labs_instance() {
    let tmp = tempfile::tempdir().unwrap();
    let plain = tmp.path().join("some-folder");
    let lookalike = tmp.path().join("instances").join("backlog-lab-1-0"); // pid 1 is alive
    for dir in [&plain, &lookalike] {
        std::fs::create_dir_all(dir).unwrap();
        std::fs::write(dir.join("tracing_on"), "1").unwrap();
        let o = util::bin()
            .arg("trace-janitor")
            .arg(dir)
            .stdin(std::process::Stdio::null())
            .output()
            .unwrap();
        assert!(o.status.success());
        assert_eq!(
            std::fs::read_to_string(dir.join("tracing_on")).unwrap(),
            "1"
        );
        assert!(dir.is_dir());
    }
}
