//! Seeing whether a network namespace that no process holds is still alive.
//!
//! A namespace held only by its sockets (an orphan retransmitting its FIN, say) appears in no
//! `/proc/*/ns/net` and in no `lsns`. But a namespace given an id (an nsid, as `ip netns
//! list-id` shows) in another namespace keeps that id exactly as long as it lives: the kernel
//! removes it when it frees the namespace. So the watcher makes an observer namespace of its own
//! (nothing on the host changes), gives each watched namespace an id there while the lab holds
//! it, and later counts the ids left.

use std::os::fd::AsRawFd;
use std::os::unix::fs::MetadataExt;

use netlink_sys::{protocols::NETLINK_ROUTE, Socket, SocketAddr};

const RTM_NEWNSID: u16 = 88;
const RTM_GETNSID: u16 = 90;
const NETNSA_NSID: u16 = 1;
const NETNSA_FD: u16 = 3;
const NLMSG_ERROR: u16 = 2;
const NLMSG_DONE: u16 = 3;
const NLM_F_REQUEST: u16 = 1;
const NLM_F_ACK: u16 = 4;
const NLM_F_DUMP: u16 = 0x300;

/// An observer namespace (alive as long as this value) and the namespaces it watches.
pub struct NsWatch {
    socket: Socket,
}

impl NsWatch {
    pub fn new() -> NsWatch {
        // The rtnetlink socket belongs to the namespace it was made in, whichever thread uses it.
        let socket = std::thread::spawn(|| {
            nix::sched::unshare(nix::sched::CloneFlags::CLONE_NEWNET).expect("observer netns");
            let mut s = Socket::new(NETLINK_ROUTE).expect("rtnetlink socket");
            s.bind_auto().unwrap();
            s.connect(&SocketAddr::new(0, 0)).unwrap();
            s
        })
        .join()
        .unwrap();
        NsWatch { socket }
    }

    /// Watches every network namespace `pid` holds (by thread or descriptor) other than the
    /// host's; returns how many.
    pub fn watch_namespaces_of(&self, pid: u32) -> usize {
        let host = std::fs::metadata("/proc/self/ns/net").unwrap().ino();
        let mut seen = std::collections::BTreeSet::new();
        let fds = std::fs::read_dir(format!("/proc/{pid}/fd")).unwrap();
        for e in fds.flatten() {
            let p = e.path();
            let is_net =
                std::fs::read_link(&p).is_ok_and(|l| l.to_string_lossy().starts_with("net:"));
            let Ok(m) = std::fs::metadata(&p) else {
                continue;
            };
            if !is_net || m.ino() == host || !seen.insert(m.ino()) {
                continue;
            }
            // Opened for a moment only: the id does not hold the namespace.
            let ns = std::fs::File::open(&p).unwrap();
            let mut attrs = attr(NETNSA_NSID, &(-1i32).to_ne_bytes());
            attrs.extend(attr(NETNSA_FD, &(ns.as_raw_fd() as u32).to_ne_bytes()));
            let replies = self.request(RTM_NEWNSID, NLM_F_REQUEST | NLM_F_ACK, &attrs);
            assert_eq!(replies, (0, Some(0)), "RTM_NEWNSID for {}", p.display());
        }
        seen.len()
    }

    /// How many of the watched namespaces are still alive after waiting up to `within` for
    /// them all to go.
    pub fn alive_after(&self, within: std::time::Duration) -> usize {
        let start = std::time::Instant::now();
        while self.alive() > 0 && start.elapsed() < within {
            std::thread::sleep(std::time::Duration::from_millis(20));
        }
        self.alive()
    }

    /// How many of the watched namespaces are still alive.
    pub fn alive(&self) -> usize {
        self.request(RTM_GETNSID, NLM_F_REQUEST | NLM_F_DUMP, &[]).0
    }

    /// Sends one rtnetlink request; returns the data messages of the answer and its error code.
    fn request(&self, kind: u16, flags: u16, attrs: &[u8]) -> (usize, Option<i32>) {
        let mut body = vec![0u8; 4]; // struct rtgenmsg, padded: AF_UNSPEC
        body.extend_from_slice(attrs);
        let mut msg = Vec::new();
        msg.extend(((16 + body.len()) as u32).to_ne_bytes());
        msg.extend(kind.to_ne_bytes());
        msg.extend(flags.to_ne_bytes());
        msg.extend(1u32.to_ne_bytes()); // sequence
        msg.extend(0u32.to_ne_bytes()); // port: the kernel
        msg.extend(body);
        self.socket.send(&msg, 0).unwrap();
        let mut buf = vec![0u8; 64 * 1024];
        let mut messages = 0;
        loop {
            let n = self.socket.recv(&mut &mut buf[..], 0).unwrap();
            let mut off = 0;
            while off + 16 <= n {
                let len = u32::from_ne_bytes(buf[off..off + 4].try_into().unwrap()) as usize;
                let kind = u16::from_ne_bytes(buf[off + 4..off + 6].try_into().unwrap());
                match kind {
                    NLMSG_DONE => return (messages, None),
                    NLMSG_ERROR => {
                        let code = i32::from_ne_bytes(buf[off + 16..off + 20].try_into().unwrap());
                        return (messages, Some(code));
                    }
                    _ => messages += 1,
                }
                off += (len + 3) & !3;
            }
        }
    }
}

fn attr(kind: u16, payload: &[u8]) -> Vec<u8> {
    let len = 4 + payload.len();
    let mut a = Vec::new();
    a.extend((len as u16).to_ne_bytes());
    a.extend(kind.to_ne_bytes());
    a.extend_from_slice(payload);
    a.resize((len + 3) & !3, 0);
    a
}

/// The machine's TCP orphans (`/proc/net/sockstat`, counted over every namespace).
pub fn tcp_orphans() -> u64 {
    let s = std::fs::read_to_string("/proc/net/sockstat").unwrap();
    let tcp = s.lines().find(|l| l.starts_with("TCP:")).unwrap();
    let words: Vec<&str> = tcp.split_whitespace().collect();
    let i = words.iter().position(|w| *w == "orphan").unwrap();
    words[i + 1].parse().unwrap()
}
