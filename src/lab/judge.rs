//! What a run's measurements add up to: the [`Summary`] computed from the records and counters
//! alone, the [`Warning`]s about what may make it mislead, and the verdict on each of the
//! scenario's expectations.

use std::collections::BTreeMap;

use super::storm::Measured;
use crate::counters::Snapshot;
use crate::plan::{AcceptPolicy, Arrival, RunPlan};
use crate::record::summary::{Listen, Summary};
use crate::record::{Tally, Warning};

/// The summary of a run, with its warnings and the verdict on each expectation.
pub fn summarize(plan: &RunPlan, m: &Measured) -> anyhow::Result<Summary> {
    let tally = &m.tally;
    let (connect, connect_from_start, response) = tally.latencies();
    let mut s = Summary {
        scenario: plan.name.clone(),
        overrides: plan.overrides.clone(),
        family: plan.family.name().to_string(),
        connections: tally.connections(),
        planned: m.storm.planned,
        // A stop signal after the storm (while the lab was torn down) still makes it partial.
        interrupted: m.storm.interrupted || crate::interrupt::requested().is_some(),
        abandoned: m.storm.abandoned,
        duration_s: match &m.client {
            Some((_, ran)) => ran.as_secs_f64(),
            None => tally.duration_s(),
        },
        outcomes: tally.outcomes(),
        connect_latency_ms: connect,
        connect_latency_from_start_ms: connect_from_start,
        response_latency_ms: response,
        by_outcome: tally.by_outcome(),
        schedule: tally.schedule(burst_interval_us(plan)),
        retransmits: tally.retransmits(),
        counters: BTreeMap::from([
            (
                "server".to_string(),
                Snapshot::moved(&m.before.server, &m.after.server),
            ),
            (
                "client".to_string(),
                Snapshot::moved(&m.before.client, &m.after.client),
            ),
        ]),
        sysctl: m.sysctls.clone(),
        listen: listen(plan, m),
        server: m.server.clone(),
        client_program: m.client.as_ref().map(|(p, _)| p.clone()),
        sampling: m.sampling.clone(),
        link: m.link.clone(),
        flood: m.flood.clone(),
        drops: m.drops.clone(),
        warnings: Vec::new(),
        expectations: Vec::new(),
        ..Summary::default()
    };
    // A storm meant to overflow: not a fast server, and not a run whose own expectations say
    // that nothing overflows (a fix being checked must not be told to overflow more).
    let overflow_expected = !matches!(plan.server.accept, AcceptPolicy::Fast)
        && !plan.expect.iter().any(|e| {
            e.asserts_zero("counters.server.TcpExt.ListenOverflows")
                || e.asserts_zero("counters.server.TcpExt.ListenDrops")
        });
    let bursty = matches!(plan.client.arrival, Arrival::Burst { .. });
    if plan.client.program.is_none() {
        s.schedule.in_flight_budget = Some(m.storm.budget);
        s.schedule.peak_rss_bytes = peak_rss_bytes();
    }
    s.warnings = warnings(&s, tally, overflow_expected, bursty);
    let not_started = s.outcomes[crate::record::Outcome::NotStarted];
    if not_started > 0 {
        s.warnings.push(Warning::NotStarted {
            connections: not_started,
            budget: m.storm.budget,
        });
    }
    if let Some(p) = &s.client_program {
        s.warnings.push(Warning::NoConnectionRows {
            command: p.command.clone(),
            log: p.log.clone(),
        });
    }
    if let Some(link) = &s.link {
        let packets = link.to_server.held_at_stop + link.to_client.held_at_stop;
        if packets > 0 {
            s.warnings.push(Warning::LinkNotSettled {
                packets,
                settle_ms: plan.settle.as_millis() as u64,
            });
        }
    }
    judge(plan, m, &mut s)?;
    Ok(s)
}

/// The accept queue as the kernel reported it: its limit right after `listen()`, and the most
/// the samples (and the final reading) saw in it and in SYN-RECV.
fn listen(plan: &RunPlan, m: &Measured) -> Listen {
    let (accept_queue_max_seen, syn_recv_max_seen) = peaks(&m.series, m.after.queue);
    Listen {
        // A program of the user's own passes its own backlog: what its socket shows.
        backlog_requested: match &plan.server.program {
            Some(_) => m.initial_queue.accept_queue_limit.map_or(-1, |l| l as i32),
            None => plan.server.backlog,
        },
        accept_queue_limit: m.initial_queue.accept_queue_limit,
        accept_queue_capacity: m.initial_queue.accept_queue_limit.map(|l| l + 1),
        accept_queue_max_seen,
        syn_recv_max_seen,
        listeners: if m.limits.len() > 1 {
            m.limits.clone()
        } else {
            Vec::new()
        },
    }
}

/// The most the samples and the final reading saw in the accept queue and in SYN-RECV.
pub fn peaks(series: &crate::counters::Series, last: crate::counters::QueueSample) -> (u32, u32) {
    let queue = series.points.iter().map(|p| p.queue).chain([last]);
    (
        queue.clone().map(|q| q.accept_queue).max().unwrap_or(0),
        queue.filter_map(|q| q.syn_recv).max().unwrap_or(0),
    )
}

