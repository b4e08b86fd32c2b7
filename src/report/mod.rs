//! What the terminal shows: a progress line while the storm runs, then the summary table and
//! the verdict. Everything printed here is also in `summary.json`.
//!
//! The reports written into a result folder (`report.md`, `report.html`) live in the submodules:
//! [`sections`] builds one [`document::Document`], which [`markdown`] and [`html`] write out.

pub mod document;
pub mod explain;
pub mod html;
pub mod markdown;
pub mod sections;

use std::collections::BTreeMap;
use std::io::Write;
use std::path::Path;
use std::sync::atomic::Ordering;
use std::sync::Arc;

use indicatif::{ProgressBar, ProgressDrawTarget, ProgressStyle};

use crate::client::Progress;
use crate::plan::RunPlan;
use crate::record::summary::{Percentiles, Summary};
use crate::record::Outcome;

/// Counters shown in the table when they moved (all of them are in `counters.csv`).
pub const KEY_COUNTERS: &[&str] = &[
    "TcpExt.ListenOverflows",
    "TcpExt.ListenDrops",
    "TcpExt.TCPReqQFullDrop",
    "TcpExt.TCPReqQFullDoCookies",
    "TcpExt.SyncookiesSent",
    "TcpExt.SyncookiesRecv",
    "TcpExt.SyncookiesFailed",
    "TcpExt.EmbryonicRsts",
    "TcpExt.TCPSynRetrans",
    "TcpExt.TCPTimeouts",
    "TcpExt.TCPBacklogDrop",
    "TcpExt.TCPAbortOnData",
    "Tcp.ActiveOpens",
    "Tcp.PassiveOpens",
    "Tcp.AttemptFails",
    "Tcp.EstabResets",
    "Tcp.OutRsts",
    "Tcp.RetransSegs",
];

/// The key counters of one namespace that moved, one per line, under a heading.
pub fn counter_table(ns: &str, counters: &BTreeMap<String, i64>) -> String {
    let mut out = format!(
        "\n  {ns} counters that moved ({} in all, see counters.csv)\n",
        counters.len()
    );
    for k in KEY_COUNTERS {
        if let Some(v) = counters.get(*k) {
            out.push_str(&format!("    {k:<30} {v:>9}\n"));
        }
    }
    out
}

/// The progress line: connections finished out of planned, elapsed time, outcomes so far.
pub struct Bar {
    pb: ProgressBar,
    progress: Arc<Progress>,
}

pub fn progress_bar(progress: Arc<Progress>, hidden: bool) -> Bar {
    let pb = if hidden {
        ProgressBar::hidden()
    } else {
        let pb = ProgressBar::with_draw_target(
            Some(progress.planned),
            ProgressDrawTarget::stderr_with_hz(10),
        );
        pb.set_style(
            ProgressStyle::with_template("{elapsed:>4} [{bar:25}] {pos}/{len} done  {msg}")
                .expect("valid template")
                .progress_chars("=> "),
        );
        pb
    };
    Bar { pb, progress }
}

impl Bar {
    pub fn tick(&self) {
        let p = &self.progress;
        self.pb.set_position(p.finished.load(Ordering::Relaxed));
        let finished = p.finished.load(Ordering::Relaxed);
        let mut msg = format!(
            "in flight {}",
            p.started.load(Ordering::Relaxed).saturating_sub(finished)
        );
        for o in Outcome::ALL {
            let n = p.outcome(o);
            if n > 0 {
                msg.push_str(&format!("  {} {n}", o.name()));
            }
        }
        self.pb.set_message(msg);
    }
    pub fn finish(&self) {
        self.tick();
        self.pb.finish_and_clear();
    }
}

fn ms(v: Option<f64>) -> String {
    v.map_or("-".into(), |v| {
        if v >= 100.0 {
            format!("{v:.0}")
        } else {
            format!("{v:.2}")
        }
    })
}

