//! A program of the user's own as the server (`server.command`): the lab starts it in the server
//! namespace, waits for its listener, reports the backlog the program really used, storms it,
//! stops it and keeps its output; it never outlives the lab. See: issue #9, part 1.

use std::path::Path;
use std::process::{Command, Output};
use std::time::{Duration, Instant};

use crate::util::{self, out_dir};

/// A scenario whose server is `command` (TOML array items), stormed by 100 short connections.
fn scenario(dir: &Path, command: &str, extra: &str) -> std::path::PathBuf {
    let path = dir.join("program.toml");
    let text = format!(
        "name = \"program\"\n[server]\ncommand = [{command}]\n{extra}\n[client]\nrate = 200\n\
         connections = 100\nduration = \"1s\"\n"
    );
    std::fs::write(&path, text).unwrap();
    path
}

/// `backlog-lab run FILE` into `out`, as the one storm on the machine.
fn run(file: &Path, out: &Path) -> Output {
    let _lab = util::lab();
    util::bin()
        .args(["run", "--quiet", "--set", "trace_drops=false", "--out"])
        .arg(out)
        .arg(file)
        .output()
        .unwrap()
}

/// Whether any process on the machine has `marker` in its command line.
fn running(marker: &str) -> bool {
    Command::new("pgrep")
        .args(["-f", marker])
        .output()
        .is_ok_and(|o| o.status.success())
}

const JAVA: &str = "import java.net.*; public class Server { public static void main(String[] a) \
    throws Exception { ServerSocket s = new ServerSocket(Integer.parseInt(a[0]), 0, \
    InetAddress.getByName(a[1])); while (true) { Socket c = s.accept(); c.getOutputStream()\
    .write(\"HTTP/1.1 200 OK\\r\\nContent-Length: 2\\r\\n\\r\\nok\".getBytes()); c.close(); } } }";

/// Node's http server listens with 511, Python's http.server with 5 (socketserver's
/// `request_queue_size`), and Java's `ServerSocket` with 50 (a backlog of 0 means its default):
/// the run reports each as the accept queue's limit, read from the program's own socket, serves
/// every connection through it, and keeps the program's output and how it ended.
#[test]
fn each_programs_own_default_backlog_is_what_the_run_reports() {
    let (tmp, _) = out_dir();
    std::fs::write(tmp.path().join("Server.java"), JAVA).unwrap();
    let node = r#""node", "-e", "require('http').createServer((q, s) => s.end('ok')).listen(+process.argv[1], process.argv[2])", "{port}", "{addr}""#;
    let python = r#""python3", "-m", "http.server", "--bind", "{addr}", "{port}""#;
    let java = r#""java", "{scenario_dir}/Server.java", "{port}", "{addr}""#;
    for (name, command, backlog) in [
        ("node", node, 511),
        ("python", python, 5),
        ("java", java, 50),
    ] {
        let file = scenario(tmp.path(), command, "startup_timeout = \"30s\"");
        let out = tmp.path().join(name);
        let o = run(&file, &out);
        assert_eq!(o.status.code(), Some(0), "{name}: {}", util::stderr(&o));
        let s = util::summary(&out);
        assert_eq!(s["listen"]["accept_queue_limit"], backlog, "{name}");
        assert_eq!(s["listen"]["backlog_requested"], backlog, "{name}");
        assert_eq!(s["outcomes"]["ok"], 100, "{name}: {}", s["outcomes"]);
        let p = &s["server"]["program"];
        assert!(
            p["command"].as_str().unwrap().contains("198.18."),
            "{name}: {{addr}} filled: {p}"
        );
        assert!(
            p["exit"].as_str().unwrap().contains("SIGTERM") || p["exit"] == "exited with 143",
            "{name}: {p}"
        );
        assert!(out.join("server.log").exists(), "{name}");
    }
    let log = std::fs::read_to_string(tmp.path().join("python/server.log")).unwrap();
    assert!(
        log.matches("\"GET / HTTP/1.1\" 200").count() >= 100,
        "{log:.300}"
    );
}

/// A program that is not installed exits 3 naming it; one that exits at once, and one that never
/// listens, exit 3 with its last words, and leave no process behind.
#[test]
fn missing_dying_and_silent_programs_fail_clearly_and_leave_nothing() {
    let (tmp, _) = out_dir();
    let cases = [
        (
            r#""no-such-server-7q""#,
            "",
            "`no-such-server-7q` is not installed",
        ),
        (
            r#""sh", "-c", "echo boom-7q >&2; exit 7""#,
            "",
            "exited with 7",
        ),
        (
            r#""sh", "-c", "echo waiting-7q; exec sleep 60 # marker-7q""#,
            "startup_timeout = \"1s\"",
            "did not listen on port 8080 within 1s",
        ),
    ];
    for (command, extra, says) in cases {
        let file = scenario(tmp.path(), command, extra);
        let out = tmp.path().join(format!("out-{}", says.len()));
        let started = Instant::now();
        let o = run(&file, &out);
        assert_eq!(o.status.code(), Some(3), "{command}: {}", util::stderr(&o));
        let err = util::stderr(&o);
        assert!(err.contains(says), "{command}: {err}");
        if command.contains("boom") {
            assert!(err.contains("boom-7q"), "its last words: {err}");
        }
        if command.contains("waiting") {
            assert!(err.contains("waiting-7q"), "its last words: {err}");
            assert!(started.elapsed() < Duration::from_secs(10));
        }
        assert!(!running("marker-7q"), "the program outlived the failed run");
        // Nothing was measured; what the program wrote is kept for the error's reader.
        assert!(!out.join("summary.json").exists());
    }
}

