//! The `[link]` and `[flood]` tables: the wire between the hosts ([`LinkPlan`]: RTT, jitter,
//! loss each way) and the spoofed-SYN flood sent alongside the storm ([`FloodPlan`]).

use std::time::Duration;

use super::values::{bad, duration, positive, probability};
use super::{FloodPlan, LinkPlan, MAX_DURATION, MAX_FLOOD_COUNT, MAX_RTT};
use crate::error::Failure;
use crate::scenario::{FloodFile, LinkFile};

pub(super) fn link_plan(l: &LinkFile, seed: u64) -> Result<LinkPlan, Failure> {
    let rtt = duration("link.rtt", &l.rtt, Duration::ZERO)?;
    let jitter = duration("link.jitter", &l.jitter, Duration::ZERO)?;
    if rtt > MAX_RTT {
        return Err(bad(format!("link.rtt: at most {}s", MAX_RTT.as_secs())));
    }
    if jitter > rtt / 2 {
        return Err(bad(format!(
            "link.jitter = {:?} is more than half of link.rtt = {:?}: each direction holds a \
             packet for rtt/2 ± jitter, which cannot go below zero",
            jitter, rtt
        )));
    }
    let both = probability("link.loss", l.loss)?;
    let to_server = probability("link.loss_to_server", l.loss_to_server)?;
    let to_client = probability("link.loss_to_client", l.loss_to_client)?;
    Ok(LinkPlan {
        rtt,
        jitter,
        loss_to_server: to_server.or(both).unwrap_or(0.0),
        loss_to_client: to_client.or(both).unwrap_or(0.0),
        seed,
    })
}

pub(super) fn flood_plan(f: &FloodFile) -> Result<FloodPlan, Failure> {
    let rate = positive("flood.rate", f.rate)?;
    let count = match f.count {
        Some(n) if (1..=MAX_FLOOD_COUNT).contains(&n) => n,
        Some(n) => {
            return Err(bad(format!(
                "flood.count = {n}: must be between 1 and {MAX_FLOOD_COUNT}"
            )))
        }
        None => return Err(bad("flood.count is required: every flood is bounded".into())),
    };
    let start = duration("flood.start", &f.start, Duration::ZERO)?;
    if start > MAX_DURATION || Duration::from_secs_f64(count as f64 / rate) > MAX_DURATION {
        return Err(bad(format!(
            "flood: start and count/rate must each stay within {}s",
            MAX_DURATION.as_secs()
        )));
    }
    Ok(FloodPlan { rate, count, start })
}
