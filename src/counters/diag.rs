//! Listen-queue occupancy through sock_diag netlink (what `ss -lnt` and `ss state syn-recv` show).
//!
//! For a LISTEN socket the kernel reports `idiag_rqueue` = current accept-queue length
//! (`sk_ack_backlog`, `ss` Recv-Q) and `idiag_wqueue` = its limit (`sk_max_ack_backlog`, the
//! backlog after the somaxconn clamp, `ss` Send-Q). The accept queue holds limit + 1. The SYN queue
//! is visible only as the number of request sockets in SYN-RECV for the port.
//! The netlink socket is opened inside the server namespace, so it only ever sees lab sockets.

use netlink_packet_sock_diag::inet::{InetResponse, InetResponseHeader, SocketId, StateFlags};

use crate::error::Failure;
use crate::family::Family;
use crate::netns::Netns;
use crate::sockdiag::Diag;

/// The listen queue of one port at one instant.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct QueueSample {
    /// Connections waiting in the accept queue (`ss -lnt` Recv-Q).
    pub accept_queue: u32,
    /// The accept-queue limit the kernel uses (`ss -lnt` Send-Q); `None` if no listener was found.
    pub accept_queue_limit: Option<u32>,
    /// Request sockets in SYN-RECV for the port (the SYN queue; cookies leave no entry).
    /// `None` when this sample skipped the count to stay within its CPU budget (see
    /// [`ListenDiag::sample_within_budget`]).
    pub syn_recv: Option<u32>,
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
    /// Count every listener on the port, of either family, v6-only ones too (`watch`: a live
    /// host's clients may come in on either).
    any_family: bool,
    /// The port's one listener, once a dump found it, when the port is known to have exactly
    /// one ([`ListenDiag::sole_listener`]).
    sole: Option<Option<(u8, SocketId)>>,
    /// The SYN-RECV count's CPU budget in the sampler ([`SYN_RECV_SHARE`]): its `taken` and
    /// `skipped` are the samples that counted and those that did not.
    pub syn_recv: super::budget::Budget,
}