/// A `kill -9` of the lab while its program serves a storm: the program dies with it
/// (PR_SET_PDEATHSIG), and no namespace of the lab outlives it by a second.
#[test]
fn a_sigkill_of_the_lab_takes_the_program_along() {
    let _lab = util::lab();
    let (tmp, out) = out_dir();
    let file = scenario(
        tmp.path(),
        r#""python3", "-c", "import http.server as h; h.ThreadingHTTPServer(('{addr}', {port}), h.SimpleHTTPRequestHandler).serve_forever() # marker-9k""#,
        "",
    );
    let mut child = util::bin()
        .args([
            "run",
            "--quiet",
            "--set",
            "client.duration=20s",
            "--set",
            "client.connections=4000",
            "--out",
        ])
        .arg(&out)
        .arg(&file)
        .spawn()
        .unwrap();
    let watch = util::nswatch::NsWatch::new();
    util::wait_until_started(&out);
    std::thread::sleep(Duration::from_millis(1000));
    assert!(running("marker-9k"), "the program serves");
    assert_eq!(watch.watch_namespaces_of(child.id()), 2);
    child.kill().unwrap();
    child.wait().unwrap();
    assert_eq!(
        watch.alive_after(Duration::from_secs(1)),
        0,
        "a namespace outlived the lab"
    );
    assert!(!running("marker-9k"), "the program outlived the lab");
}

/// Beside a program of your own, the lab's own server's `backlog` and `accept` are refused (the
/// program decides both), and `check` says the run will report the backlog the program got.
#[test]
fn a_program_decides_its_own_backlog_and_check_says_so() {
    let (tmp, _) = out_dir();
    let command = r#""python3", "-m", "http.server", "{port}""#;
    for (extra, names) in [
        (
            "backlog = 511",
            "server.backlog is what the lab's own server passes",
        ),
        (
            "accept = \"never\"",
            "server.accept drives the lab's own server",
        ),
    ] {
        let file = scenario(tmp.path(), command, extra);
        let o = util::bin().arg("check").arg(&file).output().unwrap();
        assert_eq!(o.status.code(), Some(2), "{extra}: {}", util::stderr(&o));
        assert!(util::stderr(&o).contains(names), "{}", util::stderr(&o));
    }
    let file = scenario(tmp.path(), command, "");
    let o = util::bin().arg("check").arg(&file).output().unwrap();
    let text = String::from_utf8_lossy(&o.stdout);
    assert!(
        text.contains("the program passes its own backlog"),
        "{text}"
    );
    assert!(
        text.contains("python3 -m http.server 8080 (a program of your own)"),
        "{text}"
    );
}

/// `server.pauses` stops any program (SIGSTOP to its process group) and continues it after each
/// window: the kernel goes on completing handshakes meanwhile. Python's http.server (backlog 5)
/// overflows within the first few milliseconds of a 500 ms pause at 200 connections/s, and its
/// clients get in on their SYN retransmission; Node (511) holds all 100 that arrive in the pause.
#[test]
fn a_paused_program_overflows_its_own_backlog_and_not_another() {
    let (tmp, _) = out_dir();
    let pause = "accept = \"pause\"\npauses = [\"0.3s-0.8s\"]";
    let python = r#""python3", "-m", "http.server", "--bind", "{addr}", "{port}""#;
    let node = r#""node", "-e", "require('http').createServer((q, s) => s.end('ok')).listen(+process.argv[1], process.argv[2])", "{port}", "{addr}""#;
    for (name, command) in [("python", python), ("node", node)] {
        let file = tmp.path().join(format!("{name}.toml"));
        std::fs::write(
            &file,
            format!(
                "name = \"{name}\"\n[server]\ncommand = [{command}]\n{pause}\n[client]\n\
                 rate = 200\nconnections = 300\nduration = \"1.5s\"\n"
            ),
        )
        .unwrap();
        let out = tmp.path().join(name);
        let o = run(&file, &out);
        assert_eq!(o.status.code(), Some(0), "{name}: {}", util::stderr(&o));
        let s = util::summary(&out);
        let max = s["listen"]["accept_queue_max_seen"].as_u64().unwrap();
        let overflows = util::counter(&s, "server", "TcpExt.ListenOverflows");
        assert_eq!(s["outcomes"]["ok"], 300, "{name}: {}", s["outcomes"]);
        if name == "python" {
            assert!(
                (6..=7).contains(&max),
                "python: accept queue max {max}, holds 6"
            );
            assert!(overflows > 50, "python: {overflows} overflows");
            let p99 = s["connect_latency_ms"]["p99"].as_f64().unwrap();
            assert!(p99 >= 900.0, "a SYN retransmission: p99 {p99} ms");
        } else {
            // 100 arrive in the 500 ms window (a few more if the signals land late).
            assert!((90..=115).contains(&max), "node: accept queue max {max}");
            assert_eq!(overflows, 0, "node");
        }
    }
}

