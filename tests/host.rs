//! The host is left exactly as found: sysctls, links, named namespaces, even after SIGKILL.

use std::os::unix::fs::MetadataExt;
use std::time::{Duration, Instant};

use crate::util::{self, host_state, out_dir, run};

/// Also with the emulated link (TUN devices, created inside the namespaces) and a SYN flood from
/// spoofed addresses (routed back and blackholed inside the lab).
#[test]
fn a_run_leaves_host_sysctls_and_links_unchanged() {
    let _lab = util::lab();
    let before = host_state();
    let (_tmp, out) = out_dir();
    let o = run(
        "envoy-somaxconn-128",
        &out,
        &[
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
    assert_eq!(host_state(), before);
}

/// Namespace inodes held by any thread or descriptor of `pid`.
fn netns_inodes_of(pid: u32) -> Vec<u64> {
    let mut inodes = Vec::new();
    for dir in [format!("/proc/{pid}/task"), format!("/proc/{pid}/fd")] {
        let Ok(entries) = std::fs::read_dir(&dir) else {
            continue;
        };
        for e in entries.flatten() {
            let p = if dir.ends_with("task") {
                e.path().join("ns/net")
            } else {
                e.path()
            };
            if std::fs::read_link(&p).is_ok_and(|l| l.to_string_lossy().starts_with("net:")) {
                if let Ok(m) = std::fs::metadata(&p) {
                    inodes.push(m.ino());
                }
            }
        }
    }
    inodes.sort();
    inodes.dedup();
    inodes
}

/// Whether any process on the machine still holds a namespace with this inode.
fn anyone_holds(inode: u64) -> bool {
    std::fs::read_dir("/proc").unwrap().flatten().any(|p| {
        p.file_name()
            .to_string_lossy()
            .parse::<u32>()
            .is_ok_and(|pid| netns_inodes_of(pid).contains(&inode))
    })
}

/// SIGKILL in the middle of a storm: the run cannot clean up, and nothing needs it to. The
/// namespaces die with the process's descriptors, taking the veth pair with them; the trace
/// instance is removed by the janitor process that was waiting for exactly this.
#[test]
fn sigkill_mid_run_leaves_nothing_behind() {
    let _lab = util::lab();
    let before = host_state();
    let host_ns = std::fs::metadata("/proc/self/ns/net").unwrap().ino();
    let (_tmp, out) = out_dir();
    let mut child = crate::util::long_storm(&out).spawn().unwrap();
    // Wait until the storm is under way: the run's namespaces exist once environment.json does.
    crate::util::wait_until_started(&out);
    std::thread::sleep(Duration::from_millis(1500));
    let lab_ns: Vec<u64> = netns_inodes_of(child.id())
        .into_iter()
        .filter(|i| *i != host_ns)
        .collect();
    assert_eq!(lab_ns.len(), 2, "the running lab holds its two namespaces");
    child.kill().unwrap();
    child.wait().unwrap();

    // The trace instance is removed by the run's janitor process, which notices the run's death
    // a moment later.
    let t = Instant::now();
    while host_state() != before && t.elapsed() < Duration::from_secs(5) {
        std::thread::sleep(Duration::from_millis(100));
    }
    assert_eq!(
        host_state(),
        before,
        "host sysctls, links, named namespaces, mounts and tracing"
    );
    let t = Instant::now();
    while lab_ns.iter().any(|i| anyone_holds(*i)) {
        assert!(
            t.elapsed() < Duration::from_secs(10),
            "a lab namespace outlived the lab"
        );
        std::thread::sleep(Duration::from_millis(100));
    }
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
    let mut child = util::bin()
        .args([
            "serve",
            "--set",
            "server.accept=fast",
            "--set",
            "server.accept_rate=",
            "--for",
            "20s",
        ])
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
    assert!(child.wait().unwrap().success());
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
    assert_eq!(host_state(), before);
}

/// A SIGKILL of the run's whole process group (`timeout -s KILL`, `kill -9 -PGID`, what a
/// supervisor does) reaches the janitor no more: it has a session of its own, so it still
/// removes the trace instance. See: issue #6, item 8.
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
    crate::util::wait_until_started(&out);
    std::thread::sleep(Duration::from_millis(1000));
    let group = nix::unistd::Pid::from_raw(-(child.id() as i32));
    nix::sys::signal::kill(group, nix::sys::signal::SIGKILL).unwrap();
    child.wait().unwrap();
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
