//! The result folder's formats do not drift (issue #5): a new run's `summary.json` has the key
//! tree of one written before the typed summary, and `plot` renders a folder written by that
//! earlier version (`tests/fixtures/results/reset-by-peer`: the bundled `reset-by-peer` with
//! `--set client.connections=400 --set client.duration=0.2s`, so two of its expectations fail)
//! into the same files with the same sentences and numbers.

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};

use serde_json::Value;

use crate::util;

fn fixture() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/results/reset-by-peer")
}

/// Objects whose keys are the kernel's names (counters, sysctls, drop reasons) or the outcomes':
/// which of them appear depends on what moved, so only the path to them is compared.
const OPEN: &[&str] = &[
    "counters.server",
    "counters.client",
    "sysctl.server",
    "sysctl.client",
    "drops.by_reason",
    "drops.by_function",
    "drops.resets_sent",
];

/// Keys added on purpose since the fixture was written, each with the issue that added it.
const ADDED: &[&str] = &[
    "drops.other_labs",     // issue #6: labs that ran beside this one
    "outcomes.abandoned",   // issue #6: rows for connections a second signal abandoned
    "by_outcome.abandoned", // ... and their timings (the keys below it too)
    "overrides",            // issue #7: the --sets that make a run differ from its scenario
    "outcomes.not_started", // issue #10: attempts the client's in-flight budget held back
    "by_outcome.not_started",
    "schedule.in_flight_budget",
    "schedule.peak_rss_bytes",   // issue #10: memory per connection
    "sampling.syn_recv_counted", // issue #10: the SYN-RECV count's CPU budget
    "sampling.syn_recv_skipped",
    "sampling.syn_recv_share",
    "sampling.counters_read", // issue #10: the counters' CPU budget
    "sampling.counters_skipped",
    "sampling.counter_share",
    "link.to_server.packets_armed", // the loss's share counts only packets after calibration
    "link.to_client.packets_armed",
    "family",                    // issue #11: ipv4 or ipv6
    "drops.rst_closes_left_out", // issue #10: client.close = rst's own RSTs are not traced
];

/// Lines a report has gained on purpose since the fixture was written.
const ADDED_LINES: &[&str] = &[
    "| abandoned | 0 | 0.0% |",
    "| not_started | 0 | 0.0% |",
    "| client close | fin (close) |", // issue #10: client.close, fin before it existed
];

fn key_tree(v: &Value, path: &str, out: &mut BTreeSet<String>) {
    out.insert(path.to_string());
    if OPEN.contains(&path) {
        return;
    }
    match v {
        Value::Object(m) => {
            for (k, child) in m {
                let p = if path.is_empty() {
                    k.clone()
                } else {
                    format!("{path}.{k}")
                };
                key_tree(child, &p, out);
            }
        }
        // A list's items share one shape: the first stands for all (a list of plain values,
        // such as the warnings, is a leaf: whether it has items depends on the run).
        Value::Array(a) => {
            if let Some(first) = a.first().filter(|f| f.is_object()) {
                key_tree(first, &format!("{path}[]"), out);
            }
        }
        _ => {}
    }
}

fn tree(v: &Value) -> BTreeSet<String> {
    let mut out = BTreeSet::new();
    key_tree(v, "", &mut out);
    out
}

fn copy_dir(from: &Path, to: &Path) {
    std::fs::create_dir_all(to).unwrap();
    for e in std::fs::read_dir(from).unwrap() {
        let e = e.unwrap();
        if e.path().is_dir() {
            copy_dir(&e.path(), &to.join(e.file_name()));
        } else {
            std::fs::copy(e.path(), to.join(e.file_name())).unwrap();
        }
    }
}

#[test]
fn a_new_summary_has_the_key_tree_of_the_fixture() {
    let _lab = util::lab();
    let (_tmp, out) = util::out_dir();
    let o = util::run(
        "reset-by-peer",
        &out,
        &["client.connections=400", "client.duration=0.2s"],
    );
    // 400 connections are too few for two of the scenario's expectations: exit 1 is fine.
    assert!(
        matches!(o.status.code(), Some(0 | 1)),
        "{}",
        String::from_utf8_lossy(&o.stderr)
    );
    let old: Value =
        serde_json::from_str(&std::fs::read_to_string(fixture().join("summary.json")).unwrap())
            .unwrap();
    let (old, new) = (tree(&old), tree(&util::summary(&out)));
    let gone: Vec<_> = old.difference(&new).collect();
    let added: Vec<_> = new
        .difference(&old)
        .filter(|k| {
            !ADDED
                .iter()
                .any(|a| k == a || k.starts_with(&format!("{a}.")))
        })
        .collect();
    assert!(
        gone.is_empty() && added.is_empty(),
        "summary.json changed shape: gone {gone:?}, added {added:?}"
    );
}

#[test]
fn plot_renders_a_folder_of_the_previous_version_with_the_same_sentences() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().join("reset-by-peer");
    copy_dir(&fixture(), &dir);
    let expected = std::fs::read_to_string(dir.join("report.md")).unwrap();
    std::fs::remove_file(dir.join("report.md")).unwrap();
    let o = util::bin().arg("plot").arg(&dir).output().unwrap();
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    let mut plots: Vec<String> = std::fs::read_dir(dir.join("plots"))
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    plots.sort();
    let want: Vec<String> = [
        "connect-latency-cdf",
        "counter-rates",
        "outcomes-over-time",
        "queue-occupancy",
    ]
    .iter()
    .flat_map(|s| [format!("{s}.png"), format!("{s}.svg")])
    .collect();
    assert_eq!(plots, want);
    assert!(dir.join("report.html").is_file());
    // The fixture was rendered in place; only the folder named in the last paragraph differs.
    let report: String = std::fs::read_to_string(dir.join("report.md"))
        .unwrap()
        .replace(
            &dir.display().to_string(),
            "tests/fixtures/results/reset-by-peer",
        )
        .lines()
        .filter(|l| !ADDED_LINES.contains(l))
        .map(|l| format!("{l}\n"))
        .collect();
    for (old, new) in expected.lines().zip(report.lines()) {
        assert_eq!(
            old, new,
            "report.md differs from the one the earlier version wrote"
        );
    }
    assert_eq!(expected.lines().count(), report.lines().count());
}
