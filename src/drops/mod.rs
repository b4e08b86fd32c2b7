//! Where each packet died: the kernel's own trace events, recorded during the storm.
//!
//! Counters say *how many* SYNs or ACKs were dropped; these events say *which* and *why*:
//!
//! - `skb:kfree_skb` with its drop reason (`TCP_LISTEN_OVERFLOW`, `NO_SOCKET`, ...) and the
//!   kernel function that dropped the packet. It carries no addresses and no namespace, so these
//!   are counted per reason for the whole machine (IPv4 only, filtered in the kernel) while the
//!   storm runs; on a machine that does nothing else they are the lab's. `QUEUE_PURGE` (buffers
//!   freed when a socket closes, not packets lost) is filtered out.
//! - `tcp:tcp_retransmit_synack`, `tcp:tcp_retransmit_skb`, `tcp:tcp_send_reset` and
//!   `tcp:tcp_receive_reset`, which carry the 4-tuple: only those between the lab's server and its
//!   client (or flood sources) are kept, and each is tied to the connection that used that client
//!   port at the time (`drops.csv`, column `connection`). With `client.close = "rst"`, the
//!   client's own RST closes, and the resets of the server's sockets, are left out
//!   ([`Watched`]).
//!
//! A surprise worth knowing (Linux 6.18): a SYN dropped because the accept queue is full is not a
//! `kfree_skb` at all. `tcp_rcv_state_process` *consumes* it after `conn_request` declined it, so
//! it is invisible to drop monitors; only `ListenOverflows` and the client's SYN retransmission
//! show it. The final ACK that meets a full queue is the `TCP_LISTEN_OVERFLOW` drop.
//!
//! Where tracefs cannot be used (no root, no tracefs), the run says so once and goes on without.
//!
//! The pieces: `reader` is the tracing thread (set-up, reading `trace_pipe`, the counters'
//! window), `stats` the plain results ([`Trace`], [`Counts`], [`DropStats`], [`Row`]), and
//! `attribute` ties events to the run's connections.

mod attribute;
pub mod event;
mod reader;
mod stats;
pub mod tracefs;

use std::net::SocketAddr;
use std::sync::atomic::Ordering;
use std::sync::Once;

use crate::family::LabAddrs;
pub use attribute::{attribute, PortStarts};
pub use event::{Event, Kind};
pub use reader::{monotonic_ns, Tracer};
pub use stats::{Counts, DropStats, Row, Sides, Trace};

use reader::monotonic_now_ns;

/// What a recording watches: the lab's listener and its hosts' addresses (whose family also
/// picks the `kfree_skb` protocol filter).
#[derive(Debug, Clone, Copy)]
pub struct Watched {
    pub server: SocketAddr,
    pub lab: LabAddrs,
    /// A listener the lab did not start (`watch`): its peers are anyone, and an unspecified
    /// `server` address (0.0.0.0) matches on the port alone.
    pub any_peer: bool,
    /// The lab's client ends every connection with an RST (`client.close = "rst"`). Those RSTs,
    /// and the resets of the server's sockets (each one the client's doing in such a run), are
    /// the run's design, two events per connection that cost the reader more than a quarter of
    /// a core in a fast storm: they are left out, in the kernel and by the reader, where the
    /// kernel names RST reasons (6.10 and later; see `reader::rst_close`).
    pub rst_close: bool,
}

impl Watched {
    /// The `kfree_skb` protocols (ethertypes) that are the watched listener's: the lab's family,
    /// or both IP families for a listener the lab did not start, which may be either or dual-stack.
    pub fn ethertypes(&self) -> &'static [u16] {
        use crate::family::Family::{Ipv4, Ipv6};
        const BOTH: &[u16] = &[Ipv4.ethertype(), Ipv6.ethertype()];
        match (self.any_peer, self.lab.family) {
            (true, _) => BOTH,
            (false, Ipv4) => &BOTH[..1],
            (false, Ipv6) => &BOTH[1..],
        }
    }
}

/// What the run records; the caller asks for drops only if the scenario wants them.
pub enum Recording {
    Tracing(Tracer),
    /// Not recorded, and why.
    Unavailable(String),
}

impl Recording {
    /// Starts tracing the lab's events around `watched.server` (its address and port), or says why not,
    /// once per process on stderr. Nothing is written outside the lab's own instance, except
    /// that instances of earlier lab processes that are gone are removed.
    pub fn start(watched: Watched, wanted: bool) -> Recording {
        if !wanted {
            return Recording::Unavailable("off in the scenario (trace_drops = false)".into());
        }
        match Tracer::start(watched) {
            Ok(t) => Recording::Tracing(t),
            Err(why) => {
                static SAID: Once = Once::new();
                SAID.call_once(|| {
                    eprintln!(
                        "note: drop reasons are not recorded ({why}); counters and everything \
                         else are. Run as root on a kernel with tracefs to get drops.csv"
                    )
                });
                Recording::Unavailable(why)
            }
        }
    }

    /// Marks the start of the window the counters cover: call it just before their first
    /// reading. Events before it are not counted.
    pub fn open_window(&self) {
        if let Recording::Tracing(t) = self {
            t.window[0].store(monotonic_now_ns(), Ordering::Relaxed);
        }
    }

    /// Marks the end of that window: call it just before the counters' last reading. Both
    /// marks come just before a reading because the server's counters are read first in it: an
    /// event can then fall between mark and reading only for the few µs of that file read.
    pub fn close_window(&self) {
        if let Recording::Tracing(t) = self {
            t.window[1].store(monotonic_now_ns(), Ordering::Relaxed);
        }
    }

    /// Stops tracing and returns what was recorded inside the window (up to now if it was never
    /// closed), so that the trace and the counters count the same events.
    pub fn stop(self) -> Trace {
        match self {
            Recording::Tracing(t) => {
                let _ = t.window[1].compare_exchange(
                    0,
                    monotonic_now_ns(),
                    Ordering::Relaxed,
                    Ordering::Relaxed,
                );
                t.stop()
            }
            Recording::Unavailable(why) => Trace {
                unavailable: Some(why),
                ..Trace::default()
            },
        }
    }
}
