//! The planner's answer in words and numbers: what the model assumed (its rules), the model's
//! prediction per backlog in the shape `plan.json` keeps, a run's point beside it, the warnings a
//! reader needs before trusting the number, and the one-sentence answer.

use std::collections::BTreeMap;

use super::workload::{Acceptor, Workload, SECOND};
use crate::plan::queues::{syn_queue_holds_one_more, Side};
use crate::plan::sizing::DEFAULT_TARGET;
use crate::plan::{Arrival, RunPlan};
use crate::record::sizing::{ClosedForms, ModelPoint, PlanPoint, PlanResult};
use crate::record::summary::Summary;
use crate::results::settings::{describe_accept, describe_arrival};
use crate::scenario::expect::Expectation;
use crate::units::thousands;

/// The left side of each target as `s` has it, by target text.
pub fn values(targets: &[Expectation], s: &Summary) -> BTreeMap<String, Option<f64>> {
    let json = serde_json::to_value(s).expect("a summary serializes");
    targets
        .iter()
        .map(|t| (t.text.clone(), t.check(&json, &|_| true).value))
        .collect()
}

fn outcomes(s: &Summary) -> BTreeMap<String, u64> {
    s.outcomes
        .iter()
        .filter(|(_, n)| *n > 0)
        .map(|(o, n)| (o.name().to_string(), n))
        .collect()
}

fn drops(s: &Summary) -> (i64, i64) {
    let overflows = s.counter("server", "TcpExt.ListenOverflows");
    let drops = s.counter("server", "TcpExt.ListenDrops");
    (overflows, (drops - overflows).max(0))
}

/// The model's point for `backlog`, judged against `targets` (the ones it predicts).
pub fn model_point(w: &Workload, backlog: u32, targets: &[Expectation]) -> ModelPoint {
    let (p, s, passed) = super::predict(w, backlog, targets);
    let (listen_overflows, syn_drops) = drops(&s);
    ModelPoint {
        backlog,
        passed,
        values: values(targets, &s),
        listen_overflows,
        syn_drops,
        accept_queue_peak: p.accept_queue_peak,
        syn_queue_peak: p.syn_queue_peak,
        connect_p50_ms: s.connect_latency_ms.p50,
        connect_p99_ms: s.connect_latency_ms.p99,
        outcomes: outcomes(&s),
    }
}

/// One run's point: what it measured, whether every target held, and the model beside it.
pub fn run_point(
    backlog: u32,
    repetition: u32,
    dir: String,
    s: &Summary,
    targets: &[Expectation],
    model: ModelPoint,
) -> PlanPoint {
    let (listen_overflows, syn_drops) = drops(s);
    PlanPoint {
        backlog,
        limit: s.listen.accept_queue_limit,
        repetition,
        passed: !s.expectations.is_empty() && s.expectations.iter().all(|e| e.pass),
        dir,
        values: values(targets, s),
        listen_overflows,
        syn_drops,
        accept_queue_max_seen: s.listen.accept_queue_max_seen,
        connect_p50_ms: s.connect_latency_ms.p50,
        connect_p99_ms: s.connect_latency_ms.p99,
        outcomes: outcomes(s),
        partial: s.interrupted,
        shortened_to_s: None,
        model,
    }
}

