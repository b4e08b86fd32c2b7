//! The sentences about what the clients saw: when their connects completed against the SYN
//! retransmission marks, how each failure showed, and how long served connections waited.

use std::collections::BTreeMap;

use super::{join, n_of, pct};
use crate::record::Outcome;
use crate::results::analysis::near_marks;
use crate::results::RunFolder;
use crate::units::{prose_ms as ms, prose_secs as secs, seconds, thousands};

/// When connects completed: at once, or at each SYN retransmission mark.
pub fn connect_times(run: &RunFolder, out: &mut Vec<String>) {
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
    let syn_retrans = run.counter("client", "TcpExt.TCPSynRetrans").max(0) as u64;
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
        // A client of the user's own: no connect times to set against the marks.
        if !run.summary.has_connection_rows() {
            out.push(format!(
                "Clients retransmitted {} SYNs (client TcpExt.TCPSynRetrans).",
                thousands(syn_retrans)
            ));
            return;
        }
        out.push(format!(
            "Clients retransmitted {} SYNs (client TcpExt.TCPSynRetrans). Of the {} connections that \
             connected, {}.",
            thousands(syn_retrans),
            thousands(lat_s.len() as u64),
            join(&parts)
        ));
    }
    let synack = run.counter("server", "TcpExt.TCPSynRetrans").max(0) as u64;
    if synack > 0 {
        out.push(format!(
            "The server retransmitted {} SYN-ACKs (server TcpExt.TCPSynRetrans).",
            thousands(synack)
        ));
    }
}

/// How each kind of failure showed, with the timeouts that decided it.
pub fn failures(run: &RunFolder, out: &mut Vec<String>) {
    let count = |o: Outcome| run.outcome_count(o);
    let plan = run.plan.as_ref().ok();
    let timeout = |d: Option<std::time::Duration>, what: &str| {
        d.map(seconds)
            .unwrap_or_else(|| format!("the client's {what} timeout"))
    };
    let ct = count(Outcome::ConnectTimeout);
    if ct > 0 {
        out.push(format!(
            "{} never connected: connect() gave up after {} (connect_timeout){}.",
            n_of(ct, "connection"),
            timeout(plan.map(|p| p.client.connect_timeout), "connect"),
            most_common_retransmits(run, ct)
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
    let embryonic = run.counter("server", "TcpExt.EmbryonicRsts").max(0) as u64;
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
        (
            Outcome::Abandoned,
            "still in flight when a second stop signal abandoned it (connections.csv says how far \
             each got)",
        ),
        (
            Outcome::NotStarted,
            "at its scheduled time the client already had client.max_in_flight connections open, \
             so it never called connect(): a limit of this client, not a failure of the server \
             (raise client.max_in_flight or ulimit -n, or shorten the timeouts)",
        ),
    ] {
        if count(o) > 0 {
            out.push(format!(
                "{} ended in {}: {what}.",
                n_of(count(o), "connection"),
                o.name()
            ));
        }
    }
}

/// `, all of them after retransmitting their SYN 2 times` for the `ct` connect timeouts.
fn most_common_retransmits(run: &RunFolder, ct: u64) -> String {
    let mut by_retrans = BTreeMap::<u32, u64>::new();
    for c in run
        .connections
        .iter()
        .filter(|c| c.outcome == Outcome::ConnectTimeout)
    {
        *by_retrans.entry(c.retransmits).or_default() += 1;
    }
    by_retrans
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
        .unwrap_or_default()
}

/// How long served connections waited for their first byte.
pub fn served(run: &RunFolder, out: &mut Vec<String>) {
    let r = &run.summary.response_latency_ms;
    if let (Some(p50), Some(p99)) = (r.p50, r.p99) {
        out.push(format!(
            "Served connections had their first response byte {} after their scheduled start at \
             the median, {} at p99.",
            ms(p50),
            ms(p99)
        ));
    }
}
