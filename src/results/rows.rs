//! Tables computed from results, built once and shared by every view of them: the rows of a
//! comparison (terminal table and `comparison.csv`) and the trace-event rows of a run (terminal
//! and report).

use crate::record::drops::{machine_reason, DropStats};
use crate::record::summary::{Summary, KEY_COUNTERS};
use crate::record::Outcome;
use crate::units::{cell_ms as ms, thousands};

/// One row of a comparison: what it measures, and one value per run.
pub type Row = (String, Vec<String>);

/// A comparison's rows, built once and shared by the terminal table, `report.md` and
/// `comparison.csv`, so the three never disagree. Labels say what a latency is measured from.
pub struct ComparisonRows {
    /// What backlogs are sized by: outcomes, the queues, latencies, the overflow counters, the
    /// expectations (about 25 rows).
    pub main: Vec<Row>,
    /// The other key counters that moved in any run (report and CSV; the terminal points there).
    pub counters: Vec<Row>,
    /// Kernel trace events: drop reasons (machine-wide kfree_skb) and RSTs by reason.
    pub traced: Vec<Row>,
}

impl ComparisonRows {
    /// Every row, in the order the CSV has them.
    pub fn all(&self) -> impl Iterator<Item = &Row> {
        self.main.iter().chain(&self.counters).chain(&self.traced)
    }
}

/// Counters in the main table: what says which queue overflowed, and what clients waited for.
const MAIN_COUNTERS: &[(&str, &str)] = &[
    ("server", "TcpExt.ListenOverflows"),
    ("server", "TcpExt.ListenDrops"),
    ("server", "TcpExt.TCPReqQFullDrop"),
    ("server", "TcpExt.TCPReqQFullDoCookies"),
    ("server", "TcpExt.SyncookiesRecv"),
    ("server", "TcpExt.EmbryonicRsts"),
    ("server", "TcpExt.TCPSynRetrans"),
    ("client", "TcpExt.TCPSynRetrans"),
];

/// The rows of a comparison of `runs` (label, summary).
pub fn comparison_rows(runs: &[(&str, &Summary)]) -> ComparisonRows {
    let each = |f: &dyn Fn(&Summary) -> String| runs.iter().map(|(_, s)| f(s)).collect::<Vec<_>>();
    let mut main: Vec<Row> = vec![("connections".into(), each(&|s| s.connections.to_string()))];
    for o in Outcome::ALL {
        let counts = each(&|s| s.outcomes[o].to_string());
        if o == Outcome::Ok || counts.iter().any(|n| n != "0") {
            main.push((o.name().to_string(), counts));
        }
    }
    let opt = |v: Option<u32>| v.map_or("-".into(), |v| v.to_string());
    main.push((
        "accept queue limit (after somaxconn)".into(),
        each(&|s| opt(s.listen.accept_queue_limit)),
    ));
    main.push((
        "accept queue max seen".into(),
        each(&|s| s.listen.accept_queue_max_seen.to_string()),
    ));
    main.push((
        "SYN-RECV max seen".into(),
        each(&|s| s.listen.syn_recv_max_seen.to_string()),
    ));
    let from_schedule = |p: &dyn Fn(&Summary) -> Option<f64>| each(&|s| ms(p(s)));
    for (label, get) in [
        (
            "connect ms p50, from scheduled start",
            (|s: &Summary| s.connect_latency_ms.p50) as fn(&Summary) -> Option<f64>,
        ),
        ("connect ms p99, from scheduled start", |s| {
            s.connect_latency_ms.p99
        }),
        ("connect ms max, from scheduled start", |s| {
            s.connect_latency_ms.max
        }),
        ("ok: first byte ms p50, from scheduled start", |s| {
            s.response_latency_ms.p50
        }),
        ("ok: first byte ms p99, from scheduled start", |s| {
            s.response_latency_ms.p99
        }),
    ] {
        main.push((label.into(), from_schedule(&get)));
    }
    let counter = |ns: &str, k: &str| -> Vec<i64> {
        runs.iter()
            .map(|(_, s)| {
                s.counters
                    .get(ns)
                    .and_then(|c| c.get(k))
                    .copied()
                    .unwrap_or(0)
            })
            .collect()
    };
    let mut counters = Vec::new();
    for ns in ["server", "client"] {
        for k in KEY_COUNTERS {
            let values = counter(ns, k);
            let row = (
                format!("{ns} {k}"),
                values.iter().map(i64::to_string).collect(),
            );
            if MAIN_COUNTERS.contains(&(ns, k)) {
                main.push(row);
            } else if values.iter().any(|&v| v != 0) {
                counters.push(row);
            }
        }
    }
    main.push((
        "expectations held".to_string(),
        each(&|s| {
            let passed = s.expectations.iter().filter(|e| e.pass).count();
            format!("{passed}/{}", s.expectations.len())
        }),
    ));
    ComparisonRows {
        main,
        counters,
        traced: traced_rows(runs),
    }
}

