//! One storm through a standing [`Lab`], from time zero to teardown: trace, sample, start the
//! server's accept policy, storm (and flood), then stop every observer in the order that keeps
//! their windows aligned, and tie the trace events to the connections. What comes out is
//! [`Measured`]: everything recorded, nothing judged.

use std::collections::{BTreeMap, BTreeSet};
use std::time::{Duration, Instant};

use super::Lab;
use crate::client::flood::Flood;
use crate::client::program::ClientProgram;
use crate::client::{AttemptSpec, Progress, Storm, StormResult};
use crate::counters::{QueueSample, Sample, Sampler, SamplingStats, Series};
use crate::drops::{self, DropStats, PortStarts, Row};
use crate::plan::RunPlan;
use crate::record::stats::{FloodStats, ProgramStats};
use crate::record::{RowSink, Tally};
use crate::server::ServerStats;
use crate::topo::{claim, LinkStats};

/// Everything one storm produced, as recorded.
pub struct Measured {
    pub storm: StormResult,
    /// The storm's connections, folded in as they finished (their rows are in the sink).
    pub tally: Tally,
    /// The counters and the queue just before time zero and after the last connection.
    pub before: Sample,
    pub after: Sample,
    pub series: Series,
    pub sampling: SamplingStats,
    pub link: Option<LinkStats>,
    pub flood: Option<FloodStats>,
    /// The trace events of this run, each tied to its connection where it has one.
    pub drop_rows: Vec<Row>,
    pub drops: DropStats,
    /// Drop reasons this kernel names, for expectations on `drops.by_reason.*`.
    pub reasons_known: BTreeSet<String>,
    /// The listener's queue right after `listen()` (its limit is the kernel's clamp).
    pub initial_queue: QueueSample,
    /// Every listening socket's limit right after `listen()`.
    pub limits: Vec<u32>,
    pub server: ServerStats,
    /// A client of the user's own (`client.command`) instead of the storm: how it ended and how
    /// long it ran.
    pub client: Option<(ProgramStats, Duration)>,
    /// Effective sysctls per namespace.
    pub sysctls: BTreeMap<String, BTreeMap<String, String>>,
}

/// Runs `plan`'s storm through `lab` and tears the lab down. `tick` is called about every 100 ms
/// while the storm runs (the progress line); `rows` gets each connection's record as it
/// finishes and is flushed as often, so that whatever happens after, the rows are on disk.
pub fn run(
    lab: Lab,
    plan: &RunPlan,
    tick: &mut dyn FnMut(&Progress),
    rows: &mut dyn RowSink,
) -> anyhow::Result<Measured> {
    let sysctls = lab.sysctls();
    let Lab {
        mut topo,
        mut server,
        mut probes,
        target,
        initial_queue,
        limits,
        client_log,
    } = lab;
    // Tracing spans the counters' first and last readings: every event they saw is traced.
    let lab_addrs = topo.addrs;
    let watched = drops::Watched {
        server: target,
        lab: lab_addrs,
        any_peer: false,
        rst_close: plan.client.close == crate::wire::Close::Rst,
    };
    let tracing = drops::Recording::start(watched, plan.trace_drops);
    // Which other labs hold a subnet now (and, below, at the end): read before time zero.
    let own = topo.subnet();
    let others_before = claim::other_labs(own);
    let budget = in_flight_budget(plan);
    // Time zero comes after every setup step, the table's growth too: no catch-up burst.
    let t0 = Instant::now() + Duration::from_millis(20);
    let t0_mono_ns = drops::monotonic_ns(t0);
    tracing.open_window();
    let before = probes.sample(t0)?;
    let ring_drops_before = topo.ring_drops();
    server.begin(t0);
    let sampler = Sampler::start(probes, t0, plan.sample_interval);
    let spec = AttemptSpec {
        target,
        connect_timeout: plan.client.connect_timeout,
        response_timeout: plan.client.response_timeout,
        t0,
        request: crate::wire::request(&plan.client.talk).into(),
        close: plan.client.close,
    };
    let flood = plan
        .flood
        .as_ref()
        .map(|f| {
            let sources = lab_addrs.flood_net;
            Flood::start(&topo.client, f, target, sources, t0, plan.client.seed)
        })
        .transpose()?;
    let traffic = traffic(&topo, plan, spec, budget, &client_log, tick, rows)?;
    let flood = flood.map(Flood::stop);
    // What the storm's last packets cause in the kernel (drops, cookies, SYN-ACK retries, RSTs)
    // happens after its last connection ended: wait for it before the last reading.
    // After a stop signal, no waiting beyond the connections in flight.
    if crate::interrupt::count() == 0 {
        topo.settle(plan.link.rtt, plan.settle);
    }

    let (mut probes, series, sampling) = sampler.stop();
    tracing.close_window();
    let after = probes.sample(t0).unwrap_or_else(|e| {
        eprintln!("warning: final counter reading failed ({e}); using the last sample");
        last_sample(&series).unwrap_or_else(|| before.clone())
    });
    let mut trace = tracing.stop();
    let server_stats = server.stop();
    let link = topo.stop_link(ring_drops_before);
    drop(probes);
    drop(topo);
    let mut other_labs = others_before;
    other_labs.extend(claim::other_labs(own));
    other_labs.sort_unstable();
    other_labs.dedup();

    let drop_rows = drops::attribute(&mut trace, traffic.ports, t0_mono_ns, &lab_addrs);
    let mut drops = DropStats::of(&trace, &drop_rows);
    drops.other_labs = other_labs;
    Ok(Measured {
        drops,
        reasons_known: std::mem::take(&mut trace.reasons_known),
        drop_rows,
        storm: traffic.storm,
        tally: traffic.tally,
        before,
        after,
        series,
        sampling,
        link,
        flood,
        initial_queue,
        limits,
        server: server_stats,
        client: traffic.client,
        sysctls,
    })
}

