//! What the terminal shows once a run ends: the summary table and the verdict, one line per run
//! of a comparison, and a comparison's side-by-side table. Everything printed here is also in
//! `summary.json`; the live progress line is [`progress`].

pub mod progress;

use std::collections::BTreeMap;
use std::io::Write;
use std::path::Path;

use crate::plan::RunPlan;
use crate::record::glossary;
use crate::record::percentiles::Percentiles;
use crate::record::summary::{Summary, KEY_COUNTERS};
use crate::results::rows::{comparison_rows, drop_table};
use crate::units::cell_ms as ms;

/// The key counters of one namespace that moved, one per line, under a heading.
pub fn counter_table(ns: &str, counters: &BTreeMap<String, i64>) -> String {
    let mut out = format!(
        "\n  {ns} counters that moved ({} in all, see counters.csv)\n",
        counters.len()
    );
    for k in KEY_COUNTERS {
        if let Some(v) = counters.get(*k) {
            let gloss = glossary::gloss(k).map_or(String::new(), |g| format!("  {g}"));
            out.push_str(&format!("    {k:<30} {v:>9}{gloss}\n"));
        }
    }
    out
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
    header(&mut out, plan, s);
    // A client of the user's own leaves no per-connection rows to count or time.
    if s.has_connection_rows() {
        outcomes(&mut out, s);
        latency(&mut out, s);
    }
    link_and_flood(&mut out, s);
    for (ns, counters) in &s.counters {
        out.push_str(&counter_table(ns, counters));
    }
    trace_events(&mut out, s);
    verdict(&mut out, s, dir);
    w.write_all(out.as_bytes())
}

/// The scenario, the listen queue's limit and what the storm did.
fn header(out: &mut String, plan: &RunPlan, s: &Summary) {
    let l = &s.listen;
    out.push_str(&format!("\n{}  ({})\n", s.title(), plan.origin));
    if !plan.description.is_empty() {
        out.push_str(&format!("  {}\n", plan.description));
    }
    if !plan.incident.is_empty() {
        // With overrides, the run is a variation of the incident, not its reproduction.
        let how = if s.overrides.is_empty() {
            "reproduces"
        } else {
            "based on"
        };
        out.push_str(&format!("  {how}: {}\n", plan.incident));
    }
    out.push_str(&format!(
        "  listen(backlog={}) -> accept queue limit {} (holds {}), max seen {}, SYN-RECV max seen {}\n",
        l.backlog_requested,
        l.accept_queue_limit.map_or("?".into(), |v| v.to_string()),
        l.accept_queue_capacity.map_or("?".into(), |v| v.to_string()),
        l.accept_queue_max_seen,
        l.syn_recv_max_seen
    ));
    if let Some(p) = &s.server.program {
        out.push_str(&format!(
            "  server: {} ({}; its own backlog)\n",
            p.command, p.exit
        ));
    }
    if !l.listeners.is_empty() {
        let limits: Vec<String> = l.listeners.iter().map(|v| v.to_string()).collect();
        out.push_str(&format!(
            "  {} listening sockets on the port (SO_REUSEPORT), limits {}; the figures above are the largest limit and the fullest socket\n",
            l.listeners.len(),
            limits.join(", ")
        ));
    }
    if let Some(p) = &s.client_program {
        out.push_str(&format!(
            "  client: {} ({} after {:.1} s; its own account in {}); server accepted {}, served {}\n",
            p.command, p.exit, s.duration_s, p.log, s.server.accepted, s.server.served
        ));
        return;
    }
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
}

/// Each outcome that happened (and `ok` always), with its share.
fn outcomes(out: &mut String, s: &Summary) {
    out.push_str("\n  outcome                        count      share\n");
    for (o, n) in s.outcomes.iter() {
        let name = o.name();
        if n > 0 || name == "ok" {
            let share = if s.connections > 0 {
                100.0 * n as f64 / s.connections as f64
            } else {
                0.0
            };
            out.push_str(&format!("  {name:<28} {n:>7} {share:>9.1}%\n"));
        }
    }
}

