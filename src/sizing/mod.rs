//! Backlog sizing: what listen backlog a workload needs, from a model of both queues
//! ([`model`]) checked by closed forms ([`closed`]), then proved by real runs ([`search`]).
//!
//! The model answers in the same language as the runs: a prediction becomes a [`Summary`] with
//! the counters, outcomes, latencies and queue peaks the model knows, so one target
//! (`counters.server.TcpExt.ListenDrops == 0`, `connect_latency_ms.p99 <= 200`) is judged by the
//! same code on the model's numbers and on a run's.

pub mod answer;
pub mod closed;
pub mod model;
pub mod search;
pub mod workload;

use std::collections::BTreeMap;

use crate::record::outcome::OutcomeCounts;
use crate::record::percentiles::Percentiles;
use crate::record::summary::{Listen, Summary};
use crate::scenario::expect::Expectation;
use model::Prediction;
use workload::Workload;

/// The summary paths the model predicts; a target that reads anything else is judged by the
/// runs alone.
const PREDICTED: &[&str] = &[
    "connections",
    "planned",
    "outcomes.",
    "connect_latency_ms.",
    "connect_latency_from_start_ms.",
    "response_latency_ms.",
    "listen.",
    "counters.server.TcpExt.ListenOverflows",
    "counters.server.TcpExt.ListenDrops",
    "counters.server.TcpExt.TCPReqQFullDrop",
    "counters.server.TcpExt.TCPReqQFullDoCookies",
    "counters.server.TcpExt.SyncookiesSent",
    "counters.server.TcpExt.EmbryonicRsts",
    "counters.server.TcpExt.TCPSynRetrans",
    "counters.client.TcpExt.TCPSynRetrans",
];

/// The first path of `target` the model does not predict, if any.
pub fn unpredicted(target: &Expectation) -> Option<String> {
    target
        .paths()
        .find(|p| {
            !PREDICTED
                .iter()
                .any(|k| p == k || (k.ends_with('.') && p.starts_with(k)))
        })
        .map(str::to_string)
}

/// The targets the model predicts (the others are judged by the runs alone).
pub fn predicted(targets: &[Expectation]) -> Vec<Expectation> {
    targets
        .iter()
        .filter(|t| unpredicted(t).is_none())
        .cloned()
        .collect()
}

/// The model's prediction for `listen(backlog)`, as a summary the targets can read.
pub fn summary(w: &Workload, backlog: u32, p: &Prediction) -> Summary {
    let server: BTreeMap<String, i64> = [
        ("TcpExt.ListenOverflows", p.listen_overflows()),
        ("TcpExt.ListenDrops", p.listen_drops()),
        ("TcpExt.TCPReqQFullDrop", p.syn_queue_drops),
        ("TcpExt.TCPReqQFullDoCookies", p.cookies_sent),
        ("TcpExt.SyncookiesSent", p.cookies_sent),
        ("TcpExt.EmbryonicRsts", p.embryonic_resets),
        ("TcpExt.TCPSynRetrans", p.server_synack_retrans),
    ]
    .into_iter()
    .filter(|(_, v)| *v > 0)
    .map(|(k, v)| (k.to_string(), v as i64))
    .collect();
    let client: BTreeMap<String, i64> = [("TcpExt.TCPSynRetrans", p.client_syn_retrans)]
        .into_iter()
        .filter(|(_, v)| *v > 0)
        .map(|(k, v)| (k.to_string(), v as i64))
        .collect();
    let connect = Percentiles::of(p.connect_us.iter().copied());
    Summary {
        scenario: "model".into(),
        connections: w.starts.len() as u64,
        planned: w.starts.len() as u64,
        outcomes: OutcomeCounts::of(p.outcomes.iter().copied()),
        connect_latency_ms: connect.clone(),
        connect_latency_from_start_ms: connect,
        response_latency_ms: Percentiles::of(p.response_us.iter().copied()),
        counters: BTreeMap::from([("server".into(), server), ("client".into(), client)]),
        listen: Listen {
            backlog_requested: backlog as i32,
            accept_queue_limit: Some(p.limit),
            accept_queue_capacity: Some(p.limit + 1),
            accept_queue_max_seen: p.accept_queue_peak,
            syn_recv_max_seen: p.syn_queue_peak,
            listeners: Vec::new(),
        },
        ..Default::default()
    }
}

