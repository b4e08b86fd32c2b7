//! The content of `report.md` / `report.html`: the scenario and its incident, what happened (see
//! [`super::explain`]), the settings, the summary tables, the expectations and the plots. Built
//! from a [`RunFolder`] or a [`ComparisonFolder`] as read back from disk.

use std::path::{Path, PathBuf};

use super::document::{Block, Document};
use super::explain::explain;
use crate::record::percentiles::Percentiles;
use crate::record::summary::{Summary, KEY_COUNTERS};
use crate::record::Outcome;
use crate::results::rows::{comparison_rows, drop_table};
use crate::results::{ComparisonFolder, RunFolder};
use crate::units::{prose_ms as ms, signed, thousands};

/// What each plot file shows, for the figure captions: (file stem, caption).
pub const PLOT_CAPTIONS: &[(&str, &str)] = &[
    (
        "connect-latency-cdf",
        "Connect latency from each connection's scheduled start, one line per outcome; dashed \
         lines mark when clients retransmit an unanswered SYN.",
    ),
    (
        "outcomes-over-time",
        "How the connections ended, stacked per bin of scheduled start.",
    ),
    (
        "queue-occupancy",
        "Accept-queue length and SYN_RECV count over time against the capacities the kernel \
         enforces (backlog + 1); shaded where the accept queue was full.",
    ),
    (
        "counter-rates",
        "Key listen-queue counters per second, from the cumulative series in timeseries.csv.",
    ),
    (
        "comparison-outcome-shares",
        "How the connections ended, per combination.",
    ),
    (
        "comparison-latency-percentiles",
        "Connect and first-byte latency percentiles, per combination.",
    ),
];

fn figures(doc: &mut Document, dir: &Path, plots: &[PathBuf]) {
    for (stem, caption) in PLOT_CAPTIONS {
        let png = plots.iter().find(|p| {
            p.file_stem().is_some_and(|s| s == *stem) && p.extension().is_some_and(|e| e == "png")
        });
        if let Some(png) = png {
            let rel = png.strip_prefix(dir).unwrap_or(png).to_path_buf();
            doc.figure(
                rel,
                stem.replace('-', " "),
                format!("{caption} (SVG: plots/{stem}.svg)"),
            );
        }
    }
}

fn pcts_row(label: &str, p: &Percentiles) -> Vec<String> {
    let f = |v: Option<f64>| v.map_or("-".into(), ms);
    vec![
        label.to_string(),
        f(p.p50),
        f(p.p90),
        f(p.p99),
        f(p.max),
        thousands(p.count),
    ]
}

/// A number in a report cell: whole ones with separators (`2,000`), others with two decimals.
fn number(f: f64) -> String {
    if f.fract() == 0.0 && f.abs() < 1e15 {
        signed(f as i64)
    } else {
        format!("{f:.2}")
    }
}

/// An optional number; `-` when absent.
fn maybe(v: Option<f64>) -> String {
    v.map_or("-".into(), number)
}

/// The report of one run; `plots` are the files just written into `run.dir/plots/`.
pub fn run_document(run: &RunFolder, plots: &[PathBuf]) -> Document {
    let mut doc = Document::new(format!("backlog-lab report: {}", run.name()));
    introduction(&mut doc, run);
    doc.h2("What happened");
    doc.list(explain(run));
    verdicts(&mut doc, &run.summary);
    doc.h2("Plots");
    figures(&mut doc, &run.dir, plots);
    settings(&mut doc, run);
    doc.h2("Summary");
    if run.summary.has_connection_rows() {
        outcomes_and_latency(&mut doc, run);
    }
    listen_queue(&mut doc, &run.summary);
    counters(&mut doc, &run.summary);
    trace_events(&mut doc, &run.summary);
    doc.para(format!(
        "Data: connections.csv, timeseries.csv, counters.csv, drops.csv, summary.json, environment.json and \
         scenario.toml in {}. Re-render with `backlog-lab plot {}`.",
        run.dir.display(),
        run.dir.display()
    ));
    doc
}

/// The scenario's own words and where the run happened.
fn introduction(doc: &mut Document, run: &RunFolder) {
    if let Ok(p) = &run.plan {
        if !p.description.is_empty() {
            doc.para(p.description.clone());
        }
        if !p.incident.is_empty() && run.summary.overrides.is_empty() {
            doc.para(format!("Reproduces: {}", p.incident));
        } else if !p.incident.is_empty() {
            doc.para(format!(
                "Based on: {}. With its overrides ({}), this run is a variation of that \
                 reproduction, not the reproduction as written.",
                p.incident,
                run.summary.overrides.join(", ")
            ));
        }
    }
    if let Some(env) = &run.environment {
        let or = |s: &str, default: &str| if s.is_empty() { default } else { s }.to_string();
        doc.para(format!(
            "Run started {} on Linux {} with {}; scenario {}.",
            or(&env.started_at, "?"),
            or(&env.kernel_release, "?"),
            or(&env.tool, "backlog-lab"),
            or(&env.scenario, "?"),
        ));
    }
}

