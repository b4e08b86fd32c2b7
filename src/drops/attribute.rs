//! Which events are the lab's, and which connection each belongs to.

use std::collections::BTreeMap;
use std::net::SocketAddr;

use super::event::{Event, Kind};
use super::stats::{side, Row, Trace};
use crate::family::LabAddrs;
use crate::record::ConnRecord;

/// Whether a TCP event is between the lab's server and its client or a flood source (not the
/// link's calibration address, not anyone else on the machine). A RST the listener itself sends
/// names no peer; it is the lab's if the listener is.
pub(super) fn between_lab_hosts(e: &Event, server: SocketAddr, lab: &LabAddrs) -> bool {
    let peer = |a: &SocketAddr| a.ip() == lab.client || lab.flood_net.contains(a.ip());
    match (e.local, e.remote) {
        (Some(local), Some(remote)) => {
            (local == server && peer(&remote)) || (remote == server && peer(&local))
        }
        (Some(local), None) => e.kind == Kind::SendReset && local == server,
        _ => false,
    }
}

/// Whether an event is to or from the watched `server` (any peer; an unspecified address
/// matches on the port alone): `watch`'s rule for a listener the lab did not start.
pub(super) fn to_or_from(e: &Event, server: SocketAddr) -> bool {
    let is_server = |a: &SocketAddr| {
        a.port() == server.port() && (server.ip().is_unspecified() || a.ip() == server.ip())
    };
    match (e.local, e.remote) {
        (Some(local), Some(remote)) => is_server(&local) || is_server(&remote),
        (Some(local), None) => e.kind == Kind::SendReset && is_server(&local),
        _ => false,
    }
}

/// When each client port began to be each connection's: `(started_us, id)` per port, gathered
/// as connections finish (16 bytes each), for [`attribute`].
#[derive(Debug, Default)]
pub struct PortStarts(BTreeMap<u16, Vec<(u64, u64)>>);

impl PortStarts {
    pub fn add(&mut self, r: &ConnRecord) {
        if let Some(p) = r.local_port {
            self.0.entry(p).or_default().push((r.started_us, r.id));
        }
    }

    /// The ports of `records`.
    pub fn of<'a>(records: impl IntoIterator<Item = &'a ConnRecord>) -> PortStarts {
        let mut p = PortStarts::default();
        records.into_iter().for_each(|r| p.add(r));
        p
    }
}

