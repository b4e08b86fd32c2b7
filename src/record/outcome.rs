//! How one short connection ended. Every connection ends in exactly one outcome.

use std::io;

use serde::{Deserialize, Serialize};

/// The end of one connection attempt: connect, send the request, read the response, close.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Outcome {
    /// A response arrived (at least one byte) and the server then closed the connection.
    Ok,
    /// `connect()` did not complete within `client.connect_timeout` (or the kernel gave up after
    /// `tcp_syn_retries`, ETIMEDOUT): the SYN or SYN-ACK kept being dropped.
    ConnectTimeout,
    /// `connect()` failed with ECONNREFUSED: a RST answered the SYN (no listener).
    ConnectRefused,
    /// `connect()` failed with ECONNRESET.
    ConnectReset,
    /// Connected, then the server reset the connection (ECONNRESET/EPIPE on send or receive):
    /// what `tcp_abort_on_overflow=1` produces.
    ResetAfterConnect,
    /// Connected, but no complete response within `client.response_timeout`.
    ResponseTimeout,
    /// Connected, and the server closed without sending a single byte.
    ClosedWithoutResponse,
    /// Anything else; the errno is recorded.
    Other,
    /// Still in flight when a second stop signal abandoned it: the row says how far it got
    /// (`connected_us`, `first_byte_us`), so every started connection keeps its row.
    Abandoned,
    /// Never started: at its scheduled time the client's in-flight budget
    /// (`client.max_in_flight`, bounded by the open-files limit) was spent. A limit of this
    /// client, not a failure of the server (k6 calls these dropped iterations).
    NotStarted,
}

impl Outcome {
    /// How many outcomes there are.
    pub const COUNT: usize = 10;

    pub const ALL: [Outcome; Outcome::COUNT] = [
        Outcome::Ok,
        Outcome::ConnectTimeout,
        Outcome::ConnectRefused,
        Outcome::ConnectReset,
        Outcome::ResetAfterConnect,
        Outcome::ResponseTimeout,
        Outcome::ClosedWithoutResponse,
        Outcome::Other,
        Outcome::Abandoned,
        Outcome::NotStarted,
    ];

    pub fn name(self) -> &'static str {
        match self {
            Outcome::Ok => "ok",
            Outcome::ConnectTimeout => "connect_timeout",
            Outcome::ConnectRefused => "connect_refused",
            Outcome::ConnectReset => "connect_reset",
            Outcome::ResetAfterConnect => "reset_after_connect",
            Outcome::ResponseTimeout => "response_timeout",
            Outcome::ClosedWithoutResponse => "closed_without_response",
            Outcome::Other => "other",
            Outcome::Abandoned => "abandoned",
            Outcome::NotStarted => "not_started",
        }
    }

    /// The outcome of this name (`connect_timeout`), as `connections.csv` and the summary spell it.
    pub fn from_name(name: &str) -> Option<Outcome> {
        Outcome::ALL.into_iter().find(|o| o.name() == name)
    }

    /// Position in [`Outcome::ALL`] (the declaration order).
    pub fn index(self) -> usize {
        self as usize
    }

    /// Classifies an error from `connect()`.
    pub fn of_connect_error(e: &io::Error) -> Outcome {
        match e.raw_os_error() {
            Some(libc::ETIMEDOUT) => Outcome::ConnectTimeout,
            Some(libc::ECONNREFUSED) => Outcome::ConnectRefused,
            Some(libc::ECONNRESET) => Outcome::ConnectReset,
            _ => Outcome::Other,
        }
    }

    /// Classifies an error from sending the request or reading the response.
    pub fn of_exchange_error(e: &io::Error) -> Outcome {
        match e.raw_os_error() {
            Some(libc::ECONNRESET) | Some(libc::EPIPE) => Outcome::ResetAfterConnect,
            Some(libc::ETIMEDOUT) => Outcome::ResponseTimeout,
            _ => Outcome::Other,
        }
    }
}

/// How many connections ended in each outcome, every outcome present (0 where none did).
/// Written as an object in [`Outcome::ALL`] order; read back tolerantly (a name this version
/// does not know is skipped, a missing one is 0).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct OutcomeCounts([u64; Outcome::COUNT]);