/// Connect and first-byte latency percentiles, then each outcome's own clocks.
fn latency(out: &mut String, s: &Summary) {
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
}

/// What the delay line and the SYN flood did, when there were any.
fn link_and_flood(out: &mut String, s: &Summary) {
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
}

/// The kernel's trace events, or why there are none.
fn trace_events(out: &mut String, s: &Summary) {
    match drop_table(&s.drops) {
        Ok(rows) if !rows.is_empty() => {
            out.push_str("\n  kernel trace events (drops.csv)\n");
            for r in rows {
                let what = [&r[0], &r[1], &r[2]]
                    .iter()
                    .filter(|x| !x.is_empty())
                    .map(|x| x.as_str())
                    .collect::<Vec<_>>()
                    .join(" ");
                let gloss = glossary::gloss(&r[2]).map_or(String::new(), |g| format!("  {g}"));
                out.push_str(&format!("    {what:<50} {:>10}{gloss}\n", r[3]));
            }
            if let Some(note) = s.drops.left_out() {
                out.push_str(&format!("    ({note})\n"));
            }
        }
        Err(why) => out.push_str(&format!("\n  drop reasons: not recorded ({why})\n")),
        _ => {
            if let Some(note) = s.drops.left_out() {
                out.push_str(&format!("\n  kernel trace events: none ({note})\n"));
            }
        }
    }
}

/// Warnings, each expectation's verdict, and where the results are.
fn verdict(out: &mut String, s: &Summary, dir: &Path) {
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
    let verdict = if s.expectations.is_empty() {
        "no expectations"
    } else if s.expectations.iter().all(|e| e.pass) {
        "all expectations hold"
    } else {
        "EXPECTATIONS FAILED"
    };
    // An interrupted run is judged on what it did before it stopped: say so first.
    let partial = if s.interrupted {
        "PARTIAL (interrupted): "
    } else {
        ""
    };
    // The report is what to open next (it is drawn after the data; a drawing failure warns).
    let report = dir.join(crate::results::files::REPORT_HTML);
    let open = if report.exists() {
        format!(" (open {})", report.display())
    } else {
        String::new()
    };
    out.push_str(&format!(
        "\n  {partial}{verdict}; results in {}{open}\n",
        dir.display()
    ));
}

/// `ok 812  connect_timeout 100  ...  expectations 3/3 held` for one run.
pub fn one_line(s: &Summary) -> String {
    let mut line = String::new();
    for (o, n) in s.outcomes.iter() {
        let name = o.name();
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

/// The side-by-side table of a comparison: one column per run.
pub fn comparison_table(name: &str, runs: &[(&str, &Summary)]) -> String {
    let rows = comparison_rows(runs);
    let first = rows.all().map(|(l, _)| l.len()).max().unwrap_or(10).max(10);
    let widths: Vec<usize> = runs.iter().map(|(l, _)| l.len().max(9)).collect();
    let mut out = format!(
        "\n{name}: {} runs, same storm and seed\n\n  {:<first$}",
        runs.len(),
        ""
    );
    for ((label, _), w) in runs.iter().zip(&widths) {
        out.push_str(&format!("  {label:>w$}"));
    }
    out.push('\n');
    let mut section = |title: Option<&str>, rows: &[crate::results::rows::Row]| {
        if let Some(t) = title.filter(|_| !rows.is_empty()) {
            out.push_str(&format!("\n  {t}\n"));
        }
        for (label, values) in rows {
            out.push_str(&format!("  {label:<first$}"));
            for (v, w) in values.iter().zip(&widths) {
                out.push_str(&format!("  {v:>w$}"));
            }
            out.push('\n');
        }
    };
    section(None, &rows.main);
    section(
        Some("kernel trace events (kfree_skb drops are machine-wide; RSTs by reason)"),
        &rows.traced,
    );
    if !rows.counters.is_empty() {
        out.push_str(&format!(
            "\n  {} more counters moved: report.md and comparison.csv have them\n",
            rows.counters.len()
        ));
    }
    out
}
