//! `backlog-lab watch`: a live listener the lab did not start, observed read only. It samples
//! the accept queue of every listening socket on the port (the fullest one's length, each one's
//! limit), the SYN-RECV count and the namespace's counters, and traces the kernel's drop reasons
//! for the port, exactly as a run does (a private tracefs mount, an instance of its own). It
//! writes no sysctl and builds no link. A live line goes to stderr every second; at the end the
//! folder holds what a run's does, without connection rows.

use std::collections::BTreeMap;
use std::io::Write;
use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::{Duration, Instant};

use crate::cli::WatchArgs;
use crate::counters::{
    CounterFiles, ListenDiag, LiveQueue, Probes, QueueSample, Sample, Sampler, Snapshot,
};
use crate::drops;
use crate::error::Failure;
use crate::family::Family;
use crate::netns::Netns;
use crate::record::stats::WatchStats;
use crate::record::summary::{Listen, Summary};
use crate::record::Environment;
use crate::results::analysis::full_threshold;
use crate::results::write::{CounterPair, RunWriter};
use crate::scenario::expect::Expectation;
use crate::topo::sysctl;
use crate::units::thousands;

/// `backlog-lab watch`.
pub fn command(args: &WatchArgs, out: &mut impl Write) -> anyhow::Result<u8> {
    let alerts = alerts(&args.alert)?;
    let (ns, namespace) = namespace(args)?;
    let family = Family::default();
    let mut diag = ListenDiag::open(&ns, args.port, family)?.any_family();
    let first = diag
        .sample()
        .map_err(|e| Failure::environment(format!("sock_diag: {e}")))?;
    if first.listeners == 0 {
        return Err(Failure::environment(format!(
            "nothing listens on TCP port {} in {namespace}: `ss -ltn` there shows what does \
             (for another namespace, give --netns PATH or --pid PID)",
            args.port
        ))
        .into());
    }
    let limits = diag
        .limits()
        .map_err(|e| Failure::environment(format!("sock_diag: {e}")))?;
    let folder = RunWriter::create(
        args.out.as_deref(),
        &format!("watch-{}", args.port),
        args.force,
    )?;
    let started_at = humantime::format_rfc3339_seconds(std::time::SystemTime::now()).to_string();
    let watched = WatchStats {
        port: args.port,
        namespace,
        inode: ns.inode(),
    };
    let sysctls = sysctl::read_effective(&ns, std::iter::empty())?;
    folder.environment(&environment(&watched, &sysctls, started_at))?;
    let mut live_counters = CounterFiles::open(&ns, family)?;
    let probes = Probes {
        server: CounterFiles::open(&ns, family)?,
        client: None,
        diag,
    };
    let banner = format!(
        "watching TCP port {} in {} (net:[{}]): {} listening socket{}, limit{} {}; for {}, Ctrl-C stops",
        watched.port,
        watched.namespace,
        watched.inode,
        limits.len(),
        if limits.len() == 1 { "" } else { "s" },
        if limits.len() == 1 { "" } else { "s" },
        limits.iter().map(|l| l.to_string()).collect::<Vec<_>>().join(", "),
        humantime::format_duration(args.duration)
    );
    let seen = observe(args, probes, &mut live_counters, &mut |_| {
        writeln!(out, "{banner}")?;
        out.flush()
    })?;
    let s = summarize(args, &seen, &limits, &sysctls, watched, &alerts)?;
    write(&folder, &seen, &s)?;
    super::plot::render_after_run(folder.dir());
    print(out, &s, folder.dir())?;
    if let Some(sig) = crate::interrupt::requested() {
        return Ok(crate::interrupt::exit_code(sig));
    }
    Ok(u8::from(s.alerts.iter().any(|a| a.pass)))
}

/// `--alert`s, with `counters.X` short for `counters.server.X` (the watched namespace).
fn alerts(lines: &[String]) -> Result<Vec<Expectation>, Failure> {
    lines
        .iter()
        .map(|l| Expectation::parse_line(&expand_counters(l)))
        .collect()
}

/// `counters.TcpExt.ListenOverflows` → `counters.server.TcpExt.ListenOverflows`.
fn expand_counters(line: &str) -> String {
    let mut out = String::with_capacity(line.len() + 16);
    let mut rest = line;
    while let Some(i) = rest.find("counters.") {
        let (before, after) = rest.split_at(i + "counters.".len());
        out.push_str(before);
        if after.starts_with(|c: char| c.is_ascii_uppercase()) {
            out.push_str("server.");
        }
        rest = after;
    }
    out.push_str(rest);
    out
}