/// The gap between bursts, for a storm of repeated bursts (the rate's span; see
/// [`Tally::schedule`]).
fn burst_interval_us(plan: &RunPlan) -> Option<u64> {
    match plan.client.arrival {
        Arrival::Burst {
            interval: Some(i), ..
        } => Some(i.as_micros() as u64),
        _ => None,
    }
}

/// Checks the plan's expectations against `s`. Expectations on the trace cannot be judged when
/// nothing was traced: they are set aside with a warning rather than failed (the run's other
/// evidence still counts).
fn judge(plan: &RunPlan, m: &Measured, s: &mut Summary) -> anyhow::Result<()> {
    let (judged, unjudged): (Vec<_>, Vec<_>) = plan
        .expect
        .iter()
        .partition(|e| s.drops.recorded || !e.reads("drops."));
    if !unjudged.is_empty() {
        s.warnings.push(Warning::DropExpectationsUnchecked {
            why: s
                .drops
                .unavailable
                .clone()
                .unwrap_or_else(|| "unknown".into()),
            texts: unjudged.iter().map(|e| e.text.clone()).collect(),
        });
    }
    // The one place the summary is read by path: `[expect]` paths are what users write.
    let value = serde_json::to_value(&*s)?;
    // A counter name, or `drops.by_reason.<REASON>` for a drop reason this kernel names.
    let known = |name: &str| match name.strip_prefix("drops.by_reason.") {
        Some(reason) => s.drops.recorded && m.reasons_known.contains(reason),
        None => m.before.server.get(name).is_some(),
    };
    s.expectations = judged.iter().map(|e| e.check(&value, &known)).collect();
    Ok(())
}

/// Warnings about runs that may not show what the user thinks: each says why and what to try.
/// `bursty`: a burst is fired from one thread, so its lag is expected and not warned about.
pub fn warnings(s: &Summary, tally: &Tally, overflow_expected: bool, bursty: bool) -> Vec<Warning> {
    let mut w = Vec::new();
    if let Some(p99_ms) = s.schedule.lag_ms.p99.filter(|p| !bursty && *p > 10.0) {
        w.push(Warning::ScheduleLag { p99_ms });
    }
    let d = &s.drops;
    if d.lost_events > 0 {
        w.push(Warning::TraceEventsLost {
            events: d.lost_events,
        });
    }
    if let Some(why) = &d.read_error {
        w.push(Warning::TraceStoppedEarly { why: why.clone() });
    }
    let doubts = s.trace_doubts();
    if !doubts.is_empty() {
        w.push(Warning::TraceNotOurs { doubts });
    }
    let machine = d.counts.machine_drops();
    if !machine.is_empty() {
        w.push(Warning::MachineDrops { reasons: machine });
    }
    let errno_count = |e: i32| tally.errno(e) as usize;
    let ports = errno_count(libc::EADDRNOTAVAIL);
    if ports > 0 {
        w.push(Warning::OutOfPorts { connections: ports });
    }
    let fds = errno_count(libc::EMFILE) + errno_count(libc::ENFILE);
    if fds > 0 {
        w.push(Warning::OutOfDescriptors { connections: fds });
    }
    if overflow_expected && s.counter("server", "TcpExt.ListenOverflows") == 0 {
        w.push(Warning::NoOverflow { bursts: bursty });
    }
    if let Some(link) = &s.link {
        let refused = link.to_server.write_errors + link.to_client.write_errors;
        if link.ring_drops > 0 || refused > 0 {
            w.push(Warning::LinkLoss {
                ring_drops: link.ring_drops,
                refused,
            });
        }
        if link.calibration_capped {
            w.push(Warning::CalibrationCapped {
                used_us: link.calibration_us,
            });
        }
        if link.ring_drops_unknown {
            w.push(Warning::RingDropsUnknown);
        }
        if link.lateness_us_p99 > 1000 {
            w.push(Warning::LinkLate {
                p99_us: link.lateness_us_p99,
            });
        }
    }
    if s.sampling.failed > 0 {
        w.push(Warning::SamplerFailed {
            ticks: s.sampling.failed,
        });
    }
    if let Some(flood) = s.flood.as_ref().filter(|f| f.errors > 0) {
        w.push(Warning::FloodRefused { syns: flood.errors });
    }
    if s.interrupted {
        w.push(Warning::Interrupted {
            attempted: s.connections,
            planned: s.planned,
        });
    }
    w
}

/// This process's peak resident memory so far: `VmHWM` of `/proc/self/status`, the high-water
/// mark of this program's own memory. Not `getrusage`'s `ru_maxrss`: Linux carries that across
/// `execve`, so a lab started by a large parent (a test harness at 300 MB) reported the
/// parent's size at the fork.
fn peak_rss_bytes() -> Option<u64> {
    let status = std::fs::read_to_string("/proc/self/status").ok()?;
    let line = status.lines().find(|l| l.starts_with("VmHWM:"))?;
    let kib: u64 = line.split_whitespace().nth(1)?.parse().ok()?;
    Some(kib * 1024)
}