/// What the model assumed, one line each.
pub fn rules(plan: &RunPlan, w: &Workload, release: &str) -> Vec<String> {
    let server = |k| plan.sysctl_value(Side::Server, k).0;
    let secs = |v: &[u64]| {
        let l: Vec<String> = v
            .iter()
            .map(|t| format!("{}", *t as f64 / SECOND as f64))
            .collect();
        if l.is_empty() {
            "none".to_string()
        } else {
            format!("{} s", l.join(", "))
        }
    };
    let one_more = syn_queue_holds_one_more(release);
    let mut r = vec![
        format!(
            "kernel {}: the accept queue holds backlog + 1; the SYN queue holds {} ({})",
            if release.is_empty() { "unknown" } else { release },
            if one_more { "backlog + 1" } else { "backlog" },
            if one_more { "6.14 and later" } else { "before 6.14" }
        ),
        match w.somaxconn_pinned {
            Some(v) => format!("net.core.somaxconn is pinned at {v} by the scenario: it clamps every backlog above it"),
            None => "net.core.somaxconn is raised with each backlog tried (listen() is clamped to it silently)".into(),
        },
        match w.syncookies {
            0 => format!(
                "syncookies 0: a SYN beyond the SYN queue is dropped, and with tcp_max_syn_backlog {} one from an unproven peer is dropped once {} request sockets wait (the 3/4 rule)",
                w.max_syn_backlog,
                w.max_syn_backlog - w.max_syn_backlog / 4
            ),
            2 => "syncookies 2: every SYN is answered with a cookie; no request sockets".into(),
            _ => "syncookies 1: a cookie only when the SYN queue is full".into(),
        },
        format!(
            "a SYN dropped at a full accept queue is retransmitted at {} after connect() (tcp_syn_linear_timeouts {}); connect() gives up at {} s (client.connect_timeout) or {} s (tcp_syn_retries {}), whichever is first",
            secs(&w.syn_retries_ns),
            plan.sysctl_value(Side::Client, "net.ipv4.tcp_syn_linear_timeouts").0,
            w.connect_timeout_ns as f64 / SECOND as f64,
            w.syn_give_up_ns as f64 / SECOND as f64,
            plan.sysctl_value(Side::Client, "net.ipv4.tcp_syn_retries").0,
        ),
        if w.abort_on_overflow {
            "tcp_abort_on_overflow 1: a final ACK that meets a full accept queue resets the handshake (the client sees a reset after connecting)".into()
        } else {
            format!(
                "a final ACK that meets a full accept queue is retried when the server retransmits its SYN-ACK ({}, tcp_synack_retries {}){}",
                secs(&w.synack_retries_ns),
                server("net.ipv4.tcp_synack_retries"),
                if w.client_first { " and when the client retransmits its request" } else { "" }
            )
        },
        format!(
            "the workload: {} connections, {} (the storm's own schedule, seed {}); server {}; RTT {} ms",
            thousands(w.starts.len() as u64),
            describe_arrival(&plan.client.arrival),
            plan.client.seed,
            describe_accept(&plan.server.accept),
            plan.link.rtt.as_secs_f64() * 1000.0
        ),
    ];
    let mut left_out = vec![
        "the time the lab's own server takes per accept (taken as zero)",
        "the machine's scheduling delays",
    ];
    if plan.link.loss_to_client > 0.0 || plan.link.loss_to_server > 0.0 {
        left_out.push("the link's loss");
    }
    if !plan.link.jitter.is_zero() {
        left_out.push("the link's jitter");
    }
    if plan.flood.is_some() {
        left_out.push("the SYN flood");
    }
    r.push(format!("left out: {}", left_out.join(", ")));
    r
}

/// Why the model's answer is what it is, in a few words: what fills the queue.
pub fn why(w: &Workload, plan: &RunPlan, c: &ClosedForms, peak: u32) -> String {
    let n = thousands(w.starts.len() as u64);
    let peak = thousands(u64::from(peak));
    let rate = |r: f64| thousands(r.round() as u64);
    let arrivals = match plan.client.arrival {
        Arrival::Burst {
            size,
            interval: None,
        } => format!("a burst of {} connects", thousands(size)),
        Arrival::Burst {
            size,
            interval: Some(i),
        } => {
            format!(
                "bursts of {} connects every {} s",
                thousands(size),
                i.as_secs_f64()
            )
        }
        _ => format!("{n} connects at {}/s", rate(c.arrival_rate)),
    };
    match &w.acceptor {
        Acceptor::Never => {
            format!("{arrivals} that are never accepted: the queue holds all {peak}")
        }
        Acceptor::Pause { .. } => format!(
            "{arrivals}, {peak} of them during the longest accept pause ({} s)",
            (c.longest_pause_s.unwrap_or(0.0) * 1000.0).round() / 1000.0
        ),
        Acceptor::Fast => format!("{arrivals} into a fast server: the queue peaks at {peak}"),
        Acceptor::Rate { .. } | Acceptor::Workers { .. } => format!(
            "{arrivals} against {} accepts/s: the queue peaks at {peak}",
            rate(c.accept_rate.unwrap_or(0.0))
        ),
    }
}

