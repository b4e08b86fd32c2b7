//! How one short connection ended. Every connection ends in exactly one outcome.

use std::io;

use serde::Serialize;

/// The end of one connection attempt: connect, send the request, read the response, close.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize)]
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
}

impl Outcome {
    pub const ALL: [Outcome; 8] = [
        Outcome::Ok,
        Outcome::ConnectTimeout,
        Outcome::ConnectRefused,
        Outcome::ConnectReset,
        Outcome::ResetAfterConnect,
        Outcome::ResponseTimeout,
        Outcome::ClosedWithoutResponse,
        Outcome::Other,
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
        }
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
                "other"
            ]
        );
        for o in Outcome::ALL {
            assert_eq!(serde_json::to_value(o).unwrap(), o.name());
        }
    }
}
