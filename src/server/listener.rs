//! The listening socket, with the `listen()` backlog exactly as the scenario gives it.
//!
//! `listen(fd, backlog)` stores `min((unsigned)backlog, net.core.somaxconn)` as the accept-queue
//! limit, read from the namespace the socket lives in at the moment of the call. A negative
//! backlog (Envoy/libevent pass -1) is a huge unsigned number and so becomes somaxconn; 0 means
//! an accept queue of one. No value is adjusted here, so the lab shows the kernel's own clamp.

use std::net::SocketAddr;

use socket2::{Domain, Protocol, Socket, Type};

/// Binds `addr` and calls `listen(backlog)`. Must run on a thread inside the server namespace.
pub fn bind(addr: SocketAddr, backlog: i32) -> std::io::Result<std::net::TcpListener> {
    let socket = Socket::new(
        Domain::for_address(addr),
        Type::STREAM.nonblocking().cloexec(),
        Some(Protocol::TCP),
    )?;
    socket.set_reuse_address(true)?;
    socket.bind(&addr.into())?;
    socket.listen(backlog)?;
    Ok(socket.into())
}