/// Whether the model's and the runs' answers agree: within 10 %, or 2 below 20.
pub fn agree(model: u32, runs: u32) -> bool {
    let diff = model.abs_diff(runs);
    if runs < 20 {
        diff <= 2
    } else {
        f64::from(diff) <= 0.1 * f64::from(runs)
    }
}

/// The warnings of a plan: the ceilings past which no backlog helps, and any disagreement
/// between the model and the runs or between repetitions of one backlog.
pub fn warnings(plan: &RunPlan, w: &Workload, r: &PlanResult) -> Vec<String> {
    let c = &r.closed_forms;
    let mut out = Vec::new();
    let sustained = !matches!(plan.client.arrival, Arrival::Burst { interval: None, .. });
    if let Some(mu) = c.accept_rate {
        let rho = c.load.unwrap_or(f64::INFINITY);
        if mu == 0.0 {
            out.push(
                "the server never accepts: every connection stays queued, and the backlog only decides how many are held before SYNs are dropped".into(),
            );
        } else if rho >= 1.0 && sustained {
            out.push(format!(
                "the load is above what the server accepts (ρ = {rho:.2}: {}/s against {}/s): once full, the queue overflows by {}/s whatever the backlog. This storm needs what it needs only because it lasts {:.1} s; a longer one needs more. The fix is the accept rate, not the backlog",
                thousands(c.arrival_rate.round() as u64),
                thousands(mu.round() as u64),
                thousands((c.arrival_rate - mu).max(0.0).round() as u64),
                w.starts.last().copied().unwrap_or(0) as f64 / SECOND as f64
            ));
        }
    }
    let answer = r.recommended_backlog.or(r.model_backlog);
    if let (Some(b), Some(depth)) = (answer, c.useful_depth) {
        if f64::from(b) > depth {
            out.push(format!(
                "a backlog of {b} is deeper than the server accepts within the client's response timeout ({}/s × {} s = {}): the connections at the back of such a queue are accepted after their clients gave up. The backlog hides the problem; the fix is the accept rate",
                thousands(c.accept_rate.unwrap_or(0.0).round() as u64),
                w.response_timeout_ns as f64 / SECOND as f64,
                thousands(depth.round() as u64)
            ));
        }
    }
    if let Some(l) = c.longest_pause_s {
        if l * SECOND as f64 > w.response_timeout_ns as f64 {
            out.push(format!(
                "the longest pause ({l} s) is longer than the client's response timeout ({} s): connections queued at its start time out whatever the backlog",
                w.response_timeout_ns as f64 / SECOND as f64
            ));
        }
    }
    if let Some(b) = answer {
        let holds = w.limit(b) + u32::from(w.syn_queue_one_more);
        if c.syn_queue_need >= f64::from(holds) {
            out.push(format!(
                "the SYN queue needs room too: about {} SYNs arrive within one RTT, and at backlog {b} it holds {holds}{}",
                c.syn_queue_need,
                if w.syncookies == 0 { " (syncookies 0: the rest are dropped)" } else { " (the rest get cookies)" }
            ));
        }
    }
    if let (Some(pinned), None) = (w.somaxconn_pinned, answer) {
        let free = Workload {
            somaxconn_pinned: None,
            ..w.clone()
        };
        let targets: Vec<Expectation> = r
            .targets
            .iter()
            .filter_map(|t| Expectation::parse_line(t).ok())
            .collect();
        let targets = super::predicted(&targets);
        let range = (r.range[0], r.range[1]);
        let needed = super::smallest(&free, &targets, range);
        out.push(match needed {
            Some(n) => format!(
                "net.core.somaxconn is pinned at {pinned} by the scenario and clamps every backlog to it; the model needs {n}: raise it too (--set server.sysctl.net.core.somaxconn={n}, or remove the key so the planner raises it with the backlog)"
            ),
            None => format!(
                "net.core.somaxconn is pinned at {pinned} by the scenario and clamps every backlog to it; even without that clamp the model finds no backlog in the range"
            ),
        });
    }
    if let (Some(m), Some(b)) = (r.model_backlog, r.recommended_backlog) {
        if !agree(m, b) {
            out.push(format!(
                "the model said {m} and the runs found {b}: more than 10 % apart, so something the model leaves out matters here (see its rules); trust the runs"
            ));
        }
    }
    let mut by_backlog: BTreeMap<u32, (u32, u32)> = BTreeMap::new();
    for p in &r.points {
        let e = by_backlog.entry(p.backlog).or_default();
        e.0 += u32::from(p.passed);
        e.1 += 1;
    }
    for (b, (passed, runs)) in by_backlog {
        if passed > 0 && passed < runs {
            out.push(format!(
                "listen({b}) met the target in {passed} of {runs} runs: it is at the edge of what this machine's timing allows; more --repetitions make the answer surer"
            ));
        }
    }
    out
}