/// Whether every target holds on `s`.
pub fn holds(targets: &[Expectation], s: &Summary) -> bool {
    let value = serde_json::to_value(s).expect("a summary serializes");
    targets.iter().all(|t| t.check(&value, &|_| true).pass)
}

/// The model's prediction for `listen(backlog)`, and whether the targets hold on it.
pub fn predict(w: &Workload, backlog: u32, targets: &[Expectation]) -> (Prediction, Summary, bool) {
    let p = model::simulate(w, w.limit(backlog));
    let s = summary(w, backlog, &p);
    let ok = holds(targets, &s);
    (p, s, ok)
}

/// The smallest backlog in `range` the model says meets every target (assuming more room never
/// hurts), or `None` when even the top of the range does not.
pub fn smallest(w: &Workload, targets: &[Expectation], range: (u32, u32)) -> Option<u32> {
    let (mut lo, mut hi) = range;
    if !predict(w, hi, targets).2 {
        return None;
    }
    if predict(w, lo, targets).2 {
        return Some(lo);
    }
    // lo fails, hi passes.
    while hi - lo > 1 {
        let mid = lo + (hi - lo) / 2;
        if predict(w, mid, targets).2 {
            hi = mid;
        } else {
            lo = mid;
        }
    }
    Some(hi)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::plan::RunPlan;

    fn workload(name: &str, sets: &[&str]) -> Workload {
        let sets: Vec<String> = sets.iter().map(|s| s.to_string()).collect();
        let combos = crate::scenario::load(Some(std::path::Path::new(name)), &sets).unwrap();
        let plan = RunPlan::from_scenario(&combos[0].loaded).unwrap();
        Workload::of(&plan, "6.18.0")
    }

    fn no_drops() -> Vec<Expectation> {
        vec![Expectation::parse_line("counters.server.TcpExt.ListenDrops == 0").unwrap()]
    }

    #[test]
    fn a_server_that_never_accepts_needs_n_minus_one() {
        let w = workload(
            "envoy-somaxconn-128",
            &[
                "server.accept=never",
                "client.arrival=constant",
                "client.rate=200",
                "client.connections=60",
                "server.sysctl.net.core.somaxconn=4096",
            ],
        );
        assert_eq!(smallest(&w, &no_drops(), (1, 65535)), Some(59));
        let p = model::simulate(&w, 58);
        assert_eq!(
            (p.accept_queue_peak, p.syn_drops_accept_full > 0),
            (59, true)
        );
    }

    #[test]
    fn node_511_drops_every_syn_beyond_the_queue_once() {
        let w = workload("node-backlog-511", &[]);
        let p = model::simulate(&w, 511);
        assert_eq!(p.accept_queue_peak, 512);
        assert_eq!(p.syn_drops_accept_full, 1500 - 512);
        assert_eq!(p.client_syn_retrans, 1500 - 512);
        let s = summary(&w, 511, &p);
        assert_eq!(s.outcomes[crate::record::outcome::Outcome::Ok], 1500);
        assert!(s.connect_latency_ms.p50.unwrap() >= 999.0);
        assert_eq!(smallest(&w, &no_drops(), (1, 65535)), Some(1499));
    }

    #[test]
    fn a_pause_needs_what_arrives_during_it() {
        // netty-backlog-50: 1,000/s, pauses of 300 ms (opened 2 ms early, closed 1 ms late).
        let w = workload("netty-backlog-50", &[]);
        let b = smallest(&w, &no_drops(), (1, 65535)).unwrap();
        assert!((300..=304).contains(&b), "{b}");
        let c = closed::of(&w, false);
        assert_eq!(c.fluid_backlog as u32, b);
    }
}
