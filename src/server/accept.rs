//! The accept policies: how fast connections leave the accept queue. Each
//! [`AcceptPolicy`] variant is one function here, and [`accept_loop`] only dispatches.
//!
//! Adding a policy means three things: one variant in [`crate::plan::AcceptPolicy`], its
//! parsing in the plan (`crate::plan`), and one `accept_…` function here called from
//! [`accept_loop`]. A policy takes connections with `listener.accept()` and hands each one to
//! [`Served::take`], which counts it and serves it on its own task.

use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::time::{Duration, Instant};

use futures::FutureExt;
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::{OwnedSemaphorePermit, Semaphore};

use super::conn::{handle, Reply};
use super::Counts;
use crate::plan::{AcceptPolicy, PAUSE_OPENS_EARLY as EARLY};

/// Serves accepted connections: what they get, and where they are counted.
pub(super) struct Served {
    pub(super) reply: Reply,
    pub(super) counts: Arc<Counts>,
}

impl Served {
    /// Counts `stream` as accepted and serves it on its own task, which holds `permit` (a
    /// worker, if any) until the connection is done and waits `service` before answering.
    fn take(&self, stream: TcpStream, permit: Option<OwnedSemaphorePermit>, service: Duration) {
        self.counts.accepted.fetch_add(1, Ordering::Relaxed);
        let reply = self.reply.clone();
        let counts = self.counts.clone();
        tokio::spawn(async move {
            if handle(stream, &reply, service).await.is_ok() {
                counts.served.fetch_add(1, Ordering::Relaxed);
            }
            drop(permit);
        });
    }
}

/// Runs `policy` on `listener` until dropped; pause windows count from `t0`.
pub(super) async fn accept_loop(
    listener: &TcpListener,
    policy: AcceptPolicy,
    t0: Instant,
    served: Served,
) {
    match policy {
        AcceptPolicy::Never => accept_never().await,
        AcceptPolicy::Fast => accept_fast(listener, &served).await,
        AcceptPolicy::Rate { per_sec } => accept_at_rate(listener, &served, per_sec).await,
        AcceptPolicy::Pause { windows } => accept_with_pauses(listener, &served, t0, windows).await,
        AcceptPolicy::Workers { count, service } => {
            accept_with_workers(listener, &served, count, service).await
        }
    }
}

/// Never calls `accept()`: the accept queue fills and stays full.
async fn accept_never() {
    std::future::pending().await
}

/// Accepts and serves as fast as connections arrive.
async fn accept_fast(listener: &TcpListener, served: &Served) {
    loop {
        if let Ok((s, _)) = listener.accept().await {
            served.take(s, None, Duration::ZERO);
        }
    }
}

/// Accepts `per_sec` connections per second while any are waiting.
async fn accept_at_rate(listener: &TcpListener, served: &Served, per_sec: f64) {
    // Credit accrues at `per_sec` and each accept spends one. It is forgotten only when the
    // accept queue is found empty (an idle server banks no burst), never because the thread
    // was descheduled or a timer ticked late, so the rate holds on a busy machine.
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
            served.take(s, None, Duration::ZERO);
            credit -= 1.0;
        }
    }
}

/// Accepts fast, except inside `windows` (from `t0`), then fast for good.
async fn accept_with_pauses(
    listener: &TcpListener,
    served: &Served,
    t0: Instant,
    windows: Vec<(Duration, Duration)>,
) {
    let at = |d: Duration| tokio::time::Instant::from_std(t0 + d);
    for (start, end) in windows {
        // Accept freely until the window opens, then stop until it closes. Timers fire up to a
        // tick (1 ms) late, so a window opens up to EARLY before its start rather than letting
        // in connections that arrive at its start.
        let open = at(start)
            .checked_sub(EARLY)
            .unwrap_or_else(tokio::time::Instant::now);
        if tokio::time::Instant::now() < open {
            tokio::select! {
                _ = tokio::time::sleep_until(open) => {}
                _ = accept_fast(listener, served) => {}
            }
        }
        tokio::time::sleep_until(at(end)).await;
    }
    accept_fast(listener, served).await
}

/// A pool of `count` workers, each holding a connection for `service`: a connection is taken
/// off the queue only when a worker is free.
async fn accept_with_workers(
    listener: &TcpListener,
    served: &Served,
    count: u32,
    service: Duration,
) {
    let pool = Arc::new(Semaphore::new(count as usize));
    loop {
        let permit = pool.clone().acquire_owned().await.expect("semaphore open");
        if let Ok((s, _)) = listener.accept().await {
            served.take(s, Some(permit), service);
        }
    }
}