/// The answer in one sentence.
pub fn sentence(r: &PlanResult, why: &str) -> String {
    let what = if r.targets == [DEFAULT_TARGET] {
        "no listen drop".to_string()
    } else {
        "every target held".to_string()
    };
    let somaxconn = |b: u32| match r.somaxconn {
        Some(s) if s < b => format!("net.core.somaxconn = {s} (pinned: it clamps the backlog)"),
        _ => format!("net.core.somaxconn ≥ {b}"),
    };
    let model = match r.model_backlog {
        Some(m) => format!("the model said {m} ({why})"),
        None => "the model has no answer in the range".into(),
    };
    if r.model_only {
        return match r.model_backlog {
            Some(m) => format!("The model says listen(…, {m}) with {} ({why}); not yet proved by runs (--model-only)", somaxconn(m)),
            None => format!("The model finds no backlog in [{}, {}] that meets the target ({why})", r.range[0], r.range[1]),
        };
    }
    let runs_at = |b: u32| {
        r.points
            .iter()
            .filter(|p| p.backlog == b)
            .collect::<Vec<_>>()
    };
    if r.interrupted {
        let done = r.points.iter().filter(|p| !p.partial).count();
        return match r.recommended_backlog {
            Some(b) => format!(
                "Stopped early by a signal after {done} complete runs: listen(…, {b}) met the target in every run, but a smaller backlog may too; {model}"
            ),
            None => format!(
                "Stopped early by a signal after {done} complete runs, before any backlog met the target in every run; {model}"
            ),
        };
    }
    match r.recommended_backlog {
        Some(b) => {
            let n = runs_at(b).len();
            let below = r
                .points
                .iter()
                .filter(|p| p.backlog < b)
                .map(|p| p.backlog)
                .max()
                .map(|lo| {
                    let at = runs_at(lo);
                    let failed = at.iter().filter(|p| !p.passed).count();
                    format!("; {lo} failed it in {failed} of {}", at.len())
                })
                .unwrap_or_else(|| "; it is the bottom of the range".into());
            format!(
                "listen(…, {b}) with {}: {what} in {n} of {n} runs{below}; {model}",
                somaxconn(b)
            )
        }
        None => {
            let best = r
                .points
                .iter()
                .map(|p| p.backlog)
                .max()
                .unwrap_or(r.range[1]);
            let at = runs_at(best);
            let failed = at.iter().filter(|p| !p.passed).count();
            format!(
                "No backlog in [{}, {}] met the target: the largest tried, {best}, failed in {failed} of {} runs; {model}",
                r.range[0], r.range[1], at.len()
            )
        }
    }
}
