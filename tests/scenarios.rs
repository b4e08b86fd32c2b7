//! Every bundled scenario reproduces its incident on this kernel: its own `[expect]` holds.

use crate::util::{self, out_dir, summary};

#[track_caller]
fn passes(name: &str) {
    let _lab = util::lab();
    let (_tmp, out) = out_dir();
    let o = util::run(name, &out, &[]);
    let s = summary(&out);
    let failed: Vec<_> = s["expectations"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|e| e["pass"] != true)
        .map(|e| format!("{} (seen {})", e["text"], e["value"]))
        .collect();
    assert!(
        failed.is_empty(),
        "{name}: failed expectations: {failed:#?}"
    );
    assert_eq!(o.status.code(), Some(0), "{name}: {}", util::stderr(&o));
    assert!(!s["expectations"].as_array().unwrap().is_empty());
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