/// Ties every event to its connection where the 4-tuple allows: the latest connection from that
/// client port that had started by then (a SYN-ACK retransmitted after the client gave up still
/// belongs to it, until the port is used again).
///
/// An event from the client's address whose port no connection of this run had used by then is
/// not this run's: tracepoints see every namespace, and an earlier lab's namespace, with the
/// same addresses, lives on after that lab exits for as long as its orphaned sockets (FIN_WAIT,
/// CLOSING, LAST_ACK) keep retransmitting. Such events are taken out of the rows and the counts
/// and counted in `trace.foreign`. A run without records (`client.command`) keeps every event.
pub fn attribute(
    trace: &mut Trace,
    ports: PortStarts,
    t0_mono_ns: u64,
    lab: &LabAddrs,
) -> Vec<Row> {
    let mut by_port = ports.0;
    for starts in by_port.values_mut() {
        starts.sort_unstable();
    }
    let mut rows = Vec::with_capacity(trace.events.len());
    for e in &trace.events {
        let row = {
            let t_us = (e.t_ns as i64 - t0_mono_ns as i64) / 1000;
            let client_port = [e.local, e.remote]
                .into_iter()
                .flatten()
                .find(|a| a.ip() == lab.client)
                .map(|a| a.port());
            // `started_us` is stamped before socket() and connect(): no event of a connection
            // comes before it.
            let connection = client_port.and_then(|p| {
                let starts = by_port.get(&p)?;
                let i = starts.partition_point(|&(s, _)| (s as i64) <= t_us);
                i.checked_sub(1).map(|i| starts[i].1)
            });
            let addr = |a: Option<SocketAddr>| a.map(|a| a.to_string()).unwrap_or_default();
            // Without connection records (a client of the user's own), no port is known to be
            // this run's, and none is taken for another's.
            let foreign = client_port.is_some() && connection.is_none() && !by_port.is_empty();
            (
                foreign,
                Row {
                    t_us,
                    event: e.kind.name(),
                    side: side(e, lab),
                    reason: e.reason.clone(),
                    state: e.state.clone(),
                    local: addr(e.local),
                    remote: addr(e.remote),
                    connection,
                    location: e.location.clone(),
                },
            )
        };
        match row {
            (true, _) => {
                trace.counts.tally(e, false, lab);
                trace.foreign += 1;
            }
            (false, row) => rows.push(row),
        }
    }
    trace.counts.prune();
    rows
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::drops::DropStats;

    const LAB: LabAddrs = crate::family::Family::Ipv4.addrs();

    fn ev(t_ns: u64, kind: Kind, local: &str, remote: &str) -> Event {
        Event {
            t_ns,
            kind,
            reason: String::new(),
            state: String::new(),
            local: local.parse().ok(),
            remote: remote.parse().ok(),
            location: String::new(),
            protocol: 0,
        }
    }

    #[test]
    fn keeps_only_events_between_the_lab_hosts() {
        let server: SocketAddr = "198.18.0.1:60011".parse().unwrap();
        let lab = crate::family::Family::Ipv4.addrs();
        let between_lab_hosts = |e: &Event, server| between_lab_hosts(e, server, &lab);
        let k = Kind::RetransmitSynack;
        assert!(between_lab_hosts(
            &ev(0, k, "198.18.0.1:60011", "198.18.0.2:4000"),
            server
        ));
        assert!(between_lab_hosts(
            &ev(0, k, "198.18.0.1:60011", "198.19.3.4:4000"),
            server
        ));
        assert!(between_lab_hosts(
            &ev(0, k, "198.18.0.2:4000", "198.18.0.1:60011"),
            server
        ));
        // The link's calibration address, another port, someone else's connection.
        assert!(!between_lab_hosts(
            &ev(0, k, "198.18.0.1:60011", "198.18.0.3:4000"),
            server
        ));
        assert!(!between_lab_hosts(
            &ev(0, k, "198.18.0.1:22", "198.18.0.2:4000"),
            server
        ));
        assert!(!between_lab_hosts(
            &ev(0, k, "10.0.0.1:60011", "10.0.0.2:4000"),
            server
        ));
        // The listener's own RST (no peer in the event) is the lab's if the listener is.
        let rst = Kind::SendReset;
        assert!(between_lab_hosts(
            &ev(0, rst, "198.18.0.1:60011", ""),
            server
        ));
        assert!(!between_lab_hosts(&ev(0, rst, "198.18.0.1:22", ""), server));
    }

    #[test]
    fn ties_events_to_the_latest_connection_on_the_port_and_leaves_out_strangers() {
        let rec = |id, started_us, port| ConnRecord {
            id,
            scheduled_us: started_us,
            started_us,
            connected_us: None,
            first_byte_us: None,
            finished_us: started_us + 10,
            outcome: crate::record::Outcome::Ok,
            errno: None,
            retransmits: 0,
            local_port: Some(port),
            bytes: 0,
        };
        let records = [
            rec(0, 1_000, 4000),
            rec(1, 5_000_000, 4000),
            rec(2, 2_000, 4001),
        ];
        let t0 = 1_000_000_000;
        let at = |us: u64| t0 + us * 1000;
        let trace = Trace {
            events: vec![
                ev(
                    at(1_000_500),
                    Kind::RetransmitSynack,
                    "198.18.0.1:80",
                    "198.18.0.2:4000",
                ),
                ev(
                    at(5_000_100),
                    Kind::ReceiveReset,
                    "198.18.0.2:4000",
                    "198.18.0.1:80",
                ),
                ev(
                    at(3_000),
                    Kind::RetransmitSkb,
                    "198.18.0.2:4001",
                    "198.18.0.1:80",
                ),
                ev(
                    at(3_000),
                    Kind::RetransmitSkb,
                    "198.18.0.2:4002",
                    "198.18.0.1:80",
                ),
                ev(at(10), Kind::KfreeSkb, "", ""),
            ],
            ..Trace::default()
        };
        let mut trace = trace;
        for e in trace.events.clone() {
            trace.counts.tally(&e, true, &LAB);
        }
        assert_eq!(trace.counts.other_retransmits, 2);
        let rows = attribute(&mut trace, PortStarts::of(&records), t0, &LAB);
        let ids: Vec<_> = rows.iter().map(|r| r.connection).collect();
        // Port 4002 was no connection's: an earlier lab's socket, left out.
        assert_eq!(ids, [Some(0), Some(1), Some(2), None]);
        assert_eq!(rows[0].t_us, 1_000_500);
        assert_eq!(
            (rows[0].side, rows[1].side, rows[3].side),
            ("server", "client", "")
        );
        let stats = DropStats::of(&trace, &rows);
        assert_eq!(stats.connections_with_events, 3);
        assert_eq!(
            (stats.foreign_events, stats.counts.other_retransmits),
            (1, 1)
        );
        assert_eq!(stats.events, 4);
    }
}