impl OutcomeCounts {
    /// Counts the outcomes of `outcomes`.
    pub fn of(outcomes: impl Iterator<Item = Outcome>) -> OutcomeCounts {
        let mut c = OutcomeCounts::default();
        outcomes.for_each(|o| c.add(o));
        c
    }

    /// Counts one more of `o`.
    pub fn add(&mut self, o: Outcome) {
        self.0[o.index()] += 1;
    }

    /// `(outcome, count)` in [`Outcome::ALL`] order.
    pub fn iter(&self) -> impl Iterator<Item = (Outcome, u64)> + '_ {
        Outcome::ALL.into_iter().map(|o| (o, self.0[o.index()]))
    }
}

impl std::ops::Index<Outcome> for OutcomeCounts {
    type Output = u64;
    fn index(&self, o: Outcome) -> &u64 {
        &self.0[o.index()]
    }
}

impl Serialize for OutcomeCounts {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.collect_map(self.iter().map(|(o, n)| (o.name(), n)))
    }
}

impl<'de> Deserialize<'de> for OutcomeCounts {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<OutcomeCounts, D::Error> {
        let by_name = std::collections::BTreeMap::<String, u64>::deserialize(d)?;
        let mut c = OutcomeCounts::default();
        for (name, n) in by_name {
            if let Some(o) = Outcome::from_name(&name) {
                c.0[o.index()] = n;
            }
        }
        Ok(c)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn err(errno: i32) -> io::Error {
        io::Error::from_raw_os_error(errno)
    }

    #[test]
    fn connect_errors() {
        assert_eq!(
            Outcome::of_connect_error(&err(libc::ETIMEDOUT)),
            Outcome::ConnectTimeout
        );
        assert_eq!(
            Outcome::of_connect_error(&err(libc::ECONNREFUSED)),
            Outcome::ConnectRefused
        );
        assert_eq!(
            Outcome::of_connect_error(&err(libc::ECONNRESET)),
            Outcome::ConnectReset
        );
        assert_eq!(
            Outcome::of_connect_error(&err(libc::EADDRNOTAVAIL)),
            Outcome::Other
        );
    }

    #[test]
    fn exchange_errors() {
        assert_eq!(
            Outcome::of_exchange_error(&err(libc::ECONNRESET)),
            Outcome::ResetAfterConnect
        );
        assert_eq!(
            Outcome::of_exchange_error(&err(libc::EPIPE)),
            Outcome::ResetAfterConnect
        );
        assert_eq!(
            Outcome::of_exchange_error(&err(libc::ETIMEDOUT)),
            Outcome::ResponseTimeout
        );
        assert_eq!(
            Outcome::of_exchange_error(&err(libc::EHOSTUNREACH)),
            Outcome::Other
        );
    }

    #[test]
    fn counts_are_an_object_of_every_outcome_both_ways() {
        let c = OutcomeCounts::of([Outcome::Ok, Outcome::Ok, Outcome::Other].into_iter());
        let json = serde_json::to_string(&c).unwrap();
        assert!(
            json.starts_with(r#"{"ok":2,"connect_timeout":0,"#),
            "{json}"
        );
        let back: OutcomeCounts =
            serde_json::from_str(r#"{"ok": 2, "other": 1, "future_outcome": 9}"#).unwrap();
        assert_eq!(back, c);
        assert_eq!(back[Outcome::Ok], 2);
    }

    #[test]
    fn index_matches_the_order_of_all() {
        for (i, o) in Outcome::ALL.iter().enumerate() {
            assert_eq!(o.index(), i);
        }
    }

    #[test]
    fn names_are_the_documented_ones() {
        let names: Vec<_> = Outcome::ALL.iter().map(|o| o.name()).collect();
        assert_eq!(
            names,
            [
                "ok",
                "connect_timeout",
                "connect_refused",
                "connect_reset",
                "reset_after_connect",
                "response_timeout",
                "closed_without_response",
                "other",
                "abandoned",
                "not_started"
            ]
        );
        for o in Outcome::ALL {
            assert_eq!(serde_json::to_value(o).unwrap(), o.name());
        }
    }
}