/// The storm and what its connections add up to, or a client of the user's own instead (then
/// with no records).
#[derive(Default)]
struct Traffic {
    storm: StormResult,
    client: Option<(ProgramStats, Duration)>,
    tally: Tally,
    ports: PortStarts,
}

fn traffic(
    topo: &crate::topo::Topology,
    plan: &RunPlan,
    spec: AttemptSpec,
    budget: u64,
    client_log: &std::path::Path,
    tick: &mut dyn FnMut(&Progress),
    rows: &mut dyn RowSink,
) -> anyhow::Result<Traffic> {
    Ok(match &plan.client.program {
        None => storm(topo, plan, spec, budget, tick, rows)?,
        Some(p) => {
            let (stats, ran) = client_program(topo, plan, p, client_log, spec.t0, tick)?;
            let storm = StormResult {
                interrupted: crate::interrupt::count() > 0,
                ..Default::default()
            };
            Traffic {
                storm,
                client: Some((stats, ran)),
                ..Traffic::default()
            }
        }
    })
}
/// The storm's in-flight budget (`client.max_in_flight`, at most what the open-files limit
/// allows; said when lowered), with the descriptor table grown for it before time zero
/// ([`crate::client::reserve_descriptors`]).
fn in_flight_budget(plan: &RunPlan) -> u64 {
    let nofile = nix::sys::resource::getrlimit(nix::sys::resource::Resource::RLIMIT_NOFILE)
        .map_or(1024, |(soft, _)| soft);
    let (budget, lowered) = crate::client::in_flight_budget(plan.client.max_in_flight, nofile);
    // A client program of the user's own opens its connections itself.
    if lowered && plan.client.program.is_none() {
        eprintln!(
            "note: client.max_in_flight = {} is more than the open-files limit ({nofile}) allows; \
             the storm keeps at most {budget} connections open",
            plan.client.max_in_flight.unwrap_or(0)
        );
    }
    crate::client::reserve_descriptors(budget, plan.client.connections, nofile);
    budget
}

/// The lab's own storm, from time zero to its last connection. Every 100 ms, the records of the
/// connections that finished go to `rows` and into the tally. A sink that fails (a full disk)
/// is warned about at once and fails the run once the storm is over.
fn storm(
    topo: &crate::topo::Topology,
    plan: &RunPlan,
    spec: AttemptSpec,
    budget: u64,
    tick: &mut dyn FnMut(&Progress),
    rows: &mut dyn RowSink,
) -> anyhow::Result<Traffic> {
    let storm = Storm::start(&topo.client, &plan.client, spec, budget)?;
    let mut tally = Tally::with_capacity(plan.client.connections);
    let mut ports = PortStarts::default();
    let mut failed: Option<anyhow::Error> = None;
    loop {
        let last = storm.is_finished();
        let mut written = Ok(());
        for rec in storm.finished() {
            tally.add(&rec);
            ports.add(&rec);
            if written.is_ok() && failed.is_none() {
                written = rows.push(rec);
            }
        }
        if failed.is_none() {
            if let Err(e) = written.and_then(|()| rows.flush(last)) {
                eprintln!("\nwarning: {e:#}; the storm goes on, and the run fails at its end");
                failed = Some(e);
            }
        }
        tick(&storm.progress);
        if last {
            break;
        }
        std::thread::sleep(Duration::from_millis(100));
    }
    let storm = storm.join()?;
    match failed {
        Some(e) => Err(e),
        None => Ok(Traffic {
            storm,
            client: None,
            tally,
            ports,
        }),
    }
}

/// A client of the user's own instead of the storm, from time zero until it ends or its
/// `client.duration` is up.
fn client_program(
    topo: &crate::topo::Topology,
    plan: &RunPlan,
    program: &crate::plan::ProgramPlan,
    log: &std::path::Path,
    t0: Instant,
    tick: &mut dyn FnMut(&Progress),
) -> anyhow::Result<(ProgramStats, Duration)> {
    let mut client = ClientProgram::start(
        &topo.client,
        topo.addrs.server_at(plan.server.port),
        program,
        plan.client.duration,
        log,
        t0,
    )?;
    let progress = Progress::new(0);
    while !client.is_finished() {
        tick(&progress);
        std::thread::sleep(Duration::from_millis(100));
    }
    Ok(client.stop())
}

/// The series' last point as a full sample, for when the final reading fails.
fn last_sample(series: &Series) -> Option<Sample> {
    let (server, client) = series.last_snapshots()?;
    let p = series.points.last()?;
    Some(Sample {
        t_us: p.t_us,
        server,
        client,
        queue: p.queue,
    })
}
