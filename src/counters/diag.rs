//! Listen-queue occupancy through sock_diag netlink (what `ss -lnt` and `ss state syn-recv` show).
//!
//! For a LISTEN socket the kernel reports `idiag_rqueue` = current accept-queue length
//! (`sk_ack_backlog`, `ss` Recv-Q) and `idiag_wqueue` = its limit (`sk_max_ack_backlog`, the
//! backlog after the somaxconn clamp, `ss` Send-Q). The accept queue holds limit + 1. The SYN queue
//! is visible only as the number of request sockets in SYN-RECV for the port.
//! The netlink socket is opened inside the server namespace, so it only ever sees lab sockets.

use netlink_packet_sock_diag::inet::StateFlags;

use crate::error::Failure;
use crate::family::Family;
use crate::sockdiag::Diag;
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
    /// Listening sockets on the port (several with SO_REUSEPORT: nginx workers, a cluster);
    /// `accept_queue` and `accept_queue_limit` are then the fullest one's and the largest.
    pub listeners: u32,
}

/// A sock_diag socket bound to the server namespace, watching one TCP port.
pub struct ListenDiag {
    diag: Diag,
    port: u16,
    family: Family,
    /// Also read IPv6 sockets: a program of the user's own may listen dual-stack (Java does by
    /// default), and its IPv4 connections are then IPv6 sockets with mapped addresses.
    mapped: bool,
}

impl ListenDiag {
    /// A sock_diag socket in `ns` for the `family` listener on `port`.
    pub fn open(ns: &Netns, port: u16, family: Family) -> Result<ListenDiag, Failure> {
        let diag = ns
            .run(Diag::open)?
            .map_err(|e| Failure::environment(format!("cannot open a sock_diag socket: {e}")))?;
        Ok(ListenDiag {
            diag,
            port,
            family,
            mapped: false,
        })
    }

    /// Reads dual-stack (IPv6) sockets on the port too (a second dump of each kind per sample).
    pub fn with_mapped(mut self, mapped: bool) -> ListenDiag {
        self.mapped = mapped && self.family == Family::Ipv4;
        self
    }

    /// The accept-queue limit (Send-Q) of every listening socket on the port, in the kernel's
    /// order.
    pub fn limits(&mut self) -> std::io::Result<Vec<u32>> {
        let mut out = Vec::new();
        let mut families = vec![self.family.af()];
        if self.mapped {
            families.push(libc::AF_INET6 as u8);
        }
        for af in families {
            self.diag.dump(af, StateFlags::LISTEN, self.port, |h| {
                out.push(h.send_queue)
            })?;
        }
        Ok(out)
    }

    /// Reads the accept queue and the SYN-RECV count of the port now.
    pub fn sample(&mut self) -> std::io::Result<QueueSample> {
        let mut out = QueueSample::default();
        let mut families = vec![self.family.af()];
        if self.mapped {
            families.push(libc::AF_INET6 as u8);
        }
        for af in families {
            self.diag.dump(af, StateFlags::LISTEN, self.port, |h| {
                out.listeners += 1;
                out.accept_queue = out.accept_queue.max(h.recv_queue);
                out.accept_queue_limit = out.accept_queue_limit.max(Some(h.send_queue));
            })?;
            self.diag.dump(af, StateFlags::SYN_RECV, self.port, |_| {
                out.syn_recv += 1;
            })?;
        }
        Ok(out)
    }
}
