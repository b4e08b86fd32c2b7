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
    out.push_str(&format!(
        "  client retransmissions: {} on {} connections\n",
        s.retransmits.total, s.retransmits.connections_with_retransmits
    ));

    for (ns, counters) in &s.counters {
        out.push_str(&counter_table(ns, counters));
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
