//! The lab's two hosts: a server and a client network namespace joined by a veth pair (or, when
//! the scenario emulates RTT or loss, by two TUN devices and the lab's delay line), each with its
//! own sysctls. [`Topology::build`] returns them live; dropping the [`Topology`] closes the
//! namespace descriptors and the kernel tears everything down.

pub mod claim;
pub mod delay;
pub mod link;
pub mod sysctl;

use std::collections::BTreeMap;
use std::time::Duration;

pub use delay::{DelayLine, LinkStats};

use crate::error::Failure;
use crate::family::{Family, LabAddrs};
use crate::netns::Netns;

/// The wire between the hosts, as the plan resolved it. All zero: a plain veth pair. Anything
/// else: the delay line.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct LinkPlan {
    /// Round-trip time; each direction holds packets for half of it.
    pub rtt: Duration,
    /// Each packet's hold varies uniformly by ± this much, drawn per packet (so packets closer
    /// together than that may be reordered, as with netem).
    pub jitter: Duration,
    /// Probability that a packet towards the server (client → server) is dropped.
    pub loss_to_server: f64,
    /// Probability that a packet towards the client is dropped.
    pub loss_to_client: f64,
    /// Seeds the loss and jitter draws (the storm's seed), so reruns are alike.
    pub seed: u64,
}

impl LinkPlan {
    /// True when the link needs no emulation: the lab uses veth, as fast as the machine allows.
    pub fn is_ideal(&self) -> bool {
        self.rtt.is_zero()
            && self.jitter.is_zero()
            && self.loss_to_server == 0.0
            && self.loss_to_client == 0.0
    }
}

/// The live lab: two namespaces, linked, with their sysctls applied and read back.
pub struct Topology {
    pub server: Netns,
    pub client: Netns,
    /// The hosts' addresses, in the subnet this lab claimed.
    pub addrs: LabAddrs,
    /// The claim on that subnet, held as long as the topology lives.
    subnet: claim::Subnet,
    /// Effective sysctl values per namespace, as read back after setup.
    pub server_sysctl: BTreeMap<String, String>,
    pub client_sysctl: BTreeMap<String, String>,
    /// The delay line, when the link is emulated.
    pub delay: Option<DelayLine>,
    /// Ends the namespaces' sockets should the lab die before [`Topology`]'s `Drop` does it.
    /// Dropped after that `Drop` has run (fields drop after it).
    _warden: Option<crate::warden::Warden>,
}

/// IPv6 settings of both namespaces, written before their interfaces exist (a new interface
/// takes `default`'s values): no duplicate address detection, which would hold the lab's
/// addresses tentative for a second and drop the first packets; no router solicitations or
/// advertisements; and the MLD report an interface repeats for each multicast group it joins
/// sent 20 ms after the first instead of up to 1 s (a whole number of ticks at any HZ), so both
/// are sent while the lab is being built, not during the run, where the receiver's
/// `ip6_mc_input` would free them as drops ([`link`] waits until they have been). With veth's
/// neighbours written in advance ([`link`]), no ICMPv6 crosses the link in a run (TUN has none:
/// it is `IFF_NOARP`).
/// Duplicate address detection is off only if both `all` and the interface say so.
fn quiet_ipv6() -> BTreeMap<String, String> {
    let mut quiet = BTreeMap::new();
    for conf in ["all", "default"] {
        for (key, value) in [
            ("accept_dad", "0"),
            ("accept_ra", "0"),
            ("router_solicitations", "0"),
            ("mldv2_unsolicited_report_interval", "20"),
            // A link-local address (EUI-64 of the fixed MAC): `link` waits for it, as the sign
            // that IPv6 has configured the interface.
            ("addr_gen_mode", "0"),
        ] {
            quiet.insert(format!("net.ipv6.conf.{conf}.{key}"), value.to_string());
        }
    }
    quiet
}

/// An environment error (exit 3) if this kernel does not speak `family`: said before a run
/// waits for its turn to storm, and again before the hosts are built.
pub fn require(family: Family) -> Result<(), Failure> {
    if family.available() {
        return Ok(());
    }
    Err(Failure::environment(format!(
        "family = {family}: this kernel has no IPv6 (/proc/sys/net/ipv6/conf is missing: \
         built without it, or booted with ipv6.disable=1); run with family = \"ipv4\""
    )))
}

