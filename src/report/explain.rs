//! "What happened": a few sentences computed from one run's data (counters, queue samples,
//! per-connection records). A sentence appears only when the data shows it; nothing is inferred
//! from what the scenario meant to reproduce.

use crate::plots::thousands;
use crate::record::Outcome;
use crate::results::analysis::{bridge_s, full_threshold, near_marks, spans_at_or_above};
use crate::results::RunFolder;

/// Seconds for prose: `0.08 s`, `3.1 s`, `12 s`.
pub fn secs(s: f64) -> String {
    if s < 10.0 {
        format!("{s:.2} s")
    } else {
        format!("{s:.0} s")
    }
}

/// Milliseconds for prose: `0.36 ms`, `131 ms`, `2.06 s`.
pub fn ms(v: f64) -> String {
    if v >= 1000.0 {
        format!("{:.2} s", v / 1000.0)
    } else if v >= 10.0 {
        format!("{v:.0} ms")
    } else {
        format!("{v:.2} ms")
    }
}

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

/// What the kernel's trace events add to the counters: which packets died and why.
fn explain_drops(s: &serde_json::Value, overflows: u64, gave_up: u64, out: &mut Vec<String>) {
    let d = &s["drops"];
    if d["recorded"] != true {
        if let Some(why) = d["unavailable"].as_str() {
            out.push(format!("Drop reasons were not recorded: {why}."));
        }
        return;
    }
    let reason = |r: &str| d["by_reason"][r].as_u64().unwrap_or(0);
    let mut reasons: Vec<(u64, String)> = d["by_reason"]
        .as_object()
        .into_iter()
        .flatten()
        .map(|(r, n)| (n.as_u64().unwrap_or(0), r.clone()))
        .collect();
    reasons.sort_by(|a, b| b.cmp(a));
    if !reasons.is_empty() {
        let list: Vec<String> = reasons
            .iter()
            .take(5)
            .map(|(n, r)| format!("{} {r}", thousands(*n)))
            .collect();
        out.push(format!(
            "The kernel's drop reasons (skb:kfree_skb, every IPv4 drop on the machine during the \
             run): {}.",
            join(&list)
        ));
    }
    let listen = reason("TCP_LISTEN_OVERFLOW");
    let cookie = d["by_function"]["cookie_v4_check"]["NO_SOCKET"]
        .as_u64()
        .unwrap_or(0);
    // The drop counts are machine-wide: split the lab's overflows only where they fit.
    if overflows > 0 && listen + cookie > 0 && listen + cookie <= overflows {
        let mut parts = Vec::new();
        if listen > 0 {
            parts.push(format!(
                "{} were handshakes' final ACKs (TCP_LISTEN_OVERFLOW)",
                thousands(listen)
            ));
        }
        if cookie > 0 {
            parts.push(format!(
                "{} syncookie ACKs whose new socket could not be queued (NO_SOCKET in \
                 cookie_v4_check)",
                thousands(cookie)
            ));
        }
        let mut t = format!(
            "Of the {} accept-queue overflows, {}",
            thousands(overflows),
            join(&parts)
        );
        let rest = overflows - listen - cookie;
        let syn_retrans = d["syn_retransmits"].as_u64().unwrap_or(0);
        if rest > 0 {
            t.push_str(&format!(
                "; the other {} were SYNs, which the kernel discards without a drop reason (it \
                 consumes them), so only ListenOverflows and the clients' SYN retransmissions ({} \
                 traced) show them",
                thousands(rest),
                thousands(syn_retrans)
            ));
            // Every dropped SYN was either retransmitted or the last of a connect that gave up.
            if rest == syn_retrans + gave_up && gave_up > 0 {
                t.push_str(&format!(
                    ": {} retransmitted plus the last SYNs of the {} connects that gave up make \
                     exactly {}",
                    thousands(syn_retrans),
                    thousands(gave_up),
                    thousands(rest)
                ));
            }
        }
        t.push('.');
        out.push(t);
    }
    let sent = &d["resets_sent"]["server"];
    if let Some(by) = sent.as_object().filter(|o| !o.is_empty()) {
        let list: Vec<String> = by
            .iter()
            .map(|(r, n)| format!("{} {r}", thousands(n.as_u64().unwrap_or(0))))
            .collect();
        let mut t = format!("The server sent RSTs with reasons {}", join(&list));
        if by.contains_key("INVALID_SYN")
            && s["sysctl"]["server"]["net.ipv4.tcp_abort_on_overflow"] == "1"
        {
            t.push_str(" (INVALID_SYN is what Linux calls the reset of tcp_abort_on_overflow)");
        }
        t.push('.');
        out.push(t);
    }
    if d["lost_events"].as_u64().unwrap_or(0) > 0 {
        out.push(format!(
            "{} trace events were lost in the kernel's buffer: the counts above are short.",
            thousands(d["lost_events"].as_u64().unwrap_or(0))
        ));
    }
}

