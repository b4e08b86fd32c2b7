//! A plan's report (`report.md`, `report.html` of a `backlog-lab plan` folder), from `plan.json`
//! alone: the answer in one sentence, what may make it mislead, the sizing chart, what to set
//! where, the model beside the runs, the closed forms, and what the model assumed.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use super::document::{Block, Document};
use crate::record::sizing::{PlanPoint, PlanResult};
use crate::units::thousands;

fn num(v: Option<f64>) -> String {
    v.map_or("-".into(), |x| {
        if x.fract() == 0.0 {
            thousands(x.max(0.0) as u64)
        } else {
            format!("{x:.1}")
        }
    })
}

/// Where the backlog is set, for the servers our users run.
pub fn where_to_set(b: u32, syncookies_off: bool) -> Vec<String> {
    let mut v = vec![
        format!("The kernel: sysctl -w net.core.somaxconn={b} in the server's network namespace (or /etc/sysctl.d/). listen() is clamped to somaxconn silently, so both numbers are needed; ss -lnt shows the result as Send-Q."),
    ];
    if syncookies_off {
        v.push(format!(
            "With syncookies off, also net.ipv4.tcp_max_syn_backlog ≥ {}: a SYN from an unproven peer is dropped once 3/4 of it are waiting.",
            (u64::from(b) * 4).div_ceil(3)
        ));
    }
    v.extend([
        format!("nginx: listen 80 backlog={b}; (its default is 511)."),
        format!("Node: server.listen({{ port, backlog: {b} }}) (its default is 511)."),
        format!("Java: new ServerSocket(port, {b}); Netty: .option(ChannelOption.SO_BACKLOG, {b}) (Java's default is 50)."),
        format!("Envoy: tcp_backlog_size: {b} on the listener (it passes -1, i.e. somaxconn, by default)."),
        "Go: net.Listen reads somaxconn once, when the program starts: raise it, then restart the program.".into(),
        format!("Python: sock.listen({b}); socketserver has request_queue_size = {b} (its default is 5)."),
        format!("Kubernetes: securityContext.sysctls: [{{name: net.core.somaxconn, value: \"{b}\"}}] in the pod spec. somaxconn is per network namespace but counts as unsafe: the kubelet must allow it (--allowed-unsafe-sysctls=net.core.somaxconn)."),
    ]);
    v
}

fn model_vs_runs(r: &PlanResult) -> Vec<Vec<String>> {
    let mut by: BTreeMap<u32, Vec<&PlanPoint>> = BTreeMap::new();
    for p in &r.points {
        by.entry(p.backlog).or_default().push(p);
    }
    by.into_iter()
        .map(|(b, ps)| {
            let passed = ps.iter().filter(|p| p.passed).count();
            let range = |f: &dyn Fn(&PlanPoint) -> f64| {
                let lo = ps.iter().map(|p| f(p)).fold(f64::INFINITY, f64::min);
                let hi = ps.iter().map(|p| f(p)).fold(f64::NEG_INFINITY, f64::max);
                if lo == hi {
                    num(Some(lo))
                } else {
                    format!("{}–{}", num(Some(lo)), num(Some(hi)))
                }
            };
            let m = &ps[0].model;
            vec![
                b.to_string(),
                format!("{passed} of {}", ps.len()),
                if m.passed {
                    "PASS".into()
                } else {
                    "FAIL".into()
                },
                range(&|p| (p.listen_overflows + p.syn_drops) as f64),
                num(Some((m.listen_overflows + m.syn_drops) as f64)),
                range(&|p| f64::from(p.accept_queue_max_seen)),
                num(Some(f64::from(m.accept_queue_peak))),
                range(&|p| p.connect_p99_ms.unwrap_or(0.0)),
                num(m.connect_p99_ms),
            ]
        })
        .collect()
}

