//! When the kernel retransmits a handshake, as the running kernel does it and as the 3.10-era
//! articles say: the client's SYN (`tcp_syn_retries`, `tcp_syn_linear_timeouts`) and the
//! server's SYN-ACK (`tcp_synack_retries`). `explain`, the plots and the planner use these.

/// The client's SYN retransmission timer, in seconds after `connect()`, `count` times: every
/// second for the first `linear_timeouts` + 1 (Linux 6.x `tcp_syn_linear_timeouts`, default 4),
/// then doubling: 1, 2, 3, 4, 5, 7, 11, 19, 35, 67 s. A SYN dropped at a full accept queue is
/// answered at one of these marks, so connect latencies cluster there. With `linear_timeouts` 0
/// this is the classic 1, 3, 7, 15 s. How many there are before `connect()` gives up is
/// [`syn_retransmissions`].
pub fn syn_retry_times(linear_timeouts: u32, count: u32) -> Vec<f64> {
    let (mut t, mut rto) = (0.0, 1.0);
    (1..=count.min(64))
        .map(|i| {
            t += rto;
            if i > linear_timeouts {
                rto = (rto * 2.0f64).min(120.0);
            }
            t
        })
        .collect()
}

/// When `connect()` gives up (ETIMEDOUT) on a SYN nobody answers. The kernel does not count
/// retransmissions: it gives up at the first timer whose elapsed time reaches the *exponential*
/// model of `tcp_syn_retries` (`tcp_model_timeout`: (2^(retries+1) − 1) s, each step capped at
/// TCP_RTO_MAX), while the linear phase (`tcp_syn_linear_timeouts`) retransmits every second.
/// So on 6.x with the defaults a client retransmits its SYN 10 times, not 6, and gives up after
/// 131 s, not 127. Measured here: `tcp_syn_retries` 1 gives up at 3.07 s after 2
/// retransmissions, 2 at 7.1 s, 3 at 19.4 s after 7.
pub fn connect_gives_up_after(linear_timeouts: u32, retries: u32) -> f64 {
    let model = model_timeout(retries);
    syn_retry_times(linear_timeouts, 64)
        .into_iter()
        .find(|t| *t >= model)
        .unwrap_or(model)
}

/// The SYN retransmissions a client makes before it gives up ([`connect_gives_up_after`]).
pub fn syn_retransmissions(linear_timeouts: u32, retries: u32) -> Vec<f64> {
    let end = connect_gives_up_after(linear_timeouts, retries);
    syn_retry_times(linear_timeouts, 64)
        .into_iter()
        .take_while(|t| *t < end)
        .collect()
}

/// `tcp_model_timeout(sk, boundary, TCP_TIMEOUT_INIT)`: doubling from 1 s up to TCP_RTO_MAX
/// (120 s), then 120 s a step.
fn model_timeout(boundary: u32) -> f64 {
    let thresh = 6; // ilog2(TCP_RTO_MAX / 1 s)
    if boundary <= thresh {
        ((2u64 << boundary) - 1) as f64
    } else {
        ((2u64 << thresh) - 1) as f64 + 120.0 * f64::from(boundary - thresh)
    }
}

/// When the server retransmits a SYN-ACK whose ACK does not come (or was dropped at a full
/// accept queue): doubling from 1 s, `tcp_synack_retries` times (1, 3, 7, 15, 31 s for the
/// default 5); the request is dropped at the next mark. No linear phase: that is the client's.
pub fn synack_retry_times(retries: u32) -> Vec<f64> {
    syn_retry_times(0, retries)
}

/// The SYN queue as the 3.10-era articles give it (seed 003): the request-socket table was
/// sized `roundup_pow_of_two(max(8, min(backlog, tcp_max_syn_backlog)) + 1)`.
pub fn legacy_syn_queue(limit: u32, max_syn_backlog: u32) -> u32 {
    (limit.min(max_syn_backlog).max(8) + 1).next_power_of_two()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn syn_retries_are_linear_then_exponential() {
        assert_eq!(
            syn_retry_times(4, 10),
            vec![1., 2., 3., 4., 5., 7., 11., 19., 35., 67.]
        );
        assert_eq!(syn_retry_times(0, 4), vec![1., 3., 7., 15.]);
        assert_eq!(syn_retry_times(4, 2), vec![1., 2.]);
    }

    #[test]
    fn connect_gives_up_by_the_exponential_model_of_syn_retries() {
        // Measured on 6.18 (linear 4): retries 1 → 3.07 s after 2, 2 → 7.1 s, 3 → 19.4 s after 7.
        assert_eq!(connect_gives_up_after(4, 1), 3.0);
        assert_eq!(syn_retransmissions(4, 1).len(), 2);
        assert_eq!(connect_gives_up_after(4, 2), 7.0);
        assert_eq!(connect_gives_up_after(4, 3), 19.0);
        assert_eq!(syn_retransmissions(4, 3).len(), 7);
        // The defaults: 10 retransmissions and 131 s, where 3.10 had 6 and 127 s.
        assert_eq!(connect_gives_up_after(4, 6), 131.0);
        assert_eq!(syn_retransmissions(4, 6).len(), 10);
        assert_eq!(connect_gives_up_after(0, 6), 127.0);
        assert_eq!(syn_retransmissions(0, 6), vec![1., 3., 7., 15., 31., 63.]);
        assert_eq!(synack_retry_times(5), vec![1., 3., 7., 15., 31.]);
    }

    #[test]
    fn the_old_syn_queue_was_a_power_of_two() {
        assert_eq!(legacy_syn_queue(128, 2048), 256);
        assert_eq!(legacy_syn_queue(511, 4096), 512);
        assert_eq!(legacy_syn_queue(8, 2048), 16);
        assert_eq!(legacy_syn_queue(4096, 1024), 2048);
    }
}
