//! The content of `report.md` / `report.html`: the scenario and its incident, what happened (see
//! [`super::explain`]), the settings, the summary tables, the expectations and the plots. Built
//! from a [`RunFolder`] or a [`ComparisonFolder`] as read back from disk.

use std::path::{Path, PathBuf};

use serde_json::Value;

use super::document::{Block, Document};
use super::explain::{explain, ms};
use super::KEY_COUNTERS;
use crate::plots::thousands;
use crate::record::Outcome;
use crate::results::{ComparisonFolder, RunFolder};

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

fn pcts_row(label: &str, p: &Value) -> Vec<String> {
    let f = |k: &str| p[k].as_f64().map_or("-".into(), ms);
    vec![
        label.to_string(),
        f("p50"),
        f("p90"),
        f("p99"),
        f("max"),
        thousands(p["count"].as_u64().unwrap_or(0)),
    ]
}

/// `-1`, `27,115`.
fn signed(i: i64) -> String {
    if i < 0 {
        format!("-{}", thousands(i.unsigned_abs()))
    } else {
        thousands(i as u64)
    }
}

fn text(v: &Value) -> String {
    match v {
        Value::String(s) => s.clone(),
        Value::Null => "-".into(),
        Value::Number(n) => match (n.as_i64(), n.as_f64()) {
            (Some(i), _) => signed(i),
            (None, Some(f)) if f.fract() == 0.0 && f.abs() < 1e15 => signed(f as i64),
            (None, Some(f)) => format!("{f:.2}"),
            _ => n.to_string(),
        },
        other => other.to_string(),
    }
}

