//! The sentences the kernel's trace events add to the counters: which packets died and why, and
//! the RST reasons the server gave.

use super::join;
use crate::record::drops::DropStats;
use crate::record::summary::Summary;
use crate::units::thousands;

/// What the kernel's trace events add to the counters: which packets died and why.
/// `overflows` is the server's ListenOverflows, `gave_up` the connects that timed out.
pub fn sentences(s: &Summary, overflows: u64, gave_up: u64, out: &mut Vec<String>) {
    let d = &s.drops;
    if !d.recorded {
        if let Some(why) = &d.unavailable {
            out.push(format!("Drop reasons were not recorded: {why}."));
        }
        return;
    }
    let mut reasons: Vec<(u64, String)> = d
        .counts
        .by_reason
        .iter()
        .map(|(r, n)| (*n, r.clone()))
        .collect();
    reasons.sort_by(|a, b| b.cmp(a));
    if !reasons.is_empty() {
        let list: Vec<String> = reasons
            .iter()
            .take(5)
            .map(|(n, r)| format!("{} {r}", thousands(*n)))
            .collect();
        out.push(format!(
            "The kernel's drop reasons (skb:kfree_skb, every {} drop on the machine during the \
             run): {}.",
            s.family_name(),
            join(&list)
        ));
    }
    let machine = d.counts.machine_drops();
    if !machine.is_empty() {
        let list: Vec<String> = machine
            .iter()
            .map(|(r, n)| {
                let why = crate::record::drops::machine_reason(r).unwrap_or_default();
                format!("{} {r} ({why})", thousands(*n))
            })
            .collect();
        out.push(format!(
            "Some drops were the machine's, not the listen queue's: {}. They are the host's own \
             limits; a storm on an idle or larger machine would not meet them.",
            join(&list)
        ));
    }
    // The split is made from machine-wide counts: shown only where they fit this run's own.
    if s.trace_doubts().is_empty() {
        if let Some(t) = overflow_split(d, overflows, gave_up, s.kernel_v()) {
            out.push(t);
        }
    }
    if let Some(by) = d.counts.resets_sent.get("server").filter(|b| !b.is_empty()) {
        let list: Vec<String> = by
            .iter()
            .map(|(r, n)| format!("{} {r}", thousands(*n)))
            .collect();
        let mut t = format!("The server sent RSTs with reasons {}", join(&list));
        if by.contains_key("INVALID_SYN")
            && s.sysctl("server", "net.ipv4.tcp_abort_on_overflow") == Some("1")
        {
            t.push_str(" (INVALID_SYN is what Linux calls the reset of tcp_abort_on_overflow)");
        }
        t.push('.');
        out.push(t);
    }
    if d.rst_closes_left_out {
        out.push(format!(
            "The client closed with RSTs (client.close = rst; {} aborts in its \
             TcpExt.TCPAbortOnData): the trace leaves those RSTs out, and the resets of the \
             server's sockets, as the run's own design.",
            thousands(s.counter("client", "TcpExt.TCPAbortOnData").max(0) as u64)
        ));
    }
    if d.lost_events > 0 {
        out.push(format!(
            "{} trace events were lost in the kernel's buffer: the counts above are short.",
            thousands(d.lost_events)
        ));
    }
}

/// How the accept-queue overflows split into final ACKs, cookie ACKs and SYNs. The drop counts
/// are machine-wide: the lab's overflows are split only where they fit.
fn overflow_split(d: &DropStats, overflows: u64, gave_up: u64, v: &str) -> Option<String> {
    let c = &d.counts;
    let (listen, cookie) = (c.listen_overflow_drops(), c.cookie_ack_drops());
    if overflows == 0 || listen + cookie == 0 || listen + cookie > overflows {
        return None;
    }
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
             cookie_{v}_check)",
            thousands(cookie)
        ));
    }
    let mut t = format!(
        "Of the {} accept-queue overflows, {}",
        thousands(overflows),
        join(&parts)
    );
    let rest = overflows - listen - cookie;
    let syn_retrans = c.syn_retransmits;
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
    Some(t)
}