fn pct_row(label: &str, p: &Percentiles) -> String {
    format!(
        "  {label:<28} {:>9} {:>9} {:>9} {:>9}  (n={})",
        ms(p.p50),
        ms(p.p90),
        ms(p.p99),
        ms(p.max),
        p.count
    )
}

/// Prints the summary table and the verdict.
pub fn print(w: &mut impl Write, plan: &RunPlan, s: &Summary, dir: &Path) -> std::io::Result<()> {
    let mut out = String::new();
    let l = &s.listen;
    out.push_str(&format!("\n{}  ({})\n", plan.name, plan.origin));
    if !plan.description.is_empty() {
        out.push_str(&format!("  {}\n", plan.description));
    }
    if !plan.incident.is_empty() {
        out.push_str(&format!("  reproduces: {}\n", plan.incident));
    }
    out.push_str(&format!(
        "  listen(backlog={}) -> accept queue limit {} (holds {}), max seen {}, SYN-RECV max seen {}\n",
        l.backlog_requested,
        l.accept_queue_limit.map_or("?".into(), |v| v.to_string()),
        l.accept_queue_capacity.map_or("?".into(), |v| v.to_string()),
        l.accept_queue_max_seen,
        l.syn_recv_max_seen
    ));
    let rate = s
        .schedule
        .achieved_rate
        .map_or("-".into(), |r| format!("{r:.0}/s"));
    let planned = s
        .schedule
        .planned_rate
        .map_or("-".into(), |r| format!("{r:.0}/s"));
    out.push_str(&format!(
        "  {} connections in {:.1} s; started at {rate} (schedule {planned}); server accepted {}, served {}\n",
        s.connections, s.duration_s, s.server.accepted, s.server.served
    ));

    out.push_str("\n  outcome                        count      share\n");
    for (name, n) in &s.outcomes {
        let n = n.as_u64().unwrap_or(0);
        if n > 0 || name == "ok" {
            let share = if s.connections > 0 {
                100.0 * n as f64 / s.connections as f64
            } else {
                0.0
            };
            out.push_str(&format!("  {name:<28} {n:>7} {share:>9.1}%\n"));
        }
    }

    out.push_str(&format!(
        "\n  {:<28} {:>9} {:>9} {:>9} {:>9}\n",
        "latency (ms)", "p50", "p90", "p99", "max"
    ));
    out.push_str(&pct_row("connect (from schedule)", &s.connect_latency_ms));
    out.push('\n');
    out.push_str(&pct_row(
        "connect (from connect())",
        &s.connect_latency_from_start_ms,
    ));
    out.push('\n');
    out.push_str(&pct_row(
        "first byte, ok (schedule)",
        &s.response_latency_ms,
    ));
    out.push('\n');
    let failed: Vec<_> = s.by_outcome.iter().filter(|(_, t)| t.count > 0).collect();
    if !failed.is_empty() {
        out.push_str(&format!(
            "\n  {:<28} {:>9} {:>9} {:>9} {:>9} {:>9} {:>9}\n",
            "per outcome (ms)", "conn p50", "conn p99", "1st p50", "1st p99", "end p50", "end p99"
        ));
        for (name, t) in failed {
            out.push_str(&format!(
                "  {name:<28} {:>9} {:>9} {:>9} {:>9} {:>9} {:>9}\n",
                ms(t.connect_ms.p50),
                ms(t.connect_ms.p99),
                ms(t.first_byte_ms.p50),
                ms(t.first_byte_ms.p99),
                ms(t.total_ms.p50),
                ms(t.total_ms.p99)
            ));
        }
        out.push_str(
            "  (conn: connect() to established; 1st: established to first byte; end: connect() to the end)\n",
        );
    }
    out.push_str(&format!(
        "  client retransmissions: {} on {} connections\n",
        s.retransmits.total, s.retransmits.connections_with_retransmits
    ));
    if let Some(l) = &s.link {
        out.push_str(&format!(
            "  link: rtt {} ms, jitter {} ms, loss {}/{} (to server/client); {} + {} packets, {} + {} \
             lost on purpose, {} ring drops; delay-line lateness p99 {} us\n",
            l.rtt_ms,
            l.jitter_ms,
            l.loss_to_server,
            l.loss_to_client,
            l.to_server.packets,
            l.to_client.packets,
            l.to_server.lost,
            l.to_client.lost,
            l.ring_drops,
            l.lateness_us_p99
        ));
    }
    if let Some(f) = &s.flood {
        out.push_str(&format!(
            "  SYN flood: {} spoofed SYNs sent at {:.0}/s ({} refused)\n",
            f.sent, f.achieved_rate, f.errors
        ));
    }

    for (ns, counters) in &s.counters {
        out.push_str(&counter_table(ns, counters));
    }
    match serde_json::to_value(s).map(|v| sections::drop_table(&v)) {
        Ok(Ok(rows)) if !rows.is_empty() => {
            out.push_str("\n  kernel trace events (drops.csv)\n");
            for r in rows {
                let what = [&r[0], &r[1], &r[2]]
                    .iter()
                    .filter(|x| !x.is_empty())
                    .map(|x| x.as_str())
                    .collect::<Vec<_>>()
                    .join(" ");
                out.push_str(&format!("    {what:<50} {:>10}\n", r[3]));
            }
        }
        Ok(Err(why)) => out.push_str(&format!("\n  drop reasons: not recorded ({why})\n")),
        _ => {}
    }

    for w in &s.warnings {
        out.push_str(&format!("\n  warning: {w}\n"));
    }
    if !s.expectations.is_empty() {
        out.push_str("\n  expectations\n");
        for e in &s.expectations {
            let seen = e.value.map_or("missing".into(), |v| format!("{v}"));
            let exp = e
                .expected
                .map_or(String::new(), |v| format!(" (right side {v})"));
            out.push_str(&format!(
                "    {}  {}   [seen {seen}{exp}]\n",
                if e.pass { "PASS" } else { "FAIL" },
                e.text
            ));
        }
    }
    let verdict = if s.expectations.iter().all(|e| e.pass) {
        "all expectations hold"
    } else {
        "EXPECTATIONS FAILED"
    };
    out.push_str(&format!("\n  {verdict}; results in {}\n", dir.display()));
    w.write_all(out.as_bytes())
}

