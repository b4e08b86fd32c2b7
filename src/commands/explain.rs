//! `backlog-lab explain [SCENARIO]`: the limits this kernel applies to the scenario's settings,
//! one row each, beside the 3.10-era rule the seed articles give and whether this kernel still
//! does it. No root: it reads the plan and the kernel release, and builds nothing.

use std::io::Write;

use crate::cli::CheckArgs;
use crate::plan::queues::Side;
use crate::plan::{queues, retries, RunPlan};

/// One limit: what it is, this kernel's value, the articles' rule, and whether it still holds.
struct Row {
    what: &'static str,
    here: String,
    legacy: String,
    same: bool,
}

/// What `explain` finds for one plan.
pub struct Limits {
    pub release: String,
    pub queues: queues::Queues,
    pub syn_retransmits_at_s: Vec<f64>,
    pub connect_gives_up_after_s: f64,
    pub synack_retransmits_at_s: Vec<f64>,
    pub legacy_syn_queue_holds: u32,
    /// The most SYN-RECV request sockets at once for the lab's clients (syncookies and the 3/4
    /// rule applied): [`RunPlan::syn_recv_holds`].
    pub syn_recv_holds: u32,
    pub legacy_syn_retransmits_at_s: Vec<f64>,
    pub legacy_connect_gives_up_after_s: f64,
    rows: Vec<Row>,
}

fn secs(v: &[f64]) -> String {
    let list: Vec<String> = v.iter().map(|t| format!("{t}")).collect();
    format!("{} s", list.join(", "))
}

/// The limits the kernel of `release` applies to `plan`.
pub fn limits(plan: &RunPlan, release: &str) -> Limits {
    let q = plan.queues(release);
    let (max_syn, _) = plan.sysctl_value(Side::Server, "net.ipv4.tcp_max_syn_backlog");
    let (cookies, _) = plan.sysctl_value(Side::Server, "net.ipv4.tcp_syncookies");
    let (syn_retries, _) = plan.sysctl_value(Side::Client, "net.ipv4.tcp_syn_retries");
    let (linear, _) = plan.sysctl_value(Side::Client, "net.ipv4.tcp_syn_linear_timeouts");
    let (synack, _) = plan.sysctl_value(Side::Server, "net.ipv4.tcp_synack_retries");
    let syn_at = retries::syn_retransmissions(linear, syn_retries);
    let gives_up = retries::connect_gives_up_after(linear, syn_retries);
    let legacy_at = retries::syn_retransmissions(0, syn_retries);
    let legacy_gives_up = retries::connect_gives_up_after(0, syn_retries);
    let legacy_syn = retries::legacy_syn_queue(q.limit, max_syn);
    let cookies_text = match cookies {
        0 => "0: no cookies; a SYN beyond the SYN queue is dropped (TCPReqQFullDrop) and retried"
            .into(),
        2 => "2: every SYN gets a cookie; no request sockets at all".to_string(),
        n => format!("{n}: a cookie only when the SYN queue is full (TCPReqQFullDoCookies)"),
    };
    let rows = vec![
        Row {
            what: "listen() backlog after the somaxconn clamp",
            here: format!(
                "listen({}) keeps {} (a backlog above somaxconn {}, or negative, is clamped to it)",
                plan.server.backlog, q.limit, q.somaxconn
            ),
            legacy: "min(backlog, somaxconn) (seed 001)".into(),
            same: true,
        },
        Row {
            what: "accept queue holds",
            here: format!("limit + 1 = {}", q.accept_holds),
            legacy: format!("limit + 1 = {} (seed 001: 128 holds 129)", q.accept_holds),
            same: true,
        },
        Row {
            what: "SYN queue holds",
            here: format!("{} (limit + 1 since 6.14, limit before)", q.syn_holds),
            legacy: format!(
                "roundup_pow_of_two(max(8, min(limit, tcp_max_syn_backlog {max_syn})) + 1) = {legacy_syn} (seed 003)"
            ),
            same: legacy_syn == q.syn_holds,
        },
        Row {
            what: "tcp_max_syn_backlog",
            here: if cookies == 0 {
                format!(
                    "sizes nothing; with syncookies 0 a SYN from an unproven peer is dropped from {} request sockets up",
                    max_syn - max_syn / 4
                )
            } else {
                "sizes nothing (its 3/4 rule applies only with syncookies 0)".into()
            },
            legacy: format!("the SYN queue's length, max(64, {max_syn}) (seed 001)"),
            same: false,
        },
        Row {
            what: "tcp_syncookies",
            here: cookies_text,
            legacy: "1 lets clients in under a SYN flood (seed 004)".into(),
            same: true,
        },
        Row {
            what: "client SYN retransmissions",
            here: format!(
                "{} of them, at {} (tcp_syn_retries {syn_retries} sets the time, not the count; linear {linear})",
                syn_at.len(),
                secs(&syn_at)
            ),
            legacy: format!("at {} (doubling from 1 s; seed 001 says 3 s, 9 s)", secs(&legacy_at)),
            same: syn_at == legacy_at,
        },
        Row {
            what: "connect() gives up after",
            here: format!("{gives_up} s"),
            legacy: format!("{legacy_gives_up} s"),
            same: gives_up == legacy_gives_up,
        },
        Row {
            what: "server SYN-ACK retransmissions",
            here: format!(
                "at {} (tcp_synack_retries {synack})",
                secs(&retries::synack_retry_times(synack))
            ),
            legacy: "the same".into(),
            same: true,
        },
    ];
    Limits {
        release: release.to_string(),
        queues: q,
        syn_retransmits_at_s: syn_at,
        connect_gives_up_after_s: gives_up,
        synack_retransmits_at_s: retries::synack_retry_times(synack),
        legacy_syn_queue_holds: legacy_syn,
        syn_recv_holds: plan.syn_recv_holds(release),
        legacy_syn_retransmits_at_s: legacy_at,
        legacy_connect_gives_up_after_s: legacy_gives_up,
        rows,
    }
}

