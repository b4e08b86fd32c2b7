//! sock_diag netlink, the kernel's socket table as `ss` reads it: dump the TCP sockets of one
//! network namespace, and destroy them (`ss -K`, SOCK_DESTROY).
//!
//! A sock_diag socket answers for the namespace it was opened in, whichever thread uses it
//! afterwards, so a reader opens it once inside the namespace it watches and sees only that
//! namespace's sockets.

use std::io;

use netlink_packet_core::{
    NetlinkHeader, NetlinkMessage, NetlinkPayload, NetlinkSerializable, NLM_F_ACK, NLM_F_DUMP,
    NLM_F_REQUEST,
};
use netlink_packet_sock_diag::constants::{AF_INET, AF_INET6, IPPROTO_TCP};
use netlink_packet_sock_diag::inet::{
    nlas::Nla, ExtensionFlags, InetRequest, InetResponse, InetResponseHeader, SocketId, StateFlags,
};
use netlink_packet_sock_diag::{SockDiagDestroy, SockDiagMessage};
use netlink_sys::{protocols::NETLINK_SOCK_DIAG, Socket, SocketAddr};

/// A sock_diag socket bound to the namespace it was opened in.
pub struct Diag {
    socket: Socket,
    buf: Vec<u8>,
}

impl Diag {
    /// Opens a sock_diag socket in the calling thread's network namespace.
    pub fn open() -> io::Result<Diag> {
        let mut socket = Socket::new(NETLINK_SOCK_DIAG)?;
        socket.bind_auto()?;
        socket.connect(&SocketAddr::new(0, 0))?;
        Ok(Diag {
            socket,
            buf: vec![0; 64 * 1024],
        })
    }

    /// Calls `each` for every TCP socket of address family `af` (`AF_INET`, `AF_INET6`) in one
    /// of `states`, with local port `sport` (0: any port).
    pub fn dump(
        &mut self,
        af: u8,
        states: StateFlags,
        sport: u16,
        mut each: impl FnMut(&InetResponse),
    ) -> io::Result<()> {
        let mut socket_id = if af == AF_INET6 {
            SocketId::new_v6()
        } else {
            SocketId::new_v4()
        };
        socket_id.source_port = sport;
        let req = SockDiagMessage::InetRequest(InetRequest {
            family: af,
            protocol: IPPROTO_TCP,
            extensions: ExtensionFlags::empty(),
            states,
            socket_id,
        });
        self.send(req, NLM_F_REQUEST | NLM_F_DUMP)?;
        self.replies(|r| {
            if let SockDiagMessage::InetResponse(r) = r {
                // Only the sockets asked for: the kernel filters by state, not by port.
                if sport == 0 || r.header.socket_id.source_port == sport {
                    each(&r);
                }
            }
        })
    }

    /// The socket with this full id (cookie included, as a dump returned it), looked up in the
    /// kernel's hash tables instead of walking them (`inet_diag_find_one_icsk`): for a
    /// listener, O(1) where a dump visits every bucket of the machine's listening hash. `None`
    /// when it is gone or its cookie no longer matches (another socket on the same address).
    pub fn get(&mut self, af: u8, id: &SocketId) -> io::Result<Option<InetResponseHeader>> {
        let req = SockDiagMessage::InetRequest(InetRequest {
            family: af,
            protocol: IPPROTO_TCP,
            extensions: ExtensionFlags::empty(),
            states: StateFlags::all(),
            socket_id: id.clone(),
        });
        self.send(req, NLM_F_REQUEST | NLM_F_ACK)?;
        let mut found = None;
        match self.replies(|r| {
            if let SockDiagMessage::InetResponse(r) = r {
                found = Some(r.header);
            }
        }) {
            Ok(()) => Ok(found),
            Err(e) if matches!(e.raw_os_error(), Some(libc::ENOENT | libc::ESTALE)) => Ok(None),
            Err(e) => Err(e),
        }
    }