/// The namespace to watch, and how to name it.
fn namespace(args: &WatchArgs) -> Result<(Netns, String), Failure> {
    let (path, name) = match (&args.netns, args.pid) {
        (Some(p), _) => (p.clone(), p.display().to_string()),
        (None, Some(pid)) => {
            let p = PathBuf::from(format!("/proc/{pid}/ns/net"));
            if !p.exists() {
                return Err(Failure::bad_input(format!("--pid {pid}: no such process")));
            }
            (p, format!("the namespace of process {pid}"))
        }
        (None, None) => (
            PathBuf::from("/proc/self/ns/net"),
            "the host's namespace".into(),
        ),
    };
    Ok((Netns::open(&path, "watched")?, name))
}

/// What the watch saw, from its first reading to its last.
struct Seen {
    before: Sample,
    after: Sample,
    series: crate::counters::Series,
    sampling: crate::record::stats::SamplingStats,
    rows: Vec<drops::Row>,
    drops: drops::DropStats,
    reasons_known: std::collections::BTreeSet<String>,
}

/// Samples until `--for` is up or a stop signal comes, printing the live line every second.
fn observe(
    args: &WatchArgs,
    mut probes: Probes,
    live_counters: &mut CounterFiles,
    started: &mut dyn FnMut(()) -> std::io::Result<()>,
) -> anyhow::Result<Seen> {
    let lab = Family::default().addrs();
    let watched = drops::Watched {
        server: SocketAddr::new(IpAddr::V4(Ipv4Addr::UNSPECIFIED), args.port),
        lab,
        any_peer: true,
        rst_close: false,
    };
    let tracing = drops::Recording::start(watched, !args.no_trace);
    let t0 = Instant::now();
    let t0_mono_ns = drops::monotonic_ns(t0);
    tracing.open_window();
    let before = probes.sample(t0)?;
    // Said once the first reading is taken: what happens from here on is in the window.
    started(())?;
    let live = Arc::new(LiveQueue::default());
    let sampler = Sampler::start_live(probes, t0, args.interval, Some(live.clone()));
    let end = t0 + args.duration;
    let mut next = t0 + Duration::from_secs(1);
    while Instant::now() < end && crate::interrupt::requested().is_none() {
        std::thread::sleep(
            Duration::from_millis(50).min(end.saturating_duration_since(Instant::now())),
        );
        if Instant::now() >= next && !args.quiet {
            next += Duration::from_secs(1);
            if let Ok(now) = live_counters.read() {
                eprintln!(
                    "{}",
                    live_line(&live.recent(), &before.server, &now, t0.elapsed())
                );
            }
        }
    }
    let (mut probes, series, sampling) = sampler.stop();
    tracing.close_window();
    let after = probes.sample(t0)?;
    let mut trace = tracing.stop();
    let rows = drops::attribute(&mut trace, Default::default(), t0_mono_ns, &lab);
    let drops = drops::DropStats::of(&trace, &rows);
    Ok(Seen {
        before,
        after,
        series,
        sampling,
        rows,
        drops,
        reasons_known: std::mem::take(&mut trace.reasons_known),
    })
}

/// `12 s  accept queue 129/129, full 37% of the last 10 s; SYN-RECV 3; 1,204 SYNs or ACKs
/// dropped (ListenOverflows) since the start`.
pub fn live_line(recent: &[QueueSample], before: &Snapshot, now: &Snapshot, t: Duration) -> String {
    let last = recent.last().copied().unwrap_or_default();
    let capacity = last.accept_queue_limit.map(|l| u64::from(l) + 1);
    let queue = match capacity {
        Some(c) => {
            let full = recent
                .iter()
                .filter(|q| u64::from(q.accept_queue) >= full_threshold(c))
                .count();
            format!(
                "accept queue {}/{c}, full {:.0}% of the last {:.0} s",
                last.accept_queue,
                100.0 * full as f64 / recent.len().max(1) as f64,
                (LiveQueue::SPAN_US as f64 / 1e6).min(t.as_secs_f64())
            )
        }
        None => "no listener now".into(),
    };
    let delta = |k: &str| now.get(k).unwrap_or(0) - before.get(k).unwrap_or(0);
    format!(
        "{:>5.0} s  {queue}; SYN-RECV {}; {} dropped at the listener (ListenOverflows), {} SYN-ACKs retransmitted",
        t.as_secs_f64(),
        // The newest count: the sampler skips it in samples where it would cost too much.
        recent
            .iter()
            .rev()
            .find_map(|q| q.syn_recv)
            .map_or("not counted yet".into(), |n| n.to_string()),
        thousands(delta("TcpExt.ListenOverflows").max(0) as u64),
        thousands(delta("TcpExt.TCPSynRetrans").max(0) as u64),
    )
}