/// The warnings, then the verdict on each expectation.
fn verdicts(doc: &mut Document, s: &Summary) {
    if !s.warnings.is_empty() {
        doc.h2("Warnings");
        doc.list(s.warnings.iter().map(|w| w.to_string()).collect());
    }
    if !s.alerts.is_empty() {
        doc.h2("Alerts");
        doc.table(
            &["alert", "condition", "seen", "right side"],
            s.alerts
                .iter()
                .map(|a| {
                    vec![
                        a.alert_word().to_string(),
                        a.text.clone(),
                        maybe(a.value),
                        maybe(a.expected),
                    ]
                })
                .collect(),
            &[2, 3],
        );
    }
    if !s.expectations.is_empty() {
        doc.h2("Expectations");
        doc.table(
            &["result", "expectation", "seen", "right side"],
            s.expectations
                .iter()
                .map(|e| {
                    vec![
                        if e.pass { "PASS" } else { "FAIL" }.to_string(),
                        e.text.clone(),
                        maybe(e.value),
                        maybe(e.expected),
                    ]
                })
                .collect(),
            &[2, 3],
        );
    }
}

/// The knobs, and every sysctl as read back in each namespace (`-` where one side has none).
fn settings(doc: &mut Document, run: &RunFolder) {
    doc.h2("Settings");
    doc.table(
        &["setting", "value"],
        run.knobs().into_iter().map(|(k, v)| vec![k, v]).collect(),
        &[],
    );
    let sysctl = &run.summary.sysctl;
    if let (Some(server), Some(client)) = (sysctl.get("server"), sysctl.get("client")) {
        doc.h3("Effective sysctls (read back inside each namespace)");
        let keys: std::collections::BTreeSet<&String> =
            server.keys().chain(client.keys()).collect();
        let cell = |m: &std::collections::BTreeMap<String, String>, k: &str| {
            m.get(k).cloned().unwrap_or_else(|| "-".into())
        };
        doc.table(
            &["key", "server", "client"],
            keys.into_iter()
                .map(|k| vec![k.clone(), cell(server, k), cell(client, k)])
                .collect(),
            &[],
        );
    }
}

fn outcomes_and_latency(doc: &mut Document, run: &RunFolder) {
    let s = &run.summary;
    let total = run.total();
    doc.h3("Outcomes");
    doc.table(
        &["outcome", "connections", "share"],
        Outcome::ALL
            .iter()
            .map(|o| {
                let n = run.outcome_count(*o);
                vec![
                    o.name().to_string(),
                    thousands(n),
                    format!("{:.1}%", 100.0 * n as f64 / total.max(1) as f64),
                ]
            })
            .collect(),
        &[1, 2],
    );
    doc.h3("Latency");
    doc.table(
        &["latency", "p50", "p90", "p99", "max", "n"],
        vec![
            pcts_row("connect, from scheduled start", &s.connect_latency_ms),
            pcts_row("connect, from connect()", &s.connect_latency_from_start_ms),
            pcts_row(
                "first byte of ok, from scheduled start",
                &s.response_latency_ms,
            ),
            pcts_row("start lag behind schedule", &s.schedule.lag_ms),
        ],
        &[1, 2, 3, 4, 5],
    );
}

fn listen_queue(doc: &mut Document, s: &Summary) {
    doc.h3("Listen queue and schedule");
    let l = &s.listen;
    let sc = &s.schedule;
    let count = |v: Option<u32>| v.map_or("-".into(), |v| thousands(v.into()));
    doc.table(
        &["what", "value"],
        vec![
            vec![
                "listen() backlog".into(),
                signed(l.backlog_requested.into()),
            ],
            vec![
                "accept queue limit (ss Send-Q)".into(),
                count(l.accept_queue_limit),
            ],
            vec![
                "accept queue capacity (limit + 1)".into(),
                count(l.accept_queue_capacity),
            ],
            vec![
                "accept queue, most seen".into(),
                thousands(l.accept_queue_max_seen.into()),
            ],
            vec![
                "SYN_RECV, most seen".into(),
                thousands(l.syn_recv_max_seen.into()),
            ],
            vec!["planned rate (/s)".into(), maybe(sc.planned_rate)],
            vec!["achieved rate (/s)".into(), maybe(sc.achieved_rate)],
            vec![
                "most connections in flight".into(),
                thousands(sc.max_in_flight),
            ],
            vec![
                "server accepted / served".into(),
                format!(
                    "{} / {}",
                    thousands(s.server.accepted),
                    thousands(s.server.served)
                ),
            ],
        ],
        &[1],
    );
}

