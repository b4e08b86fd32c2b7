//! The sentences about the listen queues: when the accept queue was full, what its overflows
//! were, and what the SYN queue did (cookies, drops, its peak).

use super::spans_text;
use crate::results::analysis::{bridge_s, full_threshold, spans_at_or_above};
use crate::results::RunFolder;
use crate::units::thousands;

/// When the sampled accept queue was full, or that it never was.
pub fn accept_queue(run: &RunFolder, out: &mut Vec<String>) {
    let series = &run.series;
    let (Some(cap), Some(col)) = (run.accept_queue_capacity(), series.column("accept_queue"))
    else {
        return;
    };
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
            run.summary.listen.accept_queue_max_seen
        ));
    } else {
        out.push(format!(
            "The accept queue (capacity {cap} = backlog {limit} + 1) was full, at {th} or more \
             in the samples{every}, {}.",
            spans_text(&spans, 4)
        ));
    }
}

/// ListenOverflows, and how ListenDrops relates to it.
pub fn overflows(overflows: u64, drops: u64, out: &mut Vec<String>) {
    if overflows == 0 {
        out.push(
            "TcpExt.ListenOverflows did not move: nothing was dropped for a full accept queue."
                .into(),
        );
        return;
    }
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
}

/// What the SYN queue did: cookies when it was full, drops without them, and its peak.
pub fn syn_queue(run: &RunFolder, out: &mut Vec<String>) {
    let server = |c: &str| run.counter("server", c).max(0) as u64;
    let full_syn = server("TcpExt.TCPReqQFullDoCookies");
    let sent = server("TcpExt.SyncookiesSent");
    let recv = server("TcpExt.SyncookiesRecv");
    let qdrop = server("TcpExt.TCPReqQFullDrop");
    let syn_max = run.summary.listen.syn_recv_max_seen;
    let peak = match run.syn_queue_capacity() {
        Some(c) if syn_max > 0 => {
            let sampling = &run.summary.sampling;
            let thinned = if sampling.syn_recv_skipped > 0 {
                format!(
                    "; counted in {} of {} samples, as the count walks every socket of the \
                     namespace and may take only {}% of a core",
                    thousands(sampling.syn_recv_counted),
                    thousands(sampling.syn_recv_counted + sampling.syn_recv_skipped),
                    sampling.syn_recv_share * 100.0
                )
            } else {
                String::new()
            };
            format!(" SYN_RECV peaked at {syn_max} (SYN queue capacity {c}{thinned}).")
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
}