/// The summary of a watch: counters, queue, drops, and each alert's verdict.
fn summarize(
    args: &WatchArgs,
    seen: &Seen,
    limits: &[u32],
    sysctls: &BTreeMap<String, String>,
    watched: WatchStats,
    alerts: &[Expectation],
) -> anyhow::Result<Summary> {
    let (accept_queue_max_seen, syn_recv_max_seen) =
        crate::lab::judge::peaks(&seen.series, seen.after.queue);
    let limit = limits.iter().max().copied();
    let mut s = Summary {
        scenario: format!("watch port {}", args.port),
        interrupted: crate::interrupt::requested().is_some(),
        duration_s: seen.after.t_us as f64 / 1e6,
        counters: BTreeMap::from([(
            "server".to_string(),
            Snapshot::moved(&seen.before.server, &seen.after.server),
        )]),
        sysctl: BTreeMap::from([("server".to_string(), sysctls.clone())]),
        listen: Listen {
            backlog_requested: limit.map_or(-1, |l| l as i32),
            accept_queue_limit: limit,
            accept_queue_capacity: limit.map(|l| l + 1),
            accept_queue_max_seen,
            syn_recv_max_seen,
            listeners: if limits.len() > 1 {
                limits.to_vec()
            } else {
                Vec::new()
            },
        },
        sampling: seen.sampling.clone(),
        drops: seen.drops.clone(),
        watched: Some(watched),
        ..Summary::default()
    };
    let doubts = s.trace_doubts();
    if !doubts.is_empty() {
        s.warnings
            .push(crate::record::Warning::TraceNotOurs { doubts });
    }
    let value = serde_json::to_value(&s)?;
    let known = |name: &str| match name.strip_prefix("drops.by_reason.") {
        Some(reason) => s.drops.recorded && seen.reasons_known.contains(reason),
        None => seen.before.server.get(name).is_some(),
    };
    s.alerts = alerts.iter().map(|a| a.check(&value, &known)).collect();
    Ok(s)
}

/// The folder's files: a run's, with an empty connections.csv.
fn write(folder: &RunWriter, seen: &Seen, s: &Summary) -> anyhow::Result<()> {
    let empty = Snapshot::default();
    let pairs = [
        CounterPair {
            namespace: "server",
            before: &seen.before.server,
            after: &seen.after.server,
        },
        CounterPair {
            namespace: "client",
            before: &empty,
            after: &empty,
        },
    ];
    folder.connections(&[])?;
    folder.counters(&pairs[..1])?;
    folder.timeseries(&seen.series, &pairs[0], &pairs[1])?;
    if seen.drops.recorded {
        folder.drops(&seen.rows)?;
    }
    folder.summary(s)
}

fn environment(
    w: &WatchStats,
    sysctls: &BTreeMap<String, String>,
    started_at: String,
) -> Environment {
    Environment {
        tool: crate::record::environment::TOOL.into(),
        kernel_release: crate::plan::queues::kernel_release(),
        started_at,
        scenario: format!("watch --port {} in {}", w.port, w.namespace),
        server_address: format!("*:{}", w.port),
        client_address: String::new(),
        namespace_inodes: BTreeMap::from([("server".to_string(), w.inode)]),
        rlimit_nofile: 0,
        sysctl: BTreeMap::from([("server".to_string(), sysctls.clone())]),
        host_sysctl: sysctl::read_host(),
    }
}

/// The end of a watch on the terminal: the queue, the counters that moved, the alerts.
fn print(out: &mut impl Write, s: &Summary, dir: &Path) -> std::io::Result<()> {
    let l = &s.listen;
    let mut text = format!(
        "\n{} over {:.1} s{}\n  accept queue limit {} (holds {}), max seen {}; SYN-RECV max seen {}\n",
        s.scenario,
        s.duration_s,
        if s.interrupted { " (stopped by a signal)" } else { "" },
        l.accept_queue_limit.map_or("?".into(), |v| v.to_string()),
        l.accept_queue_capacity.map_or("?".into(), |v| v.to_string()),
        l.accept_queue_max_seen,
        l.syn_recv_max_seen
    );
    if let Some(c) = s.counters.get("server") {
        text.push_str(&crate::terminal::counter_table("watched namespace", c));
    }
    for w in &s.warnings {
        text.push_str(&format!("\n  warning: {w}\n"));
    }
    if !s.alerts.is_empty() {
        text.push_str("\n  alerts\n");
        for a in &s.alerts {
            text.push_str(&format!(
                "    {}  {}   [seen {}]\n",
                a.alert_word(),
                a.text,
                a.value.map_or("-".into(), |v| v.to_string())
            ));
        }
    }
    text.push_str(&format!(
        "\n  results in {} (open {}/report.html)\n",
        dir.display(),
        dir.display()
    ));
    out.write_all(text.as_bytes())
}
