//! The plain results of a recording: what was traced ([`Trace`]), how its events are counted
//! into [`Counts`], the rows of `drops.csv` ([`Row`]) and how `summary.json → drops`
//! ([`DropStats`]) is made from them. The counts' types are the ground floor's
//! ([`crate::record::drops`]); filling them is this module's job.

use std::collections::BTreeSet;

use serde::Serialize;

use super::event::{Event, Kind};
use crate::family::LabAddrs;
pub use crate::record::drops::{Counts, DropStats, Sides};

/// Everything recorded, before it is tied to connections.
#[derive(Debug, Default)]
pub struct Trace {
    /// Why nothing was recorded, when nothing was.
    pub unavailable: Option<String>,
    /// The lab's events in the order read (up to [`MAX_ROWS`](super::reader::MAX_ROWS)).
    pub events: Vec<Event>,
    /// Events of the lab past [`MAX_ROWS`](super::reader::MAX_ROWS): counted below, not in
    /// `events`.
    pub not_stored: u64,
    pub counts: Counts,
    /// Events the trace buffer overwrote or never took (`per_cpu/*/stats`, `[LOST n EVENTS]`).
    pub lost: u64,
    /// Events with the lab's addresses that belonged to no connection of this run (see
    /// [`attribute`](super::attribute())); not in the rows or the counts.
    pub foreign: u64,
    /// Events of the lab before the counters' first reading or after their last: not in the
    /// rows or the counts, so that both cover the same window.
    pub outside_window: u64,
    /// Why reading stopped early, if it did (the counts are then short).
    pub read_error: Option<String>,
    /// Events this kernel does not have.
    pub missing: Vec<&'static str>,
    /// Every drop reason this kernel names (from the event's format), so an expectation on a
    /// reason that never happened reads 0 and a misspelt one is an error.
    pub reasons_known: BTreeSet<String>,
    /// CPU time of the reading thread.
    pub cpu_ms: f64,
    /// The client's own RST closes were left out ([`Watched::rst_close`](super::Watched)):
    /// asked for, and this kernel names RST reasons.
    pub rst_closes_left_out: bool,
}

impl Counts {
    /// Counts `e` in (or, with `add` false, back out of) its category.
    pub(super) fn tally(&mut self, e: &Event, add: bool, lab: &LabAddrs) {
        let n = |c: &mut u64| *c = if add { *c + 1 } else { c.saturating_sub(1) };
        let side = side(e, lab);
        match e.kind {
            Kind::KfreeSkb => {
                n(self.by_reason.entry(e.reason.clone()).or_default());
                let function = e.location.split('+').next().unwrap_or_default();
                n(self
                    .by_function
                    .entry(function.to_string())
                    .or_default()
                    .entry(e.reason.clone())
                    .or_default());
            }
            Kind::RetransmitSynack => n(&mut self.synack_retransmits),
            Kind::RetransmitSkb if e.state == "TCP_SYN_SENT" => n(&mut self.syn_retransmits),
            Kind::RetransmitSkb => n(&mut self.other_retransmits),
            Kind::SendReset => n(self
                .resets_sent
                .entry(side.to_string())
                .or_default()
                .entry(e.reason.clone())
                .or_default()),
            Kind::ReceiveReset if side == "client" => n(&mut self.resets_received.client),
            Kind::ReceiveReset => n(&mut self.resets_received.server),
        }
    }

    /// Drops the reasons whose count went back to 0 (events taken out by
    /// [`attribute`](super::attribute())).
    pub(super) fn prune(&mut self) {
        self.by_reason.retain(|_, n| *n > 0);
        for nested in [&mut self.by_function, &mut self.resets_sent] {
            nested.values_mut().for_each(|m| m.retain(|_, n| *n > 0));
            nested.retain(|_, m| !m.is_empty());
        }
    }
}

/// One row of `drops.csv`.
#[derive(Debug, Clone, Serialize)]
pub struct Row {
    /// Microseconds since the storm's time zero (negative: before it).
    pub t_us: i64,
    pub event: &'static str,
    /// `server` or `client`: whose socket; empty for `kfree_skb`.
    pub side: &'static str,
    pub reason: String,
    pub state: String,
    /// The event's own end and the other end (`kfree_skb`: empty).
    pub local: String,
    pub remote: String,
    /// The id in `connections.csv` of the connection that used this client port at the time.
    pub connection: Option<u64>,
    pub location: String,
}

impl DropStats {
    pub fn of(trace: &Trace, rows: &[Row]) -> DropStats {
        DropStats {
            recorded: trace.unavailable.is_none(),
            unavailable: trace.unavailable.clone(),
            events: rows.len() as u64 + trace.not_stored,
            not_stored: trace.not_stored,
            lost_events: trace.lost,
            foreign_events: trace.foreign,
            outside_window: trace.outside_window,
            read_error: trace.read_error.clone(),
            missing_events: trace.missing.iter().map(|s| s.to_string()).collect(),
            counts: trace.counts.clone(),
            connections_with_events: rows
                .iter()
                .filter_map(|r| r.connection)
                .collect::<BTreeSet<_>>()
                .len() as u64,
            cpu_ms: trace.cpu_ms,
            rst_closes_left_out: trace.rst_closes_left_out,
            other_labs: Vec::new(),
        }
    }
}

/// `server`, `client`, or empty (a `kfree_skb`, which has no addresses).
pub(super) fn side(e: &Event, lab: &LabAddrs) -> &'static str {
    match e.local {
        Some(l) if l.ip() == lab.client => "client",
        Some(_) => "server",
        None => "",
    }
}