impl Topology {
    /// Creates both namespaces (TCP hashes sized for `sockets` connections), applies the sysctls, links them, and reads the values back. An
    /// emulated link is calibrated and armed before this returns.
    pub fn build(
        server_sysctl: &BTreeMap<String, String>,
        client_sysctl: &BTreeMap<String, String>,
        link_plan: &LinkPlan,
        family: Family,
        sockets: Option<u64>,
    ) -> Result<Topology, Failure> {
        require(family)?;
        let subnet = claim::Subnet::claim()?;
        let addrs = family.addrs_in(subnet.index);
        let server = Netns::create_for("server", sockets)?;
        let client = Netns::create_for("client", sockets)?;
        let warden = crate::netns::guard(&[&server, &client]);
        if family == Family::Ipv6 {
            sysctl::apply(&server, &quiet_ipv6())?;
            sysctl::apply(&client, &quiet_ipv6())?;
        }
        sysctl::apply(&server, server_sysctl)?;
        sysctl::apply(&client, client_sysctl)?;
        let delay = if link_plan.is_ideal() {
            link::connect_veth(&server, &client, &addrs)?;
            None
        } else {
            let server_tun = delay::open_tun(&server)?;
            let client_tun = delay::open_tun(&client)?;
            link::configure_tun(&server, &client, &addrs)?;
            let mut line = DelayLine::start(server_tun, client_tun, link_plan)?;
            // Calibrate with packets really held (up to 1 ms each way): a receiver that sleeps
            // while its packet is held pays a wakeup that a zero-delay handshake never shows.
            let probe = (link_plan.rtt / 2).min(std::time::Duration::from_millis(1));
            line.probe(probe);
            let handshake = delay::calibrate(&server, &client, &addrs)?;
            // Let the calibration's closing segments cross at the probe delay, so none is
            // held for a full rtt/2 into the run and its counters.
            std::thread::sleep(probe * 6 + std::time::Duration::from_millis(10));
            line.arm(handshake.saturating_sub(probe * 2) / 2);
            Some(line)
        };
        let server_eff = sysctl::read_effective(&server, server_sysctl.keys())?;
        let client_eff = sysctl::read_effective(&client, client_sysctl.keys())?;
        Ok(Topology {
            server,
            client,
            addrs,
            subnet,
            server_sysctl: server_eff,
            client_sysctl: client_eff,
            delay,
            _warden: warden,
        })
    }

    /// Which subnet of the range this lab claimed.
    pub fn subnet(&self) -> u8 {
        self.subnet.index
    }

    /// Stops the delay line (if any) and returns what it did, with the TUN rings' drops
    /// since `ring_drops_before`.
    pub fn stop_link(&mut self, ring_drops_before: Option<u64>) -> Option<LinkStats> {
        // Read first: the devices vanish with the pump's descriptors.
        let now = self.ring_drops();
        let mut stats = self.delay.take()?.stop();
        match (ring_drops_before, now) {
            (Some(before), Some(now)) => stats.ring_drops = now.saturating_sub(before),
            _ => stats.ring_drops_unknown = true,
        }
        Some(stats)
    }

    /// Waits, at most `bound`, until the delay line holds nothing, then for one more `rtt`, so
    /// the answers to its last packets come back too. What it still holds when the pump stops is
    /// `held_at_stop` in its stats. Nothing to wait for on veth.
    pub fn settle(&self, rtt: std::time::Duration, bound: std::time::Duration) {
        let Some(line) = &self.delay else {
            return;
        };
        let end = std::time::Instant::now() + bound;
        let nap = std::time::Duration::from_millis(5);
        while line.held() > 0 && std::time::Instant::now() + nap < end {
            std::thread::sleep(nap);
        }
        let left = end.saturating_duration_since(std::time::Instant::now());
        std::thread::sleep(rtt.min(left));
    }

    /// Packets both TUN rings have dropped so far: 0 on veth, `None` if unreadable.
    pub fn ring_drops(&self) -> Option<u64> {
        if self.delay.is_none() {
            return Some(0);
        }
        let mut sum = 0;
        for ns in [&self.server, &self.client] {
            sum += link::ring_drops(ns).ok()?;
        }
        Some(sum)
    }
}

impl Drop for Topology {
    /// The hosts go down with no socket left: every connection still in the namespaces (an
    /// orphan whose FIN the dead link will never carry, a TIME-WAIT) is ended now, so that no
    /// namespace outlives the lab and nothing of this run reaches the next one.
    fn drop(&mut self) {
        for ns in [&self.server, &self.client] {
            if let Err(e) = crate::netns::end_sockets(ns) {
                eprintln!(
                    "warning: could not end the sockets left in the {} namespace ({e}); it may \
                     linger until they time out",
                    ns.label()
                );
            }
        }
    }
}
