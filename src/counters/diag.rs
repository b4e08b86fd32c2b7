//! Listen-queue occupancy through sock_diag netlink (what `ss -lnt` and `ss state syn-recv` show).
//!
//! For a LISTEN socket the kernel reports `idiag_rqueue` = current accept-queue length
//! (`sk_ack_backlog`, `ss` Recv-Q) and `idiag_wqueue` = its limit (`sk_max_ack_backlog`, the
//! backlog after the somaxconn clamp, `ss` Send-Q). The accept queue holds limit + 1. The SYN queue
//! is visible only as the number of request sockets in SYN-RECV for the port.
//! The netlink socket is opened inside the server namespace, so it only ever sees lab sockets.

use netlink_packet_core::{
    NetlinkHeader, NetlinkMessage, NetlinkPayload, NLM_F_DUMP, NLM_F_REQUEST,
};
use netlink_packet_sock_diag::constants::IPPROTO_TCP;
use netlink_packet_sock_diag::inet::{ExtensionFlags, InetRequest, SocketId, StateFlags};
use netlink_packet_sock_diag::SockDiagMessage;
use netlink_sys::{protocols::NETLINK_SOCK_DIAG, Socket, SocketAddr};

use crate::error::Failure;
use crate::family::Family;
use crate::topo::Netns;

/// The listen queue of one port at one instant.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct QueueSample {
    /// Connections waiting in the accept queue (`ss -lnt` Recv-Q).
    pub accept_queue: u32,
    /// The accept-queue limit the kernel uses (`ss -lnt` Send-Q); `None` if no listener was found.
    pub accept_queue_limit: Option<u32>,
    /// Request sockets in SYN-RECV for the port (the SYN queue; cookies leave no entry).
    pub syn_recv: u32,
}

/// A sock_diag socket bound to the server namespace, watching one TCP port.
pub struct ListenDiag {
    socket: Socket,
    port: u16,
    family: Family,
    buf: Vec<u8>,
}

impl ListenDiag {
    /// A sock_diag socket in `ns` for the `family` listener on `port`.
    pub fn open(ns: &Netns, port: u16, family: Family) -> Result<ListenDiag, Failure> {
        let socket = ns
            .run(|| -> std::io::Result<Socket> {
                let mut s = Socket::new(NETLINK_SOCK_DIAG)?;
                s.bind_auto()?;
                s.connect(&SocketAddr::new(0, 0))?;
                Ok(s)
            })?
            .map_err(|e| Failure::environment(format!("cannot open a sock_diag socket: {e}")))?;
        Ok(ListenDiag {
            socket,
            port,
            family,
            buf: vec![0; 64 * 1024],
        })
    }

    /// Reads the accept queue and the SYN-RECV count of the port now.
    pub fn sample(&mut self) -> std::io::Result<QueueSample> {
        let mut out = QueueSample::default();
        let port = self.port;
        self.dump(StateFlags::LISTEN, |resp_sport, rq, wq| {
            if resp_sport == port {
                out.accept_queue = rq;
                out.accept_queue_limit = Some(wq);
            }
        })?;
        self.dump(StateFlags::SYN_RECV, |resp_sport, _, _| {
            if resp_sport == port {
                out.syn_recv += 1;
            }
        })?;
        Ok(out)
    }

    fn dump(
        &mut self,
        states: StateFlags,
        mut each: impl FnMut(u16, u32, u32),
    ) -> std::io::Result<()> {
        let mut header = NetlinkHeader::default();
        header.flags = NLM_F_REQUEST | NLM_F_DUMP;
        let mut socket_id = SocketId::new_v4();
        socket_id.source_port = self.port;
        let mut req = NetlinkMessage::new(
            header,
            SockDiagMessage::InetRequest(InetRequest {
                family: self.family.af(),
                protocol: IPPROTO_TCP,
                extensions: ExtensionFlags::empty(),
                states,
                socket_id,
            })
            .into(),
        );
        req.finalize();
        let mut out = vec![0; req.buffer_len()];
        req.serialize(&mut out);
        self.socket.send(&out, 0)?;
        loop {
            let n = self.socket.recv(&mut &mut self.buf[..], 0)?;
            let mut offset = 0;
            while offset < n {
                let msg = NetlinkMessage::<SockDiagMessage>::deserialize(&self.buf[offset..n])
                    .map_err(|e| std::io::Error::other(format!("sock_diag reply: {e}")))?;
                let len = msg.header.length as usize;
                match msg.payload {
                    NetlinkPayload::Done(_) => return Ok(()),
                    NetlinkPayload::Error(e) => {
                        return Err(std::io::Error::other(format!("sock_diag error: {e:?}")))
                    }
                    NetlinkPayload::InnerMessage(SockDiagMessage::InetResponse(r)) => each(
                        r.header.socket_id.source_port,
                        r.header.recv_queue,
                        r.header.send_queue,
                    ),
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