fn closed_lines(r: &PlanResult) -> Vec<String> {
    let c = &r.closed_forms;
    let mut v = vec![format!(
        "Arrivals: {}/s on average.",
        num(Some(c.arrival_rate.round()))
    )];
    match (c.accept_rate, c.load) {
        (Some(_), None) => v.push("Accepts: none (the server never accepts).".into()),
        (Some(mu), Some(rho)) => v.push(format!(
            "Accepts: {}/s; load ρ = {rho:.2}{}.",
            num(Some(mu.round())),
            if rho >= 1.0 {
                " (at or above 1: the queue grows whatever the backlog)"
            } else {
                ""
            }
        )),
        _ => v.push("Accepts: unbounded outside pauses (a fast server).".into()),
    }
    v.push(format!(
        "Fluid bound (arrivals − accepts over the worst window, no retries): the queue peaks at {}, so a backlog of {}.",
        thousands(c.fluid_peak),
        thousands(c.fluid_backlog)
    ));
    if let Some(k) = c.mm1k_backlog {
        v.push(format!("M/M/1/K (steady random load; exponential service errs high): a backlog of {} loses under half a connection over the storm.", thousands(k)));
    }
    if let Some(d) = c.useful_depth {
        v.push(format!("Useful depth: accepts/s × client.response_timeout = {}; deeper, a queued connection's client has given up before accept() returns it.", num(Some(d.round()))));
    }
    if let Some(l) = c.longest_pause_s {
        v.push(format!("Longest accept pause: {l} s."));
    }
    if c.syn_queue_need > 0.0 {
        v.push(format!("SYN queue: about {} SYNs arrive within one RTT (each holds a request socket for that long).", num(Some(c.syn_queue_need))));
    }
    v
}

/// The report of the plan in `dir`; `plots` are the files the chart was written to.
pub fn plan_document(r: &PlanResult, dir: &Path, plots: &[PathBuf]) -> Document {
    let mut doc = Document::new(format!("backlog-lab plan: {}", r.scenario));
    doc.para(r.answer.clone());
    if r.interrupted {
        doc.para("Stopped early by a signal: the answer is only as good as the runs that ended.");
    }
    if !r.warnings.is_empty() {
        doc.h2("Before you use the number");
        doc.list(r.warnings.clone());
    }
    if let Some(png) = plots
        .iter()
        .find(|p| p.extension().is_some_and(|e| e == "png"))
    {
        let rel = png.strip_prefix(dir).unwrap_or(png).to_path_buf();
        doc.figure(rel, "sizing", "The target's quantity against the backlog: the model's curve, each run, the target line and both answers (SVG: plots/sizing.svg)");
    }
    if let Some(b) = r.recommended_backlog.or(r.model_backlog) {
        doc.h2(format!("What to set where (backlog {b})"));
        doc.list(where_to_set(
            b,
            r.rules.iter().any(|l| l.starts_with("syncookies 0")),
        ));
    }
    doc.h2("The model against the runs");
    doc.para(format!(
        "Targets: {}. Each backlog ran {} time(s) and passes only if every run met every target.",
        r.targets.join("; "),
        r.repetitions
    ));
    if r.points.is_empty() {
        doc.para("No runs (--model-only): the model's answer alone.");
    } else {
        doc.table(
            &[
                "backlog",
                "runs passed",
                "model",
                "listen drops",
                "model's",
                "accept queue max",
                "model's peak",
                "connect p99 ms",
                "model's p99",
            ],
            model_vs_runs(r),
            &[0, 3, 4, 5, 6, 7, 8],
        );
    }
    doc.h2("Closed forms");
    doc.list(closed_lines(r));
    doc.h2("What the model assumed");
    doc.list(r.rules.clone());
    if !r.points.is_empty() {
        doc.h2("Each run's report");
        let mut seen = Vec::new();
        let links = r
            .points
            .iter()
            .filter(|p| {
                let new = !seen.contains(&p.dir);
                seen.push(p.dir.clone());
                new
            })
            .map(|p| {
                (
                    format!(
                        "backlog {} run {}{}",
                        p.backlog,
                        p.repetition,
                        if p.passed { "" } else { " (missed)" }
                    ),
                    PathBuf::from(&p.dir),
                )
            })
            .collect();
        doc.blocks.push(Block::Links(links));
    }
    doc
}
