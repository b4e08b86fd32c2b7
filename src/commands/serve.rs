//! `backlog-lab serve`: the lab's hosts and its slow server, without a storm, so that any client
//! (curl, wrk, ab, a real application) can be pointed at it from inside the client namespace.
//! The namespace is reachable as `/proc/PID/fd/N` of this process, which `nsenter --net=` takes.
//! Bounded by `--for`; Ctrl-C ends it early (exit 130). At the end it prints the counters that
//! moved and writes `scenario.toml`, `environment.json` and `counters.csv`.

use std::io::Write;
use std::time::{Duration, Instant};

use crate::cli::ServeArgs;
use crate::counters::Snapshot;
use crate::error::Failure;
use crate::lab::Lab;
use crate::plan::RunPlan;
use crate::results::files;
use crate::results::write::{CounterPair, RunWriter};
use crate::terminal;

/// `backlog-lab serve`: one scenario's lab and server, no storm of its own.
pub fn command(args: &ServeArgs, out: &mut impl Write) -> anyhow::Result<u8> {
    let plan = super::load_single(&args.scenario, "serve")?;
    if plan.flood.is_some() {
        return Err(Failure::bad_input(
            "`serve` sends no traffic of its own, and this scenario has a [flood]: \
             remove it (--set flood=) or use `run`",
        )
        .into());
    }
    crate::netns::become_root_in_user_namespace_if_needed()?;
    // The folder first, so a bad --out is bad input before anything is built.
    let folder = RunWriter::create(args.out.as_deref(), "serve", args.force)?;
    serve(&plan, args.duration, &folder, out)
}

/// Serves `plan`'s server for `duration` (or until a stop signal), writing into `folder`.
fn serve(
    plan: &RunPlan,
    duration: Duration,
    folder: &RunWriter,
    out: &mut impl Write,
) -> anyhow::Result<u8> {
    let nofile = crate::lab::raise_nofile_limit();
    let started_at = humantime::format_rfc3339_seconds(std::time::SystemTime::now()).to_string();
    let lab =
        Lab::stand_up(plan, folder.dir(), None).inspect_err(|_| folder.discard_if_unused())?;
    folder.scenario(&plan.scenario_text)?;
    folder.environment(&lab.environment(plan, started_at, nofile))?;
    let Lab {
        topo,
        mut server,
        mut probes,
        target,
        initial_queue,
        ..
    } = lab;
    let s = probes.sample(Instant::now())?;
    let before = [s.server, s.client];
    server.begin(Instant::now());

    // Stop signals were caught before anything was created (`crate::interrupt`), so a client
    // that is quick to finish and signal never finds the default action (death) in place.
    let pid = std::process::id();
    let ns = format!("/proc/{pid}/fd/{}", topo.client.raw_fd());
    let server_ns = format!("/proc/{pid}/fd/{}", topo.server.raw_fd());
    let url = format!("http://{target}/");
    let port = target.port();
    writeln!(
        out,
        "serving {target} (listen backlog {} -> accept queue limit {}) for {}; Ctrl-C stops\n\
         client namespace: {ns}\n\
         server namespace: {server_ns}   (nsenter --net={server_ns} ss -lnt)\n  \
         backlog-lab watch --netns {server_ns} --port {port}\n  \
         nsenter --net={ns} curl -s {url}\n  \
         nsenter --net={ns} wrk -t2 -c64 -d10s -H 'Connection: close' {url}",
        plan.server.backlog,
        initial_queue
            .accept_queue_limit
            .map_or("?".into(), |l| l.to_string()),
        humantime::format_duration(duration),
    )?;
    out.flush()?;

    let end = Instant::now() + duration;
    while Instant::now() < end && crate::interrupt::requested().is_none() {
        std::thread::sleep((end - Instant::now()).min(Duration::from_millis(20)));
    }
    let stats = server.stop();
    writeln!(
        out,
        "\nserver accepted {}, served {}",
        stats.accepted, stats.served
    )?;
    let s = probes.sample(Instant::now())?;
    let after = [s.server, s.client];
    for (i, ns) in ["server", "client"].iter().enumerate() {
        let moved = Snapshot::moved(&before[i], &after[i]);
        out.write_all(terminal::counter_table(ns, &moved).as_bytes())?;
    }
    let pairs = [
        CounterPair {
            namespace: "server",
            before: &before[0],
            after: &after[0],
        },
        CounterPair {
            namespace: "client",
            before: &before[1],
            after: &after[1],
        },
    ];
    folder.counters(&pairs)?;
    writeln!(
        out,
        "\ncounters in {}",
        folder.dir().join(files::COUNTERS).display()
    )?;
    // Ended by a stop signal: 128 + the signal, as `run` (130 for Ctrl-C).
    Ok(crate::interrupt::requested().map_or(0, crate::interrupt::exit_code))
}
