//! Every bundled scenario reproduces its incident on this kernel: its own `[expect]` holds.

use crate::util::{self, out_dir, summary};

#[track_caller]
fn passes(name: &str) {
    passes_with(name, &[]);
}

/// Runs `name` with `sets` and returns each run's summary once every expectation held.
#[track_caller]
fn passes_with(name: &str, sets: &[&str]) -> Vec<serde_json::Value> {
    let _lab = util::lab();
    let (_tmp, out) = out_dir();
    let o = util::run(name, &out, sets);
    // Exit 1 means an expectation failed (listed below); anything else is a broken run.
    assert!(
        matches!(o.status.code(), Some(0) | Some(1)),
        "{name}: exit {:?}: {}",
        o.status.code(),
        util::stderr(&o)
    );
    // A comparison writes one run folder per combination, listed in comparison.json.
    let runs: Vec<std::path::PathBuf> = match util::comparison(&out) {
        Some(c) => c["runs"]
            .as_array()
            .unwrap()
            .iter()
            .map(|r| out.join(r["dir"].as_str().unwrap()))
            .collect(),
        None => vec![out.clone()],
    };
    let mut summaries = Vec::new();
    for dir in &runs {
        let s = summary(dir);
        let failed: Vec<_> = s["expectations"]
            .as_array()
            .unwrap()
            .iter()
            .filter(|e| e["pass"] != true)
            .map(|e| format!("{} (seen {})", e["text"], e["value"]))
            .collect();
        assert!(
            failed.is_empty(),
            "{name} {}: failed expectations: {failed:#?}",
            dir.display()
        );
        assert!(!s["expectations"].as_array().unwrap().is_empty());
        summaries.push(s);
    }
    assert_eq!(o.status.code(), Some(0), "{name}: {}", util::stderr(&o));
    summaries
}

// See: ../shared/seeds/000 (Envoy, somaxconn 128)
#[test]
fn envoy_somaxconn_128() {
    passes("scenarios/envoy-somaxconn-128.toml");
}

// See: ../shared/seeds/001 (Netty 3.5, Java default backlog 50)
#[test]
fn netty_backlog_50() {
    passes("scenarios/netty-backlog-50.toml");
}

// See: ../shared/seeds/001 (the fix: backlog 1024)
#[test]
fn netty_backlog_1024() {
    passes("scenarios/netty-backlog-1024.toml");
}

// See: ../shared/seeds/003 (Node default backlog 511, connection bursts)
#[test]
fn node_backlog_511() {
    passes("scenarios/node-backlog-511.toml");
}

// See: ../shared/seeds/002 (busy upstream, abort_on_overflow=1: reset by peer)
#[test]
fn reset_by_peer() {
    passes("scenarios/reset-by-peer.toml");
}

// See: ../shared/seeds/004 (abort_on_overflow 0 vs 1, then the tuned kernel): a comparison
// ... on both families side by side (issue #11): the same cases, the same verdicts.
#[test]
fn abort_on_overflow() {
    let runs = passes_with("scenarios/abort-on-overflow.toml", &["family=ipv4,ipv6"]);
    let families: Vec<_> = runs.iter().map(|s| s["family"].as_str().unwrap()).collect();
    assert_eq!(families, ["ipv4", "ipv4", "ipv4", "ipv6", "ipv6", "ipv6"]);
}

// See: ../shared/seeds/002 and 004 (syncookies 0/1/2, client-first vs server-first)
#[test]
fn syncookies() {
    passes("scenarios/syncookies.toml");
}

// See: ../shared/seeds/004 (SYN flood from spoofed sources, syncookies 0 vs 1)
#[test]
fn syn_flood() {
    passes("scenarios/syn-flood.toml");
}

// See: ../shared/seeds/003 (Node's 511 under connect bursts): the bundled plan, as written
#[test]
fn node_burst() {
    passes("scenarios/node-burst.toml");
}

// See: ../shared/seeds/001 and 003 (a server that stops accepting): the bundled plan, as written
#[test]
fn gc_pause() {
    passes("scenarios/gc-pause.toml");
}

// See: ../shared/seeds/001 (Netty's 50 under steady load near saturation): the bundled plan
#[test]
fn netty_50() {
    passes("scenarios/netty-50.toml");
}

// The real-server scenarios (issue #9, part 4): each runs the program's own default backlog,
// then the seed's fix. They run from the repository, beside their programs.

#[test]
fn servers_node_default_511() {
    passes("scenarios/servers/node-default-511.toml");
}

#[test]
fn servers_java_serversocket_50() {
    passes("scenarios/servers/java-serversocket-50.toml");
}

#[test]
fn servers_nginx_default_511() {
    passes("scenarios/servers/nginx-default-511.toml");
}

#[test]
fn servers_python_http_server_5() {
    passes("scenarios/servers/python-http-server-5.toml");
}