impl Limits {
    fn json(&self, label: &str) -> serde_json::Value {
        let q = &self.queues;
        serde_json::json!({
            "label": label,
            "kernel": self.release,
            "accept_queue_limit": q.limit,
            "somaxconn": q.somaxconn,
            "accept_queue_holds": q.accept_holds,
            "syn_queue_holds": q.syn_holds,
            "syn_recv_holds": self.syn_recv_holds,
            "syn_retransmits_at_s": self.syn_retransmits_at_s,
            "connect_gives_up_after_s": self.connect_gives_up_after_s,
            "synack_retransmits_at_s": self.synack_retransmits_at_s,
            "legacy_3_10": {
                "accept_queue_holds": q.accept_holds,
                "syn_queue_holds": self.legacy_syn_queue_holds,
                "syn_retransmits_at_s": self.legacy_syn_retransmits_at_s,
                "connect_gives_up_after_s": self.legacy_connect_gives_up_after_s,
            },
            "rows": self.rows.iter().map(|r| serde_json::json!({
                "what": r.what, "this_kernel": r.here, "legacy_3_10": r.legacy, "still_true": r.same,
            })).collect::<Vec<_>>(),
        })
    }

    fn print(&self, out: &mut impl Write, title: &str) -> std::io::Result<()> {
        writeln!(out, "\n{title} on Linux {}", self.release)?;
        for r in &self.rows {
            writeln!(out, "  {}", r.what)?;
            writeln!(out, "    this kernel: {}", r.here)?;
            let verdict = if r.same { "still true" } else { "no longer" };
            writeln!(out, "    3.10 era:    {} [{verdict}]", r.legacy)?;
        }
        Ok(())
    }
}

pub fn command(args: &CheckArgs, out: &mut impl Write) -> anyhow::Result<u8> {
    let plans = super::load_plans(&args.scenario)?;
    let release = queues::kernel_release();
    let all: Vec<(String, Limits)> = plans
        .iter()
        .map(|(combo, plan)| (combo.label.clone(), limits(plan, &release)))
        .collect();
    if args.json {
        let runs: Vec<_> = all.iter().map(|(l, lim)| lim.json(l)).collect();
        writeln!(
            out,
            "{}",
            serde_json::to_string_pretty(&serde_json::json!({ "runs": runs }))?
        )?;
    } else {
        for (label, lim) in &all {
            lim.print(out, label)?;
        }
    }
    Ok(0)
}