/// Every drop reason (side `None`) and RST reason seen in any run.
fn traced_rows(runs: &[(&str, &Summary)]) -> Vec<Row> {
    let mut traced: std::collections::BTreeSet<(Option<String>, String)> = Default::default();
    for (_, s) in runs {
        let c = &s.drops.counts;
        traced.extend(c.by_reason.keys().map(|r| (None, r.clone())));
        for (side, reasons) in &c.resets_sent {
            traced.extend(reasons.keys().map(|r| (Some(side.clone()), r.clone())));
        }
    }
    let mut rows = Vec::new();
    for (side, reason) in traced {
        let values = runs.iter().map(|(_, s)| {
            let c = &s.drops.counts;
            let n = match &side {
                None => c.by_reason.get(&reason),
                Some(side) => c.resets_sent.get(side).and_then(|r| r.get(&reason)),
            };
            match (s.drops.recorded, n) {
                (false, _) => "-".to_string(),
                (true, n) => n.copied().unwrap_or(0).to_string(),
            }
        });
        let label = match &side {
            None if machine_reason(&reason).is_some() => format!("drop {reason} (machine)"),
            None => format!("drop {reason}"),
            Some(side) => format!("{side} RST {reason}"),
        };
        rows.push((label, values.collect()));
    }
    rows
}

/// `summary.json → drops` as rows of (event, side, reason or state, count), or why it is
/// missing. Shared by the terminal table and the report.
pub fn drop_table(d: &DropStats) -> Result<Vec<Vec<String>>, String> {
    if !d.recorded {
        return Err(d
            .unavailable
            .clone()
            .unwrap_or_else(|| "this run predates drop tracing".to_string()));
    }
    let mut rows = Vec::new();
    let mut row = |event: &str, side: &str, what: &str, n: u64| {
        if n > 0 {
            rows.push(vec![event.into(), side.into(), what.into(), thousands(n)]);
        }
    };
    let c = &d.counts;
    for (reason, n) in &c.by_reason {
        // Side "machine": the host's own limits, not the listen queue's.
        let side = if machine_reason(reason).is_some() {
            "machine"
        } else {
            ""
        };
        row("kfree_skb", side, reason, *n);
    }
    row("tcp_retransmit_synack", "server", "", c.synack_retransmits);
    row(
        "tcp_retransmit_skb",
        "client",
        "TCP_SYN_SENT",
        c.syn_retransmits,
    );
    row(
        "tcp_retransmit_skb",
        "",
        "other states",
        c.other_retransmits,
    );
    for (side, reasons) in &c.resets_sent {
        for (reason, n) in reasons {
            row("tcp_send_reset", side, reason, *n);
        }
    }
    row("tcp_receive_reset", "server", "", c.resets_received.server);
    row("tcp_receive_reset", "client", "", c.resets_received.client);
    row("(lost in the trace buffer)", "", "", d.lost_events);
    Ok(rows)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A drop reason that is the host's limit (a full CPU input queue) is on the machine's side
    /// of the table, and the summary warns about it; a listen-queue reason is not.
    #[test]
    fn machine_drops_are_named_as_the_machines() {
        let mut d = DropStats {
            recorded: true,
            ..Default::default()
        };
        d.counts.by_reason.insert("CPU_BACKLOG".into(), 7);
        d.counts.by_reason.insert("TCP_LISTEN_OVERFLOW".into(), 3);
        let rows = drop_table(&d).unwrap();
        let side = |reason: &str| {
            rows.iter()
                .find(|r| r[2] == reason)
                .map(|r| r[1].clone())
                .unwrap()
        };
        assert_eq!(side("CPU_BACKLOG"), "machine");
        assert_eq!(side("TCP_LISTEN_OVERFLOW"), "");
        assert_eq!(
            d.counts.machine_drops(),
            vec![("CPU_BACKLOG".to_string(), 7)]
        );
        let w = crate::record::Warning::MachineDrops {
            reasons: d.counts.machine_drops(),
        }
        .to_string();
        assert!(
            w.contains("7 CPU_BACKLOG") && w.contains("netdev_max_backlog"),
            "{w}"
        );
    }
}