/// The sentences, in reading order.
pub fn explain(run: &RunFolder) -> Vec<String> {
    let mut out = Vec::new();
    let s = &run.summary;
    let total = run.total();
    let count = |o: Outcome| run.outcome_count(o);
    let server = |c: &str| run.counter("server", c).max(0) as u64;
    let client = |c: &str| run.counter("client", c).max(0) as u64;

    let mut first = format!(
        "{} connections were attempted over {}; {} ({}) got their response (ok).",
        thousands(total),
        secs(s["duration_s"].as_f64().unwrap_or(0.0)),
        thousands(count(Outcome::Ok)),
        pct(count(Outcome::Ok), total)
    );
    if let (Some(a), Some(p)) = (
        s["schedule"]["achieved_rate"].as_f64(),
        s["schedule"]["planned_rate"].as_f64(),
    ) {
        first.push_str(&format!(
            " They started at {}/s for a schedule of {}/s.",
            thousands(a.round() as u64),
            thousands(p.round() as u64)
        ));
    }
    out.push(first);

    // The accept queue.
    let series = &run.series;
    if let (Some(cap), Some(col)) = (run.accept_queue_capacity(), series.column("accept_queue")) {
        let th = full_threshold(cap);
        let bridge = bridge_s(series.interval_s().unwrap_or(0.1));
        let spans = spans_at_or_above(&series.t_s, col, th as f64, bridge);
        let limit = run.accept_queue_limit().unwrap_or(cap - 1);
        let every = series
            .interval_s()
            .map(|i| format!(" (sampled every {:.0} ms)", i * 1000.0))
            .unwrap_or_default();
        if spans.is_empty() {
            out.push(format!(
                "The accept queue never filled: at most {} of its capacity {cap} in any sample{every}.",
                s["listen"]["accept_queue_max_seen"].as_u64().unwrap_or(0)
            ));
        } else {
            out.push(format!(
                "The accept queue (capacity {cap} = backlog {limit} + 1) was full, at {th} or more \
                 in the samples{every}, {}.",
                spans_text(&spans, 4)
            ));
        }
    }

    let overflows = server("TcpExt.ListenOverflows");
    let drops = server("TcpExt.ListenDrops");
    if overflows > 0 {
        let mut t = format!(
            "{} times a SYN or a handshake's final ACK met the full accept queue and was dropped \
             (TcpExt.ListenOverflows)",
            thousands(overflows)
        );
        if drops == overflows {
            t.push_str("; ListenDrops rose by the same number.");
        } else if drops > overflows {
            t.push_str(&format!(
                "; ListenDrops rose by {}, {} of them for other reasons.",
                thousands(drops),
                thousands(drops - overflows)
            ));
        } else {
            t.push('.');
        }
        out.push(t);
    } else {
        out.push(
            "TcpExt.ListenOverflows did not move: nothing was dropped for a full accept queue."
                .into(),
        );
    }

    explain_drops(s, overflows, count(Outcome::ConnectTimeout), &mut out);

    // The SYN queue.
    let full_syn = server("TcpExt.TCPReqQFullDoCookies");
    let sent = server("TcpExt.SyncookiesSent");
    let recv = server("TcpExt.SyncookiesRecv");
    let qdrop = server("TcpExt.TCPReqQFullDrop");
    let syn_max = s["listen"]["syn_recv_max_seen"].as_u64().unwrap_or(0);
    let peak = match run.syn_queue_capacity() {
        Some(c) if syn_max > 0 => {
            format!(" SYN_RECV peaked at {syn_max} (SYN queue capacity {c}).")
        }
        _ => String::new(),
    };
    if full_syn > 0 || sent > 0 {
        out.push(format!(
            "The SYN queue overflowed too: {} SYNs found it full (TCPReqQFullDoCookies) and {} were \
             answered with a syncookie (SyncookiesSent); {} cookie ACKs came back (SyncookiesRecv).{peak}",
            thousands(full_syn),
            thousands(sent),
            thousands(recv)
        ));
    } else if !peak.is_empty() {
        out.push(peak.trim().to_string());
    }
    if qdrop > 0 {
        out.push(format!(
            "{} SYNs were dropped because the SYN queue was full and syncookies were off \
             (TcpExt.TCPReqQFullDrop).",
            thousands(qdrop)
        ));
    }

    // What the clients saw while connecting.
    let lat_s: Vec<f64> = run
        .connections
        .iter()
        .filter_map(|c| {
            c.connected_us
                .map(|t| t.saturating_sub(c.started_us) as f64 / 1e6)
        })
        .collect();
    let marks = run.syn_retry_times();
    let tol = 0.2;
    let clusters: Vec<(usize, f64, u64)> = near_marks(&lat_s, &marks, tol)
        .into_iter()
        .enumerate()
        .filter(|(_, (_, n))| *n > 0)
        .map(|(i, (m, n))| (i + 1, m, n))
        .collect();
    let syn_retrans = client("TcpExt.TCPSynRetrans");
    if syn_retrans > 0 || !clusters.is_empty() {
        let first_mark = marks.first().copied().unwrap_or(1.0);
        let at_once = lat_s.iter().filter(|l| **l < first_mark - tol).count() as u64;
        let clustered: u64 = clusters.iter().map(|c| c.2).sum();
        let mut parts = vec![format!(
            "{} within {} of connect()",
            thousands(at_once),
            secs(first_mark - tol)
        )];
        parts.extend(clusters.iter().map(|(k, m, n)| {
            format!(
                "{} about {m} s after (after {k} SYN retransmission{})",
                thousands(*n),
                if *k == 1 { "" } else { "s" }
            )
        }));
        let elsewhere = lat_s.len() as u64 - at_once - clustered;
        if elsewhere > 0 {
            parts.push(format!("{} at other times", thousands(elsewhere)));
        }
        out.push(format!(
            "Clients retransmitted {} SYNs (client TcpExt.TCPSynRetrans). Of the {} connections that \
             connected, {}.",
            thousands(syn_retrans),
            thousands(lat_s.len() as u64),
            join(&parts)
        ));
    }
    let synack = server("TcpExt.TCPSynRetrans");
    if synack > 0 {
        out.push(format!(
            "The server retransmitted {} SYN-ACKs (server TcpExt.TCPSynRetrans).",
            thousands(synack)
        ));
    }

    let plan = run.plan.as_ref().ok();
    let timeout = |d: Option<std::time::Duration>, what: &str| {
        d.map(crate::results::settings::seconds)
            .unwrap_or_else(|| format!("the client's {what} timeout"))
    };
    let ct = count(Outcome::ConnectTimeout);
    if ct > 0 {
        let mut by_retrans = std::collections::BTreeMap::<u32, u64>::new();
        for c in run
            .connections
            .iter()
            .filter(|c| c.outcome == Outcome::ConnectTimeout)
        {
            *by_retrans.entry(c.retransmits).or_default() += 1;
        }
        let common = by_retrans
            .iter()
            .max_by_key(|(_, n)| **n)
            .map(|(r, n)| {
                format!(
                    ", {} after retransmitting their SYN {r} time{}",
                    if *n == ct {
                        "all of them".to_string()
                    } else {
                        format!("{} of them", pct(*n, ct))
                    },
                    if *r == 1 { "" } else { "s" }
                )
            })
            .unwrap_or_default();
        out.push(format!(
            "{} never connected: connect() gave up after {} (connect_timeout){common}.",
            n_of(ct, "connection"),
            timeout(plan.map(|p| p.client.connect_timeout), "connect"),
        ));
    }
    let rt = count(Outcome::ResponseTimeout);
    if rt > 0 {
        out.push(format!(
            "{} completed the handshake as far as the client could tell, then got no \
             response within {} (response_timeout).",
            n_of(rt, "connection"),
            timeout(plan.map(|p| p.client.response_timeout), "response")
        ));
    }
    let resets = count(Outcome::ResetAfterConnect);
    let embryonic = server("TcpExt.EmbryonicRsts");
    if resets > 0 || embryonic > 0 {
        out.push(format!(
            "{} ended in reset_after_connect: reset after connecting; the server reset {} still in \
             SYN_RECV (TcpExt.EmbryonicRsts).",
            n_of(resets, "connection"),
            n_of(embryonic, "request")
        ));
    }
    for (o, what) in [
        (Outcome::ConnectRefused, "a RST answered the SYN"),
        (Outcome::ConnectReset, "connect() failed with a reset"),
        (
            Outcome::ClosedWithoutResponse,
            "the server closed without answering",
        ),
        (Outcome::Other, "see the errno column of connections.csv"),
    ] {
        if count(o) > 0 {
            out.push(format!(
                "{} ended in {}: {what}.",
                n_of(count(o), "connection"),
                o.name()
            ));
        }
    }

    let r = &s["response_latency_ms"];
    if let (Some(p50), Some(p99)) = (r["p50"].as_f64(), r["p99"].as_f64()) {
        out.push(format!(
            "Served connections had their first response byte {} after their scheduled start at \
             the median, {} at p99.",
            ms(p50),
            ms(p99)
        ));
    }

    if let Some(exps) = s["expectations"].as_array().filter(|e| !e.is_empty()) {
        let failed: Vec<String> = exps
            .iter()
            .filter(|e| e["pass"] == false)
            .map(|e| e["text"].as_str().unwrap_or("?").to_string())
            .collect();
        out.push(if failed.is_empty() {
            format!("All {} of the scenario's expectations held.", exps.len())
        } else {
            format!(
                "{} of {} expectations failed: {}.",
                failed.len(),
                exps.len(),
                failed.join("; ")
            )
        });
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::record::ConnRecord;
    use crate::results::{RunFolder, TimeSeries};
    use serde_json::json;

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
            connections: vec![
                conn(0, 0, Some(300), Outcome::Ok, 0),
                conn(1, 1000, Some(1_010_000), Outcome::Ok, 1),
                conn(2, 2000, Some(1_050_000), Outcome::ResponseTimeout, 1),
                conn(3, 3000, Some(2_020_000), Outcome::Ok, 2),
                conn(4, 4000, None, Outcome::ConnectTimeout, 2),
                conn(5, 5000, None, Outcome::ConnectTimeout, 2),
            ],
            series: TimeSeries {
                t_s,
                columns: vec![("accept_queue".into(), aq)],
            },
            summary: json!({
                "scenario": "t", "connections": 6, "duration_s": 3.0,
                "outcomes": {"ok": 3, "connect_timeout": 2, "response_timeout": 1},
                "listen": {"accept_queue_limit": 4, "accept_queue_capacity": 5,
                           "accept_queue_max_seen": 5, "syn_recv_max_seen": 0},
                "counters": {"server": {"TcpExt.ListenOverflows": 9, "TcpExt.ListenDrops": 9},
                             "client": {"TcpExt.TCPSynRetrans": 8}},
                "response_latency_ms": {"p50": 1.5, "p99": 2100.0},
                "expectations": [{"text": "a > 1", "pass": true}, {"text": "b == 0", "pass": false}]
            }),
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
        r.summary["drops"] = json!({
            "recorded": true,
            "by_reason": {"TCP_LISTEN_OVERFLOW": 2, "NO_SOCKET": 1},
            "by_function": {"cookie_v4_check": {"NO_SOCKET": 1}},
            "syn_retransmits": 4,
            "resets_sent": {"server": {"INVALID_SYN": 2}},
            "lost_events": 0
        });
        r.summary["sysctl"] = json!({"server": {"net.ipv4.tcp_abort_on_overflow": "1"}});
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

        r.summary["drops"] = json!({"recorded": false, "unavailable": "no tracefs"});
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
        r.summary["counters"] = json!({});
        r.summary["listen"]["accept_queue_max_seen"] = json!(1);
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
