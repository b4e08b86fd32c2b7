//! `backlog-lab serve`: the lab's hosts and its slow server, without a storm, so that any client
//! (curl, wrk, ab, a real application) can be pointed at it from inside the client namespace.
//! The namespace is reachable as `/proc/PID/fd/N` of this process, which `nsenter --net=` takes.
//! Bounded by `--for`; Ctrl-C ends it early. At the end it prints the counters that moved.

use std::io::Write;
use std::net::SocketAddrV4;
use std::time::{Duration, Instant};

use crate::counters::{CounterFiles, ListenDiag, Snapshot};
use crate::error::Failure;
use crate::plan::RunPlan;
use crate::report;
use crate::server::Server;
use crate::topo::{link, Topology};

/// Serves `plan`'s server for `duration` (or until Ctrl-C).
pub fn serve(plan: &RunPlan, duration: Duration, out: &mut impl Write) -> anyhow::Result<u8> {
    let topo = Topology::build(&plan.server.sysctl, &plan.client.sysctl)?;
    let target = SocketAddrV4::new(link::SERVER_ADDR, plan.server.port);
    let mut server = Server::start(&topo.server, target, &plan.server)?;
    let mut counters = [
        CounterFiles::open(&topo.server)?,
        CounterFiles::open(&topo.client)?,
    ];
    let limit = ListenDiag::open(&topo.server, plan.server.port)?
        .sample()
        .map_err(|e| Failure::environment(format!("sock_diag: {e}")))?
        .accept_queue_limit;
    let before = [counters[0].read()?, counters[1].read()?];
    server.begin(Instant::now());

    let ns = format!("/proc/{}/fd/{}", std::process::id(), topo.client.raw_fd());
    let url = format!("http://{target}/");
    writeln!(
        out,
        "serving {target} (listen backlog {} -> accept queue limit {}) for {}; Ctrl-C stops\n\
         client namespace: {ns}\n  nsenter --net={ns} curl -s {url}\n  \
         nsenter --net={ns} wrk -t2 -c64 -d10s -H 'Connection: close' {url}",
        plan.server.backlog,
        limit.map_or("?".into(), |l| l.to_string()),
        humantime::format_duration(duration),
    )?;
    out.flush()?;

    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()?;
    rt.block_on(async {
        tokio::select! {
            _ = tokio::time::sleep(duration) => {}
            _ = tokio::signal::ctrl_c() => {}
        }
    });
    let stats = server.stop();
    writeln!(
        out,
        "\nserver accepted {}, served {}",
        stats.accepted, stats.served
    )?;
    for (i, ns) in ["server", "client"].iter().enumerate() {
        let moved = Snapshot::moved(&before[i], &counters[i].read()?);
        out.write_all(report::counter_table(ns, &moved).as_bytes())?;
    }
    Ok(0)
}
