//! `explain` states the limits this kernel applies, and a real run measures the same ones.

use crate::util::{self, out_dir};

fn explain(sets: &[&str]) -> serde_json::Value {
    let mut c = util::bin();
    c.args(["explain", "--json"]);
    for s in sets {
        c.args(["--set", s]);
    }
    let o = c.output().unwrap();
    assert!(o.status.success(), "{}", util::stderr(&o));
    let j: serde_json::Value = serde_json::from_slice(&o.stdout).unwrap();
    j["runs"][0].clone()
}

/// No root: the default scenario's limits on this kernel and on the articles' 3.10 kernels.
/// See: issue #8, part 5.
#[test]
fn explain_states_this_kernels_limits_beside_the_articles() {
    let e = explain(&[]);
    assert_eq!(
        e["accept_queue_limit"], 128,
        "listen(-1) under somaxconn 128"
    );
    assert_eq!(e["accept_queue_holds"], 129);
    assert_eq!(e["syn_queue_holds"], 129, "6.14 and later");
    assert_eq!(
        e["connect_gives_up_after_s"], 131.0,
        "10 retransmissions, then 131 s"
    );
    assert_eq!(e["legacy_3_10"]["syn_queue_holds"], 256);
    assert_eq!(e["legacy_3_10"]["connect_gives_up_after_s"], 127.0);
    let rows = e["rows"].as_array().unwrap();
    assert!(rows.len() >= 7, "{rows:?}");
    let o = util::bin()
        .args(["explain", "node-backlog-511"])
        .output()
        .unwrap();
    let text = String::from_utf8_lossy(&o.stdout);
    assert!(
        text.contains("3.10 era:") && text.contains("no longer"),
        "{text}"
    );
}

/// A burst at a listen(8) that never accepts, across a 200 ms RTT with syncookies off and
/// `tcp_syn_retries` 2: the accept queue and the SYN queue each fill to what `explain` says they
/// hold, and the clients whose SYNs kept being dropped get ETIMEDOUT when `explain` says
/// connect() gives up (7 s: the kernel gives up by time, not by count).
#[test]
fn a_run_measures_the_limits_explain_states() {
    let sets = [
        "server.backlog=8",
        "server.accept=never",
        "server.sysctl.net.ipv4.tcp_syncookies=0",
        "link.rtt=200ms",
        "client.arrival=burst",
        "client.connections=40",
        "client.sysctl.net.ipv4.tcp_syn_retries=2",
        "client.connect_timeout=8s",
        "client.response_timeout=1s",
        "expect=",
    ];
    let e = explain(&sets);
    assert_eq!(e["accept_queue_holds"], 9);
    assert_eq!(e["syn_queue_holds"], 9);
    assert_eq!(
        e["connect_gives_up_after_s"], 7.0,
        "the exponential model of 2 retries"
    );
    let _lab = util::lab();
    let (_tmp, out) = out_dir();
    let o = util::run("envoy-somaxconn-128", &out, &sets);
    assert_eq!(o.status.code(), Some(0), "{}", util::stderr(&o));
    let s = util::summary(&out);
    let holds = |k: &str| e[k].as_u64().unwrap();
    // Two CPUs completing handshakes at once can slip one more in (docs/NOTES.md).
    let seen = s["listen"]["accept_queue_max_seen"].as_u64().unwrap();
    assert!((holds("accept_queue_holds")..=holds("accept_queue_holds") + 1).contains(&seen));
    let seen = s["listen"]["syn_recv_max_seen"].as_u64().unwrap();
    assert!(
        (holds("syn_queue_holds")..=holds("syn_queue_holds") + 1).contains(&seen),
        "{seen}"
    );
    let gave_up = &s["by_outcome"]["connect_timeout"];
    assert!(gave_up["count"].as_u64().unwrap() >= 20, "{gave_up}");
    let t = e["connect_gives_up_after_s"].as_f64().unwrap() * 1000.0;
    for p in ["p50", "max"] {
        let ms = gave_up["total_ms"][p].as_f64().unwrap();
        assert!(
            ms >= t - 50.0 && ms <= t + 400.0,
            "connect() gave up at {ms} ms ({p}), not {t}"
        );
    }
}
