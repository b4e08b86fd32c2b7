//! A client of the user's own (`client.command`: `wrk`, `h2load`, `curl` in a loop) run in the
//! client namespace instead of the lab's storm. It starts at time zero and may run for
//! `client.duration`; then it is stopped (SIGTERM, SIGKILL after a grace period), and so it is
//! at the first Ctrl-C. Its output goes to `client.log`. The kernel's side (counters, queues,
//! drops) is recorded as for any storm; per-connection records there are none.

use std::net::SocketAddr;
use std::path::Path;
use std::time::{Duration, Instant};

use crate::error::Failure;
use crate::netns::Netns;
use crate::plan::ProgramPlan;
use crate::program::Program;
use crate::record::stats::ProgramStats;

/// The client program, running.
pub struct ClientProgram {
    program: Program,
    deadline: Instant,
    started: Instant,
}

impl ClientProgram {
    /// Starts `plan`'s program in `ns` at `t0` (`{addr}` is the server's address), to be stopped
    /// after `duration`.
    pub fn start(
        ns: &Netns,
        target: SocketAddr,
        plan: &ProgramPlan,
        duration: Duration,
        log: &Path,
        t0: Instant,
    ) -> Result<ClientProgram, Failure> {
        std::thread::sleep(t0.saturating_duration_since(Instant::now()));
        let program = Program::start("client.command", ns, target.ip(), plan, log)?;
        let started = Instant::now();
        Ok(ClientProgram {
            program,
            deadline: started + duration,
            started,
        })
    }

    /// It ended by itself, its time is up, or a stop signal came.
    pub fn is_finished(&mut self) -> bool {
        self.program.exited().is_some()
            || Instant::now() >= self.deadline
            || crate::interrupt::count() > 0
    }

    /// Stops it if it still runs; how it ended and how long it ran.
    pub fn stop(self) -> (ProgramStats, Duration) {
        let (command, log) = (self.program.command.clone(), self.program.log_name());
        let ran = self.started.elapsed();
        let exit = self.program.stop();
        (ProgramStats { command, exit, log }, ran)
    }
}
