//! The deliberately slow server: a listener with a chosen backlog and an accept policy that
//! decides how fast connections leave the accept queue. Each accepted connection reads an
//! HTTP/1.1 request (up to the blank line), answers `200 OK` with a fixed body, and closes, so
//! `wrk` and `curl` can talk to it as well as the lab's own storm. When the server speaks first
//! (`client.request_bytes = 0`, like MySQL or SMTP), it sends the same bytes as a greeting as
//! soon as it accepts, without reading.
//!
//! The server runs on its own OS thread inside the server namespace, with a single-threaded
//! Tokio runtime: one accept loop, like the event loop of Node, Nginx or Envoy.

mod accept;
mod conn;
pub mod listener;
pub mod program;

use std::net::SocketAddr;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::thread::JoinHandle;
use std::time::Instant;

use tokio::net::TcpListener;
use tokio::sync::oneshot;

use self::accept::{accept_loop, Served};
use self::conn::Reply;
use crate::error::Failure;
use crate::netns::Netns;
use crate::plan::ServerPlan;
pub use crate::record::stats::ServerStats;
use crate::wire::response;

#[derive(Default)]
struct Counts {
    accepted: AtomicU64,
    served: AtomicU64,
}

/// A listening server. [`Server::begin`] starts its accept policy at the storm's time zero;
/// [`Server::stop`] ends it and returns its statistics.
pub struct Server {
    begin: Option<oneshot::Sender<Instant>>,
    /// The lab's own server: its thread and the way to stop it.
    own: Option<(oneshot::Sender<()>, JoinHandle<ServerStats>)>,
    /// Or a program of the user's own, and the windows it is to be paused in.
    program: Option<crate::program::Program>,
    pauses: Option<Vec<(std::time::Duration, std::time::Duration)>>,
}

impl Server {
    /// Starts the server in `ns`, listening on `addr`, and returns once `listen()` has happened.
    /// Until [`Server::begin`], connections only queue (nothing is accepted).
    /// With `server.command`, the program is started instead, its output into `log`.
    pub fn start(
        ns: &Netns,
        addr: SocketAddr,
        plan: &ServerPlan,
        log: &std::path::Path,
    ) -> Result<Server, Failure> {
        if let Some(p) = &plan.program {
            let pauses = match &plan.accept {
                crate::plan::AcceptPolicy::Pause { windows } => Some(windows.clone()),
                _ => None,
            };
            return Ok(Server {
                begin: None,
                own: None,
                program: Some(program::start(ns, addr, p, log)?),
                pauses,
            });
        }
        let (ready_tx, ready_rx) = std::sync::mpsc::channel();
        let (stop, mut stop_rx) = oneshot::channel();
        let (begin, begin_rx) = oneshot::channel::<Instant>();
        let ns = ns.try_clone()?;
        let backlog = plan.backlog;
        let policy = plan.accept.clone();
        let speaks_first = plan.talk == crate::wire::Talk::ServerFirst;
        let response = Arc::<[u8]>::from(response(plan.response_bytes));
        let thread = std::thread::Builder::new()
            .name("bl-server".into())
            .spawn(move || {
                let setup =
                    (|| -> Result<(tokio::runtime::Runtime, std::net::TcpListener), String> {
                        ns.enter().map_err(|e| e.message)?;
                        let rt = tokio::runtime::Builder::new_current_thread()
                            .enable_all()
                            .build()
                            .map_err(|e| e.to_string())?;
                        let l = listener::bind(addr, backlog).map_err(|e| {
                            format!("cannot listen on {addr} with backlog {backlog}: {e}")
                        })?;
                        Ok((rt, l))
                    })();
                let (rt, std_listener) = match setup {
                    Ok(v) => {
                        let _ = ready_tx.send(Ok(()));
                        v
                    }
                    Err(e) => {
                        let _ = ready_tx.send(Err(e));
                        return ServerStats::default();
                    }
                };
                let counts = Arc::new(Counts::default());
                rt.block_on(async {
                    let listener = TcpListener::from_std(std_listener).expect("register listener");
                    let t0 = tokio::select! {
                        _ = &mut stop_rx => return,
                        t0 = begin_rx => match t0 { Ok(t0) => t0, Err(_) => return },
                    };
                    let served = Served {
                        reply: Reply {
                            response,
                            speaks_first,
                        },
                        counts: counts.clone(),
                    };
                    tokio::select! {
                        _ = stop_rx => {}
                        _ = accept_loop(&listener, policy, t0, served) => {}
                    }
                });
                ServerStats {
                    accepted: counts.accepted.load(Ordering::Relaxed),
                    served: counts.served.load(Ordering::Relaxed),
                    program: None,
                }
            })
            .map_err(|e| Failure::environment(format!("cannot start the server thread: {e}")))?;
        match ready_rx.recv() {
            Ok(Ok(())) => Ok(Server {
                begin: Some(begin),
                own: Some((stop, thread)),
                program: None,
                pauses: None,
            }),
            Ok(Err(e)) => Err(Failure::environment(e)),
            Err(_) => Err(Failure::environment("the server thread died during setup")),
        }
    }

    /// Starts the accept policy; its times (pause windows) count from `t0`. A program of the
    /// user's own is paused in the same windows (SIGSTOP).
    pub fn begin(&mut self, t0: Instant) {
        if let Some(b) = self.begin.take() {
            let _ = b.send(t0);
        }
        if let (Some(p), Some(windows)) = (&mut self.program, self.pauses.take()) {
            p.pause_in(t0, windows);
        }
    }

    pub fn stop(self) -> ServerStats {
        if let Some(p) = self.program {
            let (command, log) = (p.command.clone(), p.log_name());
            return ServerStats {
                program: Some(crate::record::stats::ProgramStats {
                    command,
                    exit: p.stop(),
                    log,
                }),
                ..Default::default()
            };
        }
        let (stop, thread) = self.own.expect("the lab's own server, or a program");
        let _ = stop.send(());
        thread.join().expect("server thread panicked")
    }
}
