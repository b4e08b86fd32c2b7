//! The deliberately slow server: a listener with a chosen backlog and an accept policy that
//! decides how fast connections leave the accept queue. Each accepted connection reads an
//! HTTP/1.1 request (up to the blank line), answers `200 OK` with a fixed body, and closes, so
//! `wrk` and `curl` can talk to it as well as the lab's own storm. When the server speaks first
//! (`client.request_bytes = 0`, like MySQL or SMTP), it sends the same bytes as a greeting as
//! soon as it accepts, without reading.
//!
//! The server runs on its own OS thread inside the server namespace, with a single-threaded
//! Tokio runtime: one accept loop, like the event loop of Node, Nginx or Envoy.

pub mod listener;

use std::net::SocketAddrV4;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use futures::FutureExt;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::{oneshot, Semaphore};

use crate::error::Failure;
use crate::plan::{AcceptPolicy, ServerPlan};
use crate::topo::Netns;

/// How much earlier than its start a pause window may begin (timer resolution, with margin).
const EARLY: Duration = Duration::from_millis(2);

/// How long a served connection may take to send its request before the server gives up on it.
const REQUEST_TIMEOUT: Duration = Duration::from_secs(30);

/// What the server did, for the summary.
#[derive(Debug, Clone, Copy, Default, serde::Serialize)]
pub struct ServerStats {
    /// Connections taken off the accept queue.
    pub accepted: u64,
    /// Connections that got a full response.
    pub served: u64,
}

#[derive(Default)]
struct Counts {
    accepted: AtomicU64,
    served: AtomicU64,
}

/// A listening server. [`Server::begin`] starts its accept policy at the storm's time zero;
/// [`Server::stop`] ends it and returns its statistics.
pub struct Server {
    begin: Option<oneshot::Sender<Instant>>,
    stop: oneshot::Sender<()>,
    thread: JoinHandle<ServerStats>,
}

impl Server {
    /// Starts the server in `ns`, listening on `addr`, and returns once `listen()` has happened.
    /// Until [`Server::begin`], connections only queue (nothing is accepted).
    pub fn start(ns: &Netns, addr: SocketAddrV4, plan: &ServerPlan) -> Result<Server, Failure> {
        let (ready_tx, ready_rx) = std::sync::mpsc::channel();
        let (stop, mut stop_rx) = oneshot::channel();
        let (begin, begin_rx) = oneshot::channel::<Instant>();
        let ns = ns.try_clone()?;
        let backlog = plan.backlog;
        let policy = plan.accept.clone();
        let speaks_first = plan.talk == crate::plan::Talk::ServerFirst;
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
                    tokio::select! {
                        _ = stop_rx => {}
                        _ = accept_loop(&listener, policy, t0, Reply { response, speaks_first }, counts.clone()) => {}
                    }
                });
                ServerStats {
                    accepted: counts.accepted.load(Ordering::Relaxed),
                    served: counts.served.load(Ordering::Relaxed),
                }
            })
            .map_err(|e| Failure::environment(format!("cannot start the server thread: {e}")))?;
        match ready_rx.recv() {
            Ok(Ok(())) => Ok(Server {
                begin: Some(begin),
                stop,
                thread,
            }),
            Ok(Err(e)) => Err(Failure::environment(e)),
            Err(_) => Err(Failure::environment("the server thread died during setup")),
        }
    }

    /// Starts the accept policy; its times (pause windows) count from `t0`.
    pub fn begin(&mut self, t0: Instant) {
        if let Some(b) = self.begin.take() {
            let _ = b.send(t0);
        }
    }

    pub fn stop(self) -> ServerStats {
        let _ = self.stop.send(());
        self.thread.join().expect("server thread panicked")
    }
}

fn response(body: u32) -> Vec<u8> {
    let mut r = format!("HTTP/1.1 200 OK\r\nContent-Length: {body}\r\nConnection: close\r\n\r\n")
        .into_bytes();
    r.resize(r.len() + body as usize, b'x');
    r
}

/// What every accepted connection gets.
#[derive(Clone)]
struct Reply {
    response: Arc<[u8]>,
    /// Send without waiting for a request.
    speaks_first: bool,
}

