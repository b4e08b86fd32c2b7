//! What goes over the wire on every connection, shared by the client and the server so the two
//! can never disagree: who talks first ([`Talk`]), the request the client sends, and the
//! response the server answers with. Plain HTTP/1.1, so `wrk` and `curl` talk to the lab's
//! server too.

/// Who talks first on a connection.
#[derive(Debug, Clone, PartialEq)]
pub enum Talk {
    /// The client sends a request of this many bytes (an HTTP GET, padded), then reads the
    /// response (HTTP, Redis...).
    ClientFirst { request_bytes: u32 },
    /// The server sends its response (a greeting) as soon as it accepts; the client sends
    /// nothing (MySQL, SMTP, SSH...).
    ServerFirst,
}

/// How the client ends a connection once it has the whole response.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, serde::Deserialize, serde::Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Close {
    /// `close()`: a FIN, after the server's own (the server closes first, and keeps the
    /// TIME-WAIT).
    #[default]
    Fin,
    /// `SO_LINGER` 0, then `close()`: an RST, as Envoy and Java clients abort a connection. The
    /// kernel counts it as `TcpExt.TCPAbortOnData`, and the server's socket ends without a
    /// TIME-WAIT.
    Rst,
}

impl Close {
    pub fn word(self) -> &'static str {
        match self {
            Close::Fin => "fin",
            Close::Rst => "rst",
        }
    }
}

/// The request every attempt sends (HTTP/1.1, so the same server also serves `wrk` or `curl`).
pub const REQUEST: &[u8] = b"GET / HTTP/1.1\r\nHost: backlog-lab\r\nConnection: close\r\n\r\n";

/// The request for a plan: nothing when the server speaks first, else [`REQUEST`] with its path
/// padded to exactly `request_bytes` (at least `REQUEST.len()`).
pub fn request(talk: &Talk) -> Vec<u8> {
    match *talk {
        Talk::ServerFirst => Vec::new(),
        Talk::ClientFirst { request_bytes } => {
            let pad = (request_bytes as usize).saturating_sub(REQUEST.len());
            let mut r = b"GET /".to_vec();
            r.resize(r.len() + pad, b'x');
            r.extend_from_slice(&REQUEST[5..]);
            r
        }
    }
}

/// The fixed answer: `200 OK` with a `body`-byte body of `x`s, `Connection: close`.
pub fn response(body: u32) -> Vec<u8> {
    let mut r = format!("HTTP/1.1 200 OK\r\nContent-Length: {body}\r\nConnection: close\r\n\r\n")
        .into_bytes();
    r.resize(r.len() + body as usize, b'x');
    r
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn requests_are_padded_to_the_exact_size() {
        assert_eq!(request(&Talk::ServerFirst), b"");
        let base = REQUEST.len() as u32;
        assert_eq!(
            request(&Talk::ClientFirst {
                request_bytes: base
            }),
            REQUEST
        );
        for n in [base + 1, base + 7, 4096] {
            let r = request(&Talk::ClientFirst { request_bytes: n });
            assert_eq!(r.len(), n as usize);
            assert!(r.starts_with(b"GET /x") && r.ends_with(b"\r\n\r\n"));
        }
    }

    #[test]
    fn response_has_headers_then_exact_body() {
        let r = response(5);
        let head = b"HTTP/1.1 200 OK\r\nContent-Length: 5\r\nConnection: close\r\n\r\n";
        assert_eq!(&r[..head.len()], head);
        assert_eq!(&r[head.len()..], b"xxxxx");
        assert!(response(0).ends_with(b"\r\n\r\n"));
    }
}