fn counters(doc: &mut Document, s: &Summary) {
    doc.h3("Key counters (change over the run)");
    let get = |ns: &str, k: &str| s.counters.get(ns).and_then(|c| c.get(k)).copied();
    let rows: Vec<Vec<String>> = KEY_COUNTERS
        .iter()
        .filter_map(|k| {
            let (sv, cv) = (get("server", k), get("client", k));
            (sv.is_some() || cv.is_some()).then(|| {
                vec![
                    k.to_string(),
                    signed(sv.unwrap_or(0)),
                    signed(cv.unwrap_or(0)),
                ]
            })
        })
        .collect();
    doc.table(&["counter", "server", "client"], rows, &[1, 2]);
    doc.para("Every counter of both namespaces, before and after, is in counters.csv.");
}

fn trace_events(doc: &mut Document, s: &Summary) {
    doc.h3("Where packets died (kernel trace events)");
    match drop_table(&s.drops) {
        Ok(rows) if rows.is_empty() => {
            doc.para("No drop, retransmission or reset event was traced.")
        }
        Ok(rows) => {
            doc.table(&["event", "side", "reason or state", "count"], rows, &[3]);
            doc.para(format!(
                "kfree_skb drops carry no address: they are every {} drop on the machine during \
                 the run. The tcp_* events are only those between the lab's hosts; drops.csv has \
                 each one, with its time and the connection it belongs to.",
                s.family_name()
            ));
        }
        Err(why) => doc.para(format!("Not recorded: {why}.")),
    }
    if let (true, Some(note)) = (s.drops.recorded, s.drops.left_out()) {
        doc.para(format!("{note}."));
    }
}

/// The report of a comparison folder; `plots` are its own comparison charts.
pub fn comparison_document(cmp: &ComparisonFolder, plots: &[PathBuf]) -> Document {
    let mut doc = Document::new(format!("backlog-lab comparison: {}", cmp.scenario));
    doc.para(format!(
        "{} runs of {}, one per combination of {}.",
        cmp.runs.len(),
        cmp.scenario,
        if cmp.axes.is_empty() {
            "settings".to_string()
        } else {
            cmp.axes.join(", ")
        }
    ));
    doc.h2("Per combination");
    // The rows of the terminal's table and comparison.csv, built once (`results::rows`).
    let runs: Vec<(&str, &Summary)> = cmp
        .runs
        .iter()
        .map(|r| (r.label.as_str(), &r.run.summary))
        .collect();
    let rows = comparison_rows(&runs);
    let header: Vec<String> = std::iter::once(String::new())
        .chain(runs.iter().map(|(l, _)| l.to_string()))
        .collect();
    let numeric: Vec<usize> = (1..header.len()).collect();
    let table = |rows: &[crate::results::rows::Row]| Block::Table {
        header: header.clone(),
        rows: rows
            .iter()
            .map(|(label, values)| {
                std::iter::once(label.clone())
                    .chain(values.iter().cloned())
                    .collect()
            })
            .collect(),
        numeric: numeric.clone(),
    };
    doc.blocks.push(table(&rows.main));
    if !rows.counters.is_empty() {
        doc.h3("Other counters that moved");
        doc.blocks.push(table(&rows.counters));
    }
    if !rows.traced.is_empty() {
        doc.h3("Kernel trace events");
        doc.para(
            "kfree_skb drops carry no address: they are every drop of the run's IP family on the \
             machine during each run. RSTs are the lab's own, by the reason the kernel gave.",
        );
        doc.blocks.push(table(&rows.traced));
    }
    doc.h3("Settings of each combination");
    doc.table(
        &["combination", "settings"],
        cmp.runs
            .iter()
            .map(|r| {
                vec![
                    r.label.clone(),
                    r.settings
                        .iter()
                        .map(|(k, v)| format!("{k}={v}"))
                        .collect::<Vec<_>>()
                        .join(", "),
                ]
            })
            .collect(),
        &[],
    );
    doc.h2("Plots");
    figures(&mut doc, &cmp.dir, plots);
    doc.h2("Each run's report");
    doc.blocks.push(Block::Links(
        cmp.runs
            .iter()
            .map(|r| {
                let rel = r
                    .run
                    .dir
                    .strip_prefix(&cmp.dir)
                    .unwrap_or(&r.run.dir)
                    .to_path_buf();
                (r.label.clone(), rel)
            })
            .collect(),
    ));
    doc
}