/// The report of one run; `plots` are the files just written into `run.dir/plots/`.
pub fn run_document(run: &RunFolder, plots: &[PathBuf]) -> Document {
    let s = &run.summary;
    let mut doc = Document::new(format!("backlog-lab report: {}", run.name()));
    if let Ok(p) = &run.plan {
        if !p.description.is_empty() {
            doc.para(p.description.clone());
        }
        if !p.incident.is_empty() {
            doc.para(format!("Reproduces: {}", p.incident));
        }
    }
    if let Some(env) = &run.environment {
        doc.para(format!(
            "Run started {} on Linux {} with {}; scenario {}.",
            env["started_at"].as_str().unwrap_or("?"),
            env["kernel_release"].as_str().unwrap_or("?"),
            env["tool"].as_str().unwrap_or("backlog-lab"),
            env["scenario"].as_str().unwrap_or("?"),
        ));
    }

    doc.h2("What happened");
    doc.list(explain(run));

    if let Some(w) = s["warnings"].as_array().filter(|w| !w.is_empty()) {
        doc.h2("Warnings");
        doc.list(w.iter().map(text).collect());
    }

    if let Some(exps) = s["expectations"].as_array().filter(|e| !e.is_empty()) {
        doc.h2("Expectations");
        doc.table(
            &["result", "expectation", "seen", "right side"],
            exps.iter()
                .map(|e| {
                    vec![
                        if e["pass"] == true { "PASS" } else { "FAIL" }.to_string(),
                        text(&e["text"]),
                        text(&e["value"]),
                        text(&e["expected"]),
                    ]
                })
                .collect(),
            &[2, 3],
        );
    }

    doc.h2("Plots");
    figures(&mut doc, &run.dir, plots);

    doc.h2("Settings");
    doc.table(
        &["setting", "value"],
        run.knobs().into_iter().map(|(k, v)| vec![k, v]).collect(),
        &[],
    );
    let sysctl = &s["sysctl"];
    if let (Some(server), Some(client)) =
        (sysctl["server"].as_object(), sysctl["client"].as_object())
    {
        doc.h3("Effective sysctls (read back inside each namespace)");
        let mut keys: Vec<&String> = server.keys().chain(client.keys()).collect();
        keys.sort();
        keys.dedup();
        doc.table(
            &["key", "server", "client"],
            keys.into_iter()
                .map(|k| {
                    vec![
                        k.clone(),
                        text(&server[k.as_str()]),
                        text(&client[k.as_str()]),
                    ]
                })
                .collect(),
            &[],
        );
    }

    doc.h2("Summary");
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
            pcts_row("connect, from scheduled start", &s["connect_latency_ms"]),
            pcts_row(
                "connect, from connect()",
                &s["connect_latency_from_start_ms"],
            ),
            pcts_row(
                "first byte of ok, from scheduled start",
                &s["response_latency_ms"],
            ),
            pcts_row("start lag behind schedule", &s["schedule"]["lag_ms"]),
        ],
        &[1, 2, 3, 4, 5],
    );
    doc.h3("Listen queue and schedule");
    let l = &s["listen"];
    let sc = &s["schedule"];
    doc.table(
        &["what", "value"],
        vec![
            vec!["listen() backlog".into(), text(&l["backlog_requested"])],
            vec![
                "accept queue limit (ss Send-Q)".into(),
                text(&l["accept_queue_limit"]),
            ],
            vec![
                "accept queue capacity (limit + 1)".into(),
                text(&l["accept_queue_capacity"]),
            ],
            vec![
                "accept queue, most seen".into(),
                text(&l["accept_queue_max_seen"]),
            ],
            vec!["SYN_RECV, most seen".into(), text(&l["syn_recv_max_seen"])],
            vec!["planned rate (/s)".into(), text(&sc["planned_rate"])],
            vec!["achieved rate (/s)".into(), text(&sc["achieved_rate"])],
            vec![
                "most connections in flight".into(),
                text(&sc["max_in_flight"]),
            ],
            vec![
                "server accepted / served".into(),
                format!(
                    "{} / {}",
                    text(&s["server"]["accepted"]),
                    text(&s["server"]["served"])
                ),
            ],
        ],
        &[1],
    );
    doc.h3("Key counters (change over the run)");
    let rows: Vec<Vec<String>> = KEY_COUNTERS
        .iter()
        .filter_map(|k| {
            let sv = s["counters"]["server"][*k].as_i64();
            let cv = s["counters"]["client"][*k].as_i64();
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

    doc.h3("Where packets died (kernel trace events)");
    match drop_table(s) {
        Ok(rows) if rows.is_empty() => {
            doc.para("No drop, retransmission or reset event was traced.")
        }
        Ok(rows) => {
            doc.table(&["event", "side", "reason or state", "count"], rows, &[3]);
            doc.para(
                "kfree_skb drops carry no address: they are every IPv4 drop on the machine during \
                 the run. The tcp_* events are only those between the lab's hosts; drops.csv has \
                 each one, with its time and the connection it belongs to.",
            );
        }
        Err(why) => doc.para(format!("Not recorded: {why}.")),
    }

    doc.para(format!(
        "Data: connections.csv, timeseries.csv, counters.csv, drops.csv, summary.json, environment.json and \
         scenario.toml in {}. Re-render with `backlog-lab plot {}`.",
        run.dir.display(),
        run.dir.display()
    ));
    doc
}

/// `summary.json → drops` as rows of (event, side, reason or state, count), or why it is
/// missing. Shared by the terminal table and the report.
pub fn drop_table(s: &Value) -> Result<Vec<Vec<String>>, String> {
    let d = &s["drops"];
    if d["recorded"] != true {
        return Err(d["unavailable"]
            .as_str()
            .unwrap_or("this run predates drop tracing")
            .to_string());
    }
    let mut rows = Vec::new();
    let mut row = |event: &str, side: &str, what: &str, n: &Value| {
        if n.as_u64().unwrap_or(0) > 0 {
            rows.push(vec![event.into(), side.into(), what.into(), text(n)]);
        }
    };
    for (reason, n) in d["by_reason"].as_object().into_iter().flatten() {
        row("kfree_skb", "", reason, n);
    }
    row(
        "tcp_retransmit_synack",
        "server",
        "",
        &d["synack_retransmits"],
    );
    row(
        "tcp_retransmit_skb",
        "client",
        "TCP_SYN_SENT",
        &d["syn_retransmits"],
    );
    row(
        "tcp_retransmit_skb",
        "",
        "other states",
        &d["other_retransmits"],
    );
    for (side, reasons) in d["resets_sent"].as_object().into_iter().flatten() {
        for (reason, n) in reasons.as_object().into_iter().flatten() {
            row("tcp_send_reset", side, reason, n);
        }
    }
    for side in ["server", "client"] {
        row("tcp_receive_reset", side, "", &d["resets_received"][side]);
    }
    if d["lost_events"].as_u64().unwrap_or(0) > 0 {
        row("(lost in the trace buffer)", "", "", &d["lost_events"]);
    }
    Ok(rows)
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
    let present: Vec<Outcome> = Outcome::ALL
        .into_iter()
        .filter(|o| cmp.runs.iter().any(|r| r.run.outcome_count(*o) > 0))
        .collect();
    let mut header: Vec<String> = vec!["combination".into(), "connections".into()];
    header.extend(present.iter().map(|o| o.name().to_string()));
    header.extend(
        [
            "connect p50",
            "connect p99",
            "first byte p99",
            "ListenOverflows",
            "expectations",
        ]
        .map(String::from),
    );
    let rows = cmp
        .runs
        .iter()
        .map(|r| {
            let run = &r.run;
            let total = run.total();
            let mut row = vec![r.label.clone(), thousands(total)];
            row.extend(present.iter().map(|o| {
                format!(
                    "{:.1}%",
                    100.0 * run.outcome_count(*o) as f64 / total.max(1) as f64
                )
            }));
            let p = |f: &str, k: &str| run.summary[f][k].as_f64().map_or("-".into(), ms);
            row.push(p("connect_latency_ms", "p50"));
            row.push(p("connect_latency_ms", "p99"));
            row.push(p("response_latency_ms", "p99"));
            row.push(thousands(
                run.counter("server", "TcpExt.ListenOverflows").max(0) as u64,
            ));
            let exps = run.summary["expectations"]
                .as_array()
                .cloned()
                .unwrap_or_default();
            let passed = exps.iter().filter(|e| e["pass"] == true).count();
            row.push(format!("{passed}/{} held", exps.len()));
            row
        })
        .collect();
    let numeric: Vec<usize> = (1..header.len() - 1).collect();
    doc.blocks.push(Block::Table {
        header,
        rows,
        numeric,
    });
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