    /// Destroys one socket, found by its full id (cookie included) as a dump returned it: the
    /// kernel resets a connection (RST) and frees the socket at once, even an orphan no process
    /// holds. Needs CAP_NET_ADMIN in the namespace's user namespace.
    pub fn destroy(&mut self, af: u8, id: SocketId) -> io::Result<()> {
        let req = SockDiagDestroy::new(SockDiagMessage::InetRequest(InetRequest {
            family: af,
            protocol: IPPROTO_TCP,
            extensions: ExtensionFlags::empty(),
            states: StateFlags::all(),
            socket_id: id,
        }));
        self.send(req, NLM_F_REQUEST | NLM_F_ACK)?;
        self.replies(|_| {})
    }

    fn send<T: NetlinkSerializable>(&mut self, payload: T, flags: u16) -> io::Result<()> {
        let mut header = NetlinkHeader::default();
        header.flags = flags;
        let mut req = NetlinkMessage::new(header, NetlinkPayload::InnerMessage(payload));
        req.finalize();
        let mut out = vec![0; req.buffer_len()];
        req.serialize(&mut out);
        self.socket.send(&out, 0)?;
        Ok(())
    }

    /// Reads replies until the dump's end or the request's acknowledgement; a kernel error
    /// comes back as its errno.
    fn replies(&mut self, mut each: impl FnMut(SockDiagMessage)) -> io::Result<()> {
        loop {
            let n = self.socket.recv(&mut &mut self.buf[..], 0)?;
            let mut offset = 0;
            while offset < n {
                let msg = NetlinkMessage::<SockDiagMessage>::deserialize(&self.buf[offset..n])
                    .map_err(|e| io::Error::other(format!("sock_diag reply: {e}")))?;
                let len = msg.header.length as usize;
                match msg.payload {
                    NetlinkPayload::Done(_) => return Ok(()),
                    NetlinkPayload::Error(e) => {
                        return match e.code {
                            None => Ok(()), // the acknowledgement
                            Some(code) => Err(io::Error::from_raw_os_error(-code.get())),
                        };
                    }
                    NetlinkPayload::InnerMessage(m) => each(m),
                    _ => {}
                }
                if len == 0 {
                    break;
                }
                offset += len;
            }
        }
    }
}

/// Destroys every TCP socket of the calling thread's network namespace, both families, until a
/// dump finds none (a process dying as this runs may close more), at most 20 rounds. Returns how
/// many it destroyed. Closing a socket whose peer is gone leaves an orphan retransmitting its
/// FIN for up to ~100 s, and the orphan keeps its namespace alive all that time; destroyed,
/// it is gone at once.
pub fn end_all_tcp() -> io::Result<usize> {
    let mut diag = Diag::open()?;
    let mut ended = 0;
    for _ in 0..20 {
        let mut found = Vec::new();
        for af in [AF_INET, AF_INET6] {
            // Not CLOSE: such a socket is already ended, and waits only for its descriptor.
            let states = StateFlags::all() - StateFlags::CLOSE;
            let dumped = diag.dump(af, states, 0, |r| {
                found.push((af, r.header.socket_id.clone()));
            });
            // A kernel without IPv6 answers AF_INET6 with an error: nothing to end there.
            if af == AF_INET {
                dumped?;
            }
        }
        if found.is_empty() {
            break;
        }
        for (af, id) in found {
            // ENOENT: it ended by itself between the dump and now.
            if diag.destroy(af, id).is_ok() {
                ended += 1;
            }
        }
    }
    Ok(ended)
}

/// Whether an IPv6 listener is `IPV6_V6ONLY` (`INET_DIAG_SKV6ONLY`, which the kernel sends for
/// every AF_INET6 listener): such a socket never takes an IPv4 connection.
pub fn v6only(r: &InetResponse) -> bool {
    r.nlas.iter().any(|n| matches!(n, Nla::SkV6Only(true)))
}
