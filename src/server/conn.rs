//! One accepted connection: read the request (unless the server speaks first), optionally work
//! for a service time, answer with the fixed response, close.

use std::sync::Arc;
use std::time::Duration;

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

/// How long a served connection may take to send its request before the server gives up on it.
const REQUEST_TIMEOUT: Duration = Duration::from_secs(30);

/// What every accepted connection gets.
#[derive(Clone)]
pub(super) struct Reply {
    pub(super) response: Arc<[u8]>,
    /// Send without waiting for a request.
    pub(super) speaks_first: bool,
}

/// Reads the request up to the blank line (or EOF) unless the server speaks first, optionally
/// works for `service`, answers, closes.
pub(super) async fn handle(
    mut stream: TcpStream,
    reply: &Reply,
    service: Duration,
) -> std::io::Result<()> {
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
