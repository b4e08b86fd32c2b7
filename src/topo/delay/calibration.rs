//! Calibration: timing TCP handshakes over the delay line before the run, to measure what the
//! path costs beyond the configured holds (the pump, the two stacks, waking the receiver), so
//! that [`DelayLine::arm`](super::DelayLine::arm) can subtract it and a handshake takes the
//! configured RTT. Kept apart from the pump because it runs real sockets in both namespaces,
//! once, and never touches the hot path.

use std::time::{Duration, Instant};

use crate::error::Failure;
use crate::family::LabAddrs;
use crate::netns::Netns;

/// Handshakes timed to measure the pump's overhead.
const CALIBRATION_HANDSHAKES: usize = 120;
/// ... in this many batches: the result is the lowest batch median. A VM stall only ever adds
/// time, and it comes in bursts, so one stalled batch must not decide the correction (it did:
/// a 268 µs "overhead" once made a 1 ms link 0.72 ms).
const CALIBRATION_BATCHES: usize = 3;

/// The lowest batch median of [`CALIBRATION_HANDSHAKES`] TCP handshakes over the line as it is
/// (see [`DelayLine::probe`](super::DelayLine::probe)): what a handshake costs beyond the
/// holds. The client side binds the lab's calibration address and the server side
/// accepts on an ephemeral port, so the storm's own address and port see nothing; the counters'
/// baseline is taken after this.
pub fn calibrate(server: &Netns, client: &Netns, addrs: &LabAddrs) -> Result<Duration, Failure> {
    use socket2::{Socket, Type};
    use std::net::SocketAddr;
    let domain = addrs.family.domain();
    let failed = |what: &str, e: std::io::Error| {
        Failure::environment(format!(
            "the emulated link did not carry a TCP handshake in time ({what}: {e}); a scenario \
             sysctl that breaks TCP in the lab, or a machine too busy to run the delay line, can \
             do this: check [server.sysctl]/[client.sysctl], or retry on an idle machine"
        ))
    };
    let listener = server
        .run(|| -> std::io::Result<Socket> {
            let s = Socket::new(domain, Type::STREAM.cloexec(), None)?;
            s.bind(&SocketAddr::new(addrs.server, 0).into())?;
            s.listen(64)?;
            Ok(s)
        })?
        .map_err(|e| failed("listen", e))?;
    let target = listener
        .local_addr()
        .ok()
        .and_then(|a| a.as_socket())
        .ok_or_else(|| failed("listen", std::io::Error::other("no local address")))?;
    std::thread::scope(|scope| {
        // Accept every calibration connection, so a small somaxconn cannot stall the next one.
        let acceptor = scope.spawn(|| {
            for _ in 0..CALIBRATION_HANDSHAKES {
                if listener.accept().is_err() {
                    break;
                }
            }
        });
        let times = client.run(|| -> std::io::Result<Vec<Duration>> {
            let mut times = Vec::with_capacity(CALIBRATION_HANDSHAKES);
            for _ in 0..CALIBRATION_HANDSHAKES {
                let s = Socket::new(domain, Type::STREAM.cloexec(), None)?;
                s.bind(&SocketAddr::new(addrs.calibration, 0).into())?;
                let start = Instant::now();
                s.connect_timeout(&target.into(), Duration::from_secs(2))?;
                times.push(start.elapsed());
            }
            Ok(times)
        });
        // Unblocks the acceptor if the client gave up early.
        let _ = listener.shutdown(std::net::Shutdown::Both);
        let _ = acceptor.join();
        let times = times?.map_err(|e| failed("connect", e))?;
        Ok(times
            .chunks(CALIBRATION_HANDSHAKES / CALIBRATION_BATCHES)
            .map(|batch| {
                let mut batch = batch.to_vec();
                batch.sort();
                batch[batch.len() / 2]
            })
            .min()
            .expect("at least one batch"))
    })
}
