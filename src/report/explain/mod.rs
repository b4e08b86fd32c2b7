//! "What happened": a few sentences computed from one run's data (counters, queue samples,
//! per-connection records). A sentence appears only when the data shows it; nothing is inferred
//! from what the scenario meant to reproduce.
//!
//! - [`queue`]: the accept queue's full spans, its overflows, the SYN queue;
//! - [`drops`]: what the kernel's trace events add (drop and RST reasons);
//! - [`clients`]: connect times against the SYN retransmission marks, failures, served latency.

mod clients;
mod drops;
mod queue;

use crate::record::Outcome;
use crate::results::RunFolder;
use crate::units::{prose_secs as secs, thousands};

/// `1 connection`, `2,397 connections`.
fn n_of(n: u64, noun: &str) -> String {
    format!("{} {noun}{}", thousands(n), if n == 1 { "" } else { "s" })
}

fn pct(n: u64, total: u64) -> String {
    format!("{:.1}%", 100.0 * n as f64 / total.max(1) as f64)
}

/// `a`, `a and b`, `a, b and c`.
fn join(items: &[String]) -> String {
    match items {
        [] => String::new(),
        [one] => one.clone(),
        [rest @ .., last] => format!("{} and {last}", rest.join(", ")),
    }
}

/// Listing at most `max` spans, then how many more.
fn spans_text(spans: &[(f64, f64)], max: usize) -> String {
    let mut parts: Vec<String> = spans
        .iter()
        .take(max)
        .map(|(a, b)| {
            if b > a {
                format!("from {} to {}", secs(*a), secs(*b))
            } else {
                format!("at {}", secs(*a))
            }
        })
        .collect();
    if spans.len() > max {
        parts.push(format!("{} more times", spans.len() - max));
    }
    join(&parts)
}

/// The sentences, in reading order.
pub fn explain(run: &RunFolder) -> Vec<String> {
    let mut out = vec![overview(run)];
    queue::accept_queue(run, &mut out);
    let overflows = run.counter("server", "TcpExt.ListenOverflows").max(0) as u64;
    let listen_drops = run.counter("server", "TcpExt.ListenDrops").max(0) as u64;
    queue::overflows(overflows, listen_drops, &mut out);
    let gave_up = run.outcome_count(Outcome::ConnectTimeout);
    drops::sentences(&run.summary, overflows, gave_up, &mut out);
    queue::syn_queue(run, &mut out);
    clients::connect_times(run, &mut out);
    clients::failures(run, &mut out);
    clients::served(run, &mut out);
    if let Some(t) = expectations(run) {
        out.push(t);
    }
    out
}

/// How many connections, over how long, how many were served, and at what rate they started.
fn overview(run: &RunFolder) -> String {
    let s = &run.summary;
    if let Some(w) = &s.watched {
        let n = s.listen.listeners.len().max(1);
        return format!(
            "Watched TCP port {} in {} for {}, read only: the lab started nothing there and \
             changed nothing; {} listening socket{} on the port. There are no connection rows: \
             what follows is the kernel's side.",
            w.port,
            w.namespace,
            secs(s.duration_s),
            n,
            if n == 1 { "" } else { "s" }
        );
    }
    if let Some(p) = &s.client_program {
        return format!(
            "The client was a program of your own, `{}`, which {} after {}: its own account of \
             the connections is in {}; the lab has no per-connection rows, and what follows is \
             the kernel's side. The server accepted {} connections.",
            p.command,
            p.exit,
            secs(s.duration_s),
            p.log,
            thousands(s.server.accepted)
        );
    }
    let total = run.total();
    let ok = run.outcome_count(Outcome::Ok);
    let mut first = format!(
        "{} connections were attempted over {}; {} ({}) got their response (ok).",
        thousands(total),
        secs(s.duration_s),
        thousands(ok),
        pct(ok, total)
    );
    if let (Some(a), Some(p)) = (s.schedule.achieved_rate, s.schedule.planned_rate) {
        first.push_str(&format!(
            " They started at {}/s for a schedule of {}/s.",
            thousands(a.round() as u64),
            thousands(p.round() as u64)
        ));
    }
    first
}