async fn accept_loop(
    listener: &TcpListener,
    policy: AcceptPolicy,
    t0: Instant,
    reply: Reply,
    counts: Arc<Counts>,
) {
    let serve = |stream: TcpStream,
                 permit: Option<tokio::sync::OwnedSemaphorePermit>,
                 service: Duration| {
        counts.accepted.fetch_add(1, Ordering::Relaxed);
        let reply = reply.clone();
        let counts = counts.clone();
        tokio::spawn(async move {
            if handle(stream, &reply, service).await.is_ok() {
                counts.served.fetch_add(1, Ordering::Relaxed);
            }
            drop(permit);
        });
    };
    let accept_freely = || async {
        loop {
            if let Ok((s, _)) = listener.accept().await {
                serve(s, None, Duration::ZERO);
            }
        }
    };
    match policy {
        AcceptPolicy::Never => std::future::pending().await,
        AcceptPolicy::Fast => accept_freely().await,
        AcceptPolicy::Rate { per_sec } => {
            // Credit accrues at `per_sec` and each accept spends one. It is forgotten only when
            // the accept queue is found empty (an idle server banks no burst), never because the
            // thread was descheduled or a timer ticked late, so the rate holds on a busy machine.
            let mut credit = 1.0;
            let mut last = std::time::Instant::now();
            loop {
                let now = std::time::Instant::now();
                credit += (now - last).as_secs_f64() * per_sec;
                last = now;
                if credit < 1.0 {
                    tokio::time::sleep(Duration::from_secs_f64((1.0 - credit) / per_sec)).await;
                    continue;
                }
                let accepted = match listener.accept().now_or_never() {
                    Some(r) => r,
                    None => {
                        let r = listener.accept().await;
                        (credit, last) = (1.0, std::time::Instant::now());
                        r
                    }
                };
                if let Ok((s, _)) = accepted {
                    serve(s, None, Duration::ZERO);
                    credit -= 1.0;
                }
            }
        }
        AcceptPolicy::Pause { windows } => {
            let at = |d: Duration| tokio::time::Instant::from_std(t0 + d);
            for (start, end) in windows {
                // Accept freely until the window opens, then stop until it closes. Timers fire up
                // to a tick (1 ms) late, so a window opens up to EARLY before its start rather than
                // letting in connections that arrive at its start.
                let open = at(start)
                    .checked_sub(EARLY)
                    .unwrap_or_else(tokio::time::Instant::now);
                if tokio::time::Instant::now() < open {
                    tokio::select! {
                        _ = tokio::time::sleep_until(open) => {}
                        _ = accept_freely() => {}
                    }
                }
                tokio::time::sleep_until(at(end)).await;
            }
            accept_freely().await
        }
        AcceptPolicy::Workers { count, service } => {
            let pool = Arc::new(Semaphore::new(count as usize));
            loop {
                let permit = pool.clone().acquire_owned().await.expect("semaphore open");
                if let Ok((s, _)) = listener.accept().await {
                    serve(s, Some(permit), service);
                }
            }
        }
    }
}

/// Reads the request up to the blank line (or EOF) unless the server speaks first, optionally
/// works for `service`, answers, closes.
async fn handle(mut stream: TcpStream, reply: &Reply, service: Duration) -> std::io::Result<()> {
    let mut buf = [0u8; 2048];
    let mut seen = Vec::with_capacity(256);
    let read = async {
        loop {
            let n = stream.read(&mut buf).await?;
            if n == 0 {
                return Ok::<_, std::io::Error>(());
            }
            seen.extend_from_slice(&buf[..n]);
            if seen.windows(4).any(|w| w == b"\r\n\r\n") || seen.len() > 64 * 1024 {
                return Ok(());
            }
        }
    };
    if !reply.speaks_first {
        tokio::time::timeout(REQUEST_TIMEOUT, read)
            .await
            .map_err(|_| std::io::ErrorKind::TimedOut)??;
    }
    if !service.is_zero() {
        tokio::time::sleep(service).await;
    }
    stream.write_all(&reply.response).await?;
    stream.shutdown().await
}