/// `ok 812  connect_timeout 100  ...  expectations 3/3 held` for one run.
pub fn one_line(s: &Summary) -> String {
    let mut line = String::new();
    for (name, n) in &s.outcomes {
        let n = n.as_u64().unwrap_or(0);
        if n > 0 {
            line.push_str(&format!("{name} {n}  "));
        }
    }
    let passed = s.expectations.iter().filter(|e| e.pass).count();
    line.push_str(&format!(
        "expectations {passed}/{} held",
        s.expectations.len()
    ));
    line
}

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
        let counts: Vec<u64> = runs
            .iter()
            .map(|(_, s)| {
                s.outcomes
                    .get(o.name())
                    .and_then(|v| v.as_u64())
                    .unwrap_or(0)
            })
            .collect();
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

/// The side-by-side table of a comparison: one column per run.
pub fn comparison_table(name: &str, runs: &[(&str, &Summary)]) -> String {
    let rows = comparison_rows(runs);
    let first = rows
        .iter()
        .map(|(l, _)| l.len())
        .max()
        .unwrap_or(10)
        .max(10);
    let widths: Vec<usize> = runs.iter().map(|(l, _)| l.len().max(9)).collect();
    let mut out = format!(
        "
{name}: {} runs, same storm and seed

  {:<first$}",
        runs.len(),
        ""
    );
    for ((label, _), w) in runs.iter().zip(&widths) {
        out.push_str(&format!("  {label:>w$}"));
    }
    out.push('\n');
    for (label, values) in rows {
        out.push_str(&format!("  {label:<first$}"));
        for (v, w) in values.iter().zip(&widths) {
            out.push_str(&format!("  {v:>w$}"));
        }
        out.push('\n');
    }
    out
}