/// Two processes listening on the port with SO_REUSEPORT, with backlogs 7 and 9: the run reports
/// both sockets with their own limits, and samples both.
#[test]
fn several_listening_sockets_are_each_reported() {
    let (tmp, out) = out_dir();
    std::fs::write(
        tmp.path().join("reuseport.py"),
        "import socket, sys\n\
         s = socket.socket()\n\
         s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEPORT, 1)\n\
         s.bind((sys.argv[1], int(sys.argv[2])))\n\
         s.listen(int(sys.argv[3]))\n\
         while True:\n    c, _ = s.accept()\n    c.recv(4096)\n\
         \x20   c.sendall(b'HTTP/1.1 200 OK\\r\\nContent-Length: 2\\r\\n\\r\\nok')\n    c.close()\n",
    )
    .unwrap();
    let file = scenario(
        tmp.path(),
        r#""sh", "-c", "python3 reuseport.py {addr} {port} 7 & python3 reuseport.py {addr} {port} 9 & wait""#,
        "",
    );
    let o = run(&file, &out);
    assert_eq!(o.status.code(), Some(0), "{}", util::stderr(&o));
    let s = util::summary(&out);
    let mut limits: Vec<u64> = s["listen"]["listeners"]
        .as_array()
        .unwrap_or_else(|| panic!("{}", s["listen"]))
        .iter()
        .map(|l| l.as_u64().unwrap())
        .collect();
    limits.sort_unstable();
    assert_eq!(limits, [7, 9]);
    assert_eq!(s["listen"]["accept_queue_limit"], 9, "the largest");
    assert_eq!(s["outcomes"]["ok"], 100, "{}", s["outcomes"]);
}

/// Debian's nginx with `listen … reuseport` and 2 workers: two listening sockets on the port,
/// each with nginx's default backlog, 511, both reported; and the queue is sampled per socket.
/// 600 connections arrive while nginx is stopped (SIGSTOP), the kernel spreads them over the
/// two sockets by hash, and the fullest socket held at least half of them but not all: the
/// samples are one socket's, not a sum.
#[test]
fn nginx_with_reuseport_and_two_workers_has_two_sockets_of_511() {
    let (tmp, out) = out_dir();
    let conf = std::fs::read_to_string("scenarios/servers/nginx.conf")
        .unwrap()
        .replace("worker_processes 1;", "worker_processes 2;")
        .replace("listen 8080;", "listen 8080 reuseport;");
    assert!(conf.contains("reuseport") && conf.contains("worker_processes 2;"));
    std::fs::write(tmp.path().join("nginx.conf"), conf).unwrap();
    let path = tmp.path().join("nginx.toml");
    std::fs::write(
        &path,
        "name = \"nginx-reuseport\"\n[server]\n\
         command = [\"nginx\", \"-p\", \"{run_dir}\", \"-c\", \"{scenario_dir}/nginx.conf\"]\n\
         accept = \"pause\"\npauses = [\"0s-1s\"]\n\
         [client]\narrival = \"burst\"\nburst_size = 600\nconnections = 600\nduration = \"1s\"\n",
    )
    .unwrap();
    let o = run(&path, &out);
    assert_eq!(o.status.code(), Some(0), "{}", util::stderr(&o));
    let s = util::summary(&out);
    assert_eq!(
        s["listen"]["listeners"],
        serde_json::json!([511, 511]),
        "{}",
        s["listen"]
    );
    assert_eq!(s["listen"]["accept_queue_limit"], 511);
    let fullest = s["listen"]["accept_queue_max_seen"].as_u64().unwrap();
    assert!(
        (300..600).contains(&fullest),
        "fullest socket held {fullest} of 600"
    );
    assert_eq!(util::counter(&s, "server", "TcpExt.ListenOverflows"), 0);
    assert_eq!(s["outcomes"]["ok"], 600, "{}", s["outcomes"]);
    let log = std::fs::read_to_string(out.join("server.log")).unwrap();
    assert_eq!(log.matches("start worker process ").count(), 2, "{log}");
}
