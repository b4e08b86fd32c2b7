//! Tables computed from results, built once and shared by every view of them: the rows of a
//! comparison (terminal table and `comparison.csv`) and the trace-event rows of a run (terminal
//! and report).

use crate::record::drops::{machine_reason, DropStats};
use crate::record::summary::{Summary, KEY_COUNTERS};
use crate::record::Outcome;
use crate::units::{cell_ms as ms, thousands};

/// The rows of a comparison, shared by the terminal table and `comparison.csv`: a metric name
/// and one value per run. Outcomes and counters appear if they are non-zero in any run.
pub fn comparison_rows(runs: &[(&str, &Summary)]) -> Vec<(String, Vec<String>)> {
    let mut rows = vec![(
        "connections".to_string(),
        runs.iter()
            .map(|(_, s)| s.connections.to_string())
            .collect(),
    )];
    for o in Outcome::ALL {
        let counts: Vec<u64> = runs.iter().map(|(_, s)| s.outcomes[o]).collect();
        if o == Outcome::Ok || counts.iter().any(|&n| n > 0) {
            rows.push((
                o.name().to_string(),
                counts.iter().map(u64::to_string).collect(),
            ));
        }
    }
    let pct = |label: &str, get: &dyn Fn(&Summary) -> Option<f64>| {
        (
            label.to_string(),
            runs.iter().map(|(_, s)| ms(get(s))).collect::<Vec<_>>(),
        )
    };
    rows.push(pct("connect ms p50", &|s| {
        s.connect_latency_from_start_ms.p50
    }));
    rows.push(pct("connect ms p99", &|s| {
        s.connect_latency_from_start_ms.p99
    }));
    rows.push(pct("connect ms max", &|s| {
        s.connect_latency_from_start_ms.max
    }));
    let ok_first_byte = |s: &Summary| s.by_outcome.get("ok").map(|t| t.first_byte_ms.clone());
    rows.push(pct("ok: first byte ms p50", &|s| {
        ok_first_byte(s).and_then(|p| p.p50)
    }));
    rows.push(pct("ok: first byte ms p99", &|s| {
        ok_first_byte(s).and_then(|p| p.p99)
    }));
    for ns in ["server", "client"] {
        for k in KEY_COUNTERS {
            let values: Vec<i64> = runs
                .iter()
                .map(|(_, s)| {
                    s.counters
                        .get(ns)
                        .and_then(|c| c.get(*k))
                        .copied()
                        .unwrap_or(0)
                })
                .collect();
            if values.iter().any(|&v| v != 0) {
                rows.push((
                    format!("{ns} {k}"),
                    values.iter().map(i64::to_string).collect(),
                ));
            }
        }
    }
    // Where packets died (tracefs): every drop reason (side None) and RST reason seen in any run.
    let mut traced: std::collections::BTreeSet<(Option<String>, String)> = Default::default();
    for (_, s) in runs {
        let c = &s.drops.counts;
        traced.extend(c.by_reason.keys().map(|r| (None, r.clone())));
        for (side, reasons) in &c.resets_sent {
            traced.extend(reasons.keys().map(|r| (Some(side.clone()), r.clone())));
        }
    }
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
    rows.push((
        "expectations held".to_string(),
        runs.iter()
            .map(|(_, s)| {
                let passed = s.expectations.iter().filter(|e| e.pass).count();
                format!("{passed}/{}", s.expectations.len())
            })
            .collect(),
    ));
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