/// Whether the scenario's expectations held, and which did not.
fn expectations(run: &RunFolder) -> Option<String> {
    let exps = &run.summary.expectations;
    if exps.is_empty() {
        return None;
    }
    let failed: Vec<&str> = exps
        .iter()
        .filter(|e| !e.pass)
        .map(|e| e.text.as_str())
        .collect();
    Some(if failed.is_empty() {
        format!("All {} of the scenario's expectations held.", exps.len())
    } else {
        format!(
            "{} of {} expectations failed: {}.",
            failed.len(),
            exps.len(),
            failed.join("; ")
        )
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::record::ConnRecord;
    use crate::results::{RunFolder, TimeSeries};
    use serde_json::{json, Value};

    /// Edits a summary as JSON, as a hand-edited summary.json would be.
    fn edit(s: &mut crate::record::summary::Summary, f: impl FnOnce(&mut Value)) {
        let mut v = serde_json::to_value(&*s).unwrap();
        f(&mut v);
        *s = serde_json::from_value(v).unwrap();
    }

    fn conn(
        id: u64,
        started_us: u64,
        connected_after_us: Option<u64>,
        outcome: Outcome,
        retrans: u32,
    ) -> ConnRecord {
        ConnRecord {
            id,
            scheduled_us: started_us,
            started_us,
            connected_us: connected_after_us.map(|d| started_us + d),
            first_byte_us: None,
            finished_us: started_us + 3_000_000,
            outcome,
            errno: None,
            retransmits: retrans,
            local_port: None,
            bytes: 0,
        }
    }

    /// A small synthetic run: a queue of capacity 5, full from 0.2 s to 0.5 s, two clients that
    /// waited one SYN retransmission, one that waited two, and two that gave up.
    fn run() -> RunFolder {
        let t_s: Vec<f64> = (0..8).map(|i| i as f64 * 0.1).collect();
        let aq = [0., 2., 5., 5., 4., 5., 1., 0.].map(Some).to_vec();
        RunFolder {
            dir: "x".into(),
            connections: [
                conn(0, 0, Some(300), Outcome::Ok, 0),
                conn(1, 1000, Some(1_010_000), Outcome::Ok, 1),
                conn(2, 2000, Some(1_050_000), Outcome::ResponseTimeout, 1),
                conn(3, 3000, Some(2_020_000), Outcome::Ok, 2),
                conn(4, 4000, None, Outcome::ConnectTimeout, 2),
                conn(5, 5000, None, Outcome::ConnectTimeout, 2),
            ]
            .iter()
            .map(ConnRecord::brief)
            .collect(),
            series: TimeSeries {
                t_s,
                columns: vec![("accept_queue".into(), aq)],
            },
            summary: serde_json::from_value(json!({
                "scenario": "t", "connections": 6, "duration_s": 3.0,
                "outcomes": {"ok": 3, "connect_timeout": 2, "response_timeout": 1},
                "listen": {"accept_queue_limit": 4, "accept_queue_capacity": 5,
                           "accept_queue_max_seen": 5, "syn_recv_max_seen": 0},
                "counters": {"server": {"TcpExt.ListenOverflows": 9, "TcpExt.ListenDrops": 9},
                             "client": {"TcpExt.TCPSynRetrans": 8}},
                "response_latency_ms": {"p50": 1.5, "p99": 2100.0},
                "expectations": [{"text": "a > 1", "pass": true}, {"text": "b == 0", "pass": false}]
            }))
            .unwrap(),
            environment: None,
            plan: Err("none".into()),
        }
    }

    #[test]
    fn explanation_follows_the_data() {
        let text = explain(&run()).join("\n");
        assert!(
            text.contains("6 connections were attempted over 3.00 s; 3 (50.0%) got their response"),
            "{text}"
        );
        assert!(
            text.contains("The accept queue (capacity 5 = backlog 4 + 1) was full, at 4 or more in the samples (sampled every 100 ms), from 0.20 s to 0.50 s."),
            "{text}"
        );
        assert!(
            text.contains("9 times a SYN or a handshake's final ACK met the full accept queue"),
            "{text}"
        );
        assert!(
            text.contains("ListenDrops rose by the same number."),
            "{text}"
        );
        assert!(
            text.contains("Of the 4 connections that connected, 1 within 0.80 s of connect(), 2 about 1 s after (after 1 SYN retransmission) and 1 about 2 s after (after 2 SYN retransmissions)."),
            "{text}"
        );
        assert!(text.contains("2 connections never connected: connect() gave up after the client's connect timeout (connect_timeout), all of them after retransmitting their SYN 2 times."), "{text}");
        assert!(
            text.contains("1 connection completed the handshake"),
            "{text}"
        );
        assert!(
            text.contains("1 of 2 expectations failed: b == 0."),
            "{text}"
        );
        assert!(
            !text.contains("syncookie"),
            "no cookies in this run: {text}"
        );
        assert!(!text.contains("SYN-ACKs"), "{text}");
    }

    #[test]
    fn the_trace_splits_the_overflows_and_names_the_reset_reason() {
        let mut r = run();
        // 9 overflows = 2 final ACKs + 1 cookie ACK + 6 SYNs (4 retransmitted + the last of 2
        // connects that gave up).
        edit(&mut r.summary, |v| {
            v["drops"] = json!({
                "recorded": true,
                "by_reason": {"TCP_LISTEN_OVERFLOW": 2, "NO_SOCKET": 1},
                "by_function": {"cookie_v4_check": {"NO_SOCKET": 1}},
                "syn_retransmits": 4,
                "resets_sent": {"server": {"INVALID_SYN": 2}},
                "lost_events": 0
            })
        });
        edit(&mut r.summary, |v| {
            v["sysctl"] = json!({"server": {"net.ipv4.tcp_abort_on_overflow": "1"}});
            // The one cookie ACK dropped was this lab's: its server received a cookie.
            v["counters"]["server"]["TcpExt.SyncookiesRecv"] = json!(1);
        });
        let text = explain(&r).join("\n");
        assert!(text.contains("Of the 9 accept-queue overflows, 2 were handshakes' final ACKs (TCP_LISTEN_OVERFLOW) and 1 syncookie ACKs whose new socket could not be queued"), "{text}");
        assert!(
            text.contains(
                "4 retransmitted plus the last SYNs of the 2 connects that gave up make exactly 6"
            ),
            "{text}"
        );
        assert!(
            text.contains("INVALID_SYN is what Linux calls the reset of tcp_abort_on_overflow"),
            "{text}"
        );

        // The same counts with another lab beside this one: no split, because kfree_skb counts
        // carry no address and so are not this lab's alone.
        edit(&mut r.summary, |v| v["drops"]["other_labs"] = json!([1]));
        let text = explain(&r).join("\n");
        assert!(!text.contains("accept-queue overflows, "), "{text}");
        assert!(!r.summary.trace_doubts().is_empty());

        edit(&mut r.summary, |v| {
            v["drops"] = json!({"recorded": false, "unavailable": "no tracefs"})
        });
        let text = explain(&r).join("\n");
        assert!(
            text.contains("Drop reasons were not recorded: no tracefs."),
            "{text}"
        );
    }

    #[test]
    fn a_quiet_run_says_the_queue_never_filled() {
        let mut r = run();
        r.series.columns[0].1 = vec![Some(1.0); 8];
        edit(&mut r.summary, |v| {
            v["counters"] = json!({});
            v["listen"]["accept_queue_max_seen"] = json!(1);
        });
        let text = explain(&r).join("\n");
        assert!(
            text.contains("The accept queue never filled: at most 1 of its capacity 5"),
            "{text}"
        );
        assert!(
            text.contains("TcpExt.ListenOverflows did not move"),
            "{text}"
        );
    }
}
