//! The TUN devices at the two ends of the delay line: their name, their ring length, and
//! opening one inside a namespace. Kept apart because it is the only part that talks to
//! `/dev/net/tun`, and the only part `link.rs` needs to configure the devices.

use std::os::fd::{AsRawFd, FromRawFd, OwnedFd};

use crate::error::Failure;
use crate::netns::Netns;

/// Name of the TUN device in each namespace.
pub const DEVICE: &str = "bl-dl";
/// Ring length of each TUN device: 100 ms at 100,000 packets/s, longer than this VM's stalls.
pub const TXQUEUELEN: u32 = 10_000;

/// Opens a TUN device named [`DEVICE`] inside `ns`. The device exists as long as the returned
/// descriptor is open, so it dies with the lab, however the lab ends.
pub fn open_tun(ns: &Netns) -> Result<OwnedFd, Failure> {
    let label = ns.label();
    ns.run(|| -> std::io::Result<OwnedFd> {
        // SAFETY: plain syscalls on a path and a descriptor we own; `ifr` is a zeroed ifreq
        // (40 bytes) with the name and flags where the kernel expects them.
        unsafe {
            let fd = libc::open(
                c"/dev/net/tun".as_ptr(),
                libc::O_RDWR | libc::O_CLOEXEC | libc::O_NONBLOCK,
            );
            if fd < 0 {
                return Err(std::io::Error::last_os_error());
            }
            let fd = OwnedFd::from_raw_fd(fd);
            let mut ifr = [0u8; 40];
            ifr[..DEVICE.len()].copy_from_slice(DEVICE.as_bytes());
            let flags = (libc::IFF_TUN | libc::IFF_NO_PI) as i16;
            ifr[16..18].copy_from_slice(&flags.to_ne_bytes());
            if libc::ioctl(fd.as_raw_fd(), libc::TUNSETIFF, ifr.as_mut_ptr()) < 0 {
                return Err(std::io::Error::last_os_error());
            }
            Ok(fd)
        }
    })?
    .map_err(|e| {
        Failure::environment(format!(
            "cannot create the TUN device for the emulated link in the {label} namespace: {e}. \
             Link emulation (link.rtt, link.jitter, link.loss) needs /dev/net/tun (modprobe tun) \
             and real root: run as root, or drop the [link] settings to use a plain veth"
        ))
    })
}
