//! A program of the user's own as the server (`server.command`): started in the server
//! namespace, then waited for until its listening sockets appear on the port (sock_diag) and
//! their number holds still.

use std::net::SocketAddr;
use std::path::Path;
use std::time::{Duration, Instant};

use crate::counters::ListenDiag;
use crate::error::Failure;
use crate::family::Family;
use crate::netns::Netns;
use crate::plan::ProgramPlan;
use crate::program::{describe, Program};

/// Starts `plan`'s program in `ns`, its output into `log`, and waits until it listens on
/// `addr`'s port (or exits, or the startup timeout passes: each an error quoting its last
/// words).
pub fn start(
    ns: &Netns,
    addr: SocketAddr,
    plan: &ProgramPlan,
    log: &Path,
) -> Result<Program, Failure> {
    let mut program = Program::start("server.command", ns, addr.ip(), plan, log)?;
    wait_listening(&mut program, ns, addr.port(), plan.startup_timeout)?;
    Ok(program)
}

fn wait_listening(
    program: &mut Program,
    ns: &Netns,
    port: u16,
    timeout: Duration,
) -> Result<(), Failure> {
    let mut diag = ListenDiag::open(ns, port, Family::default())?.with_mapped(true);
    let deadline = Instant::now() + timeout;
    // Once one socket listens, the others of a program with several (SO_REUSEPORT workers)
    // get until the count has held still for SETTLE.
    const SETTLE: Duration = Duration::from_millis(300);
    let mut seen: Option<(u32, Instant)> = None;
    loop {
        let n = diag
            .sample()
            .map_err(|e| Failure::environment(format!("sock_diag: {e}")))?
            .listeners;
        match seen {
            Some((m, since)) if m == n && since.elapsed() >= SETTLE => return Ok(()),
            Some((m, _)) if m == n => {}
            _ if n > 0 => seen = Some((n, Instant::now())),
            _ => {}
        }
        if seen.is_some() && Instant::now() > deadline + SETTLE {
            return Ok(());
        }
        if let Some(status) = program.exited() {
            return Err(Failure::environment(format!(
                "server.command `{}` {} before listening on port {port}{}",
                program.command,
                describe(status),
                program.last_words()
            )));
        }
        if seen.is_none() && Instant::now() > deadline {
            return Err(Failure::environment(format!(
                "server.command `{}` did not listen on port {port} within {:?} (server.port, server.startup_timeout){}",
                program.command,
                timeout,
                program.last_words()
            )));
        }
        std::thread::sleep(Duration::from_millis(20));
    }
}