/// The share of one core that counting SYN-RECV may take in the sampler.
///
/// Why a budget: the count is a dump of the namespace's whole TCP established hash, and the
/// kernel visits every socket in it, TIME-WAITs included (about 200 ns each here: 5 ms for the
/// 24,000 TIME-WAITs a few seconds of storm leave at the server). No other interface gives the
/// SYN queue's length. The accept queue (the listeners' dump) is read every sample.
///
/// Two shares: [`SYN_RECV_SHARE`] while the SYN queue is in use (the last count found more than
/// [`SYN_RECV_BUSY`]), [`SYN_RECV_IDLE_SHARE`] while it is all but empty, as in a fast storm on
/// veth, where the walk is all TIME-WAITs and finds a handful. At 0.25 % throughout, a namespace
/// with 8,000 sockets (4,097 SYN-RECV behind a 900 ms link and a full accept queue) was counted
/// every 640 ms, and the peak, 4,097, read as 3,583: the SYN queue's high mark must be seen.
pub const SYN_RECV_SHARE: f64 = 0.01;
pub const SYN_RECV_IDLE_SHARE: f64 = 0.0025;
/// More SYN-RECV than this in the last count: the SYN queue is in use.
pub const SYN_RECV_BUSY: u32 = 32;

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
            any_family: false,
            sole: None,
            syn_recv: super::budget::Budget::new(SYN_RECV_IDLE_SHARE),
        })
    }

    /// Reads dual-stack (IPv6) sockets on the port too (a second dump of each kind per sample).
    pub fn with_mapped(mut self, mapped: bool) -> ListenDiag {
        self.mapped = mapped && self.family == Family::Ipv4;
        self
    }

    /// Reads the listeners of both families, whatever they take (`watch`, which knows no
    /// family: an IPv4 one and a v6-only one on the same port both have clients).
    pub fn any_family(mut self) -> ListenDiag {
        self.mapped = self.family == Family::Ipv4;
        self.any_family = true;
        self
    }

    /// Whether a listener of address family `af` found by a dump is one the run's clients can
    /// reach: on an IPv4 run, an IPv6 listener counts only if it takes IPv4 connections (dual-
    /// stack Java does); nginx's `listen [::]:8080 ipv6only=on` beside its IPv4 socket does not.
    fn serves(&self) -> impl Fn(u8, &InetResponse) -> bool {
        let (any_family, own) = (self.any_family, self.family.af());
        move |af, r| any_family || af == own || !crate::sockdiag::v6only(r)
    }

    /// The port has exactly one listener for as long as this watches it (the lab's own server):
    /// after the first dump, each sample looks that socket up by its id instead of dumping the
    /// listeners. A dump walks the listening hash of the whole machine (listeners stay in the
    /// host's hash even in a namespace with a hash of its own); the lookup costs one bucket.
    /// If the socket is gone (or another took its address), the next sample dumps again.
    pub fn sole_listener(mut self, sole: bool) -> ListenDiag {
        self.sole = sole.then_some(None);
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
            let serves = self.serves();
            self.diag.dump(af, StateFlags::LISTEN, self.port, |r| {
                if serves(af, r) {
                    out.push(r.header.send_queue)
                }
            })?;
        }
        Ok(out)
    }

    /// Reads the accept queue and the SYN-RECV count of the port now.
    pub fn sample(&mut self) -> std::io::Result<QueueSample> {
        self.read(true)
    }

    /// [`ListenDiag::sample`] for the sampler: the accept queue every time, the SYN-RECV count
    /// only when it is due, so that counting takes at most [`SYN_RECV_SHARE`] of a core. After
    /// a count that took `c` of CPU, the next waits `c / SYN_RECV_SHARE`: with few sockets in
    /// the namespace that is every sample; with tens of thousands of TIME-WAITs, a few per
    /// second. Every count given is exact.
    pub fn sample_within_budget(&mut self) -> std::io::Result<QueueSample> {
        let reading = self.syn_recv.begin();
        let out = self.read(reading.is_some());
        if let Some(r) = reading {
            let busy = out.as_ref().is_ok_and(|q| q.syn_recv > Some(SYN_RECV_BUSY));
            self.syn_recv.set_share(match busy {
                true => SYN_RECV_SHARE,
                false => SYN_RECV_IDLE_SHARE,
            });
            self.syn_recv.end(r);
        }
        out
    }

    fn read(&mut self, syn_recv: bool) -> std::io::Result<QueueSample> {
        let mut out = QueueSample::default();
        let mut families = vec![self.family.af()];
        if self.mapped {
            families.push(libc::AF_INET6 as u8);
        }
        self.listeners(&families, &mut out)?;
        if syn_recv {
            let count = out.syn_recv.get_or_insert(0);
            for af in families {
                self.diag.dump(af, StateFlags::SYN_RECV, self.port, |_| {
                    *count += 1;
                })?;
            }
        }
        Ok(out)
    }

    /// The accept queue of the port's listeners: the fullest queue and the largest limit.
    fn listeners(&mut self, families: &[u8], out: &mut QueueSample) -> std::io::Result<()> {
        let add = |out: &mut QueueSample, h: &InetResponseHeader| {
            out.listeners += 1;
            out.accept_queue = out.accept_queue.max(h.recv_queue);
            out.accept_queue_limit = out.accept_queue_limit.max(Some(h.send_queue));
        };
        if let Some(Some((af, id))) = &self.sole {
            match self.diag.get(*af, id) {
                Ok(Some(h)) => {
                    add(out, &h);
                    return Ok(());
                }
                // Gone: the dump below finds what listens now.
                Ok(None) => {}
                // A kernel that cannot look sockets up: dump from now on.
                Err(_) => self.sole = None,
            }
        }
        // The listeners' ids, only where one is to be remembered.
        let learn = self.sole.is_some();
        let mut seen = Vec::new();
        let serves = self.serves();
        for &af in families {
            self.diag.dump(af, StateFlags::LISTEN, self.port, |r| {
                if !serves(af, r) {
                    return;
                }
                add(out, &r.header);
                if learn {
                    seen.push((af, r.header.socket_id.clone()));
                }
            })?;
        }
        if let Some(sole) = &mut self.sole {
            *sole = (seen.len() == 1).then(|| seen.remove(0));
        }
        Ok(())
    }
}
