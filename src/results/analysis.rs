//! Pure computations over recorded data, shared by the plots and the generated explanation so
//! that a chart and the sentence describing it always agree.

use crate::record::{Conn, Outcome};

/// Points of the empirical CDF of `values` as (value, percent of `total`), at most about
/// `max_points` of them, taken at evenly spaced ranks (the steps at each SYN retransmission stay
/// sharp; 10,000 points would only bloat the SVG). `total` may exceed `values.len()`: the curve
/// then levels off below 100 %, at the share that has a value at all.
pub fn cdf(values: &mut [f64], total: usize, max_points: usize) -> Vec<(f64, f64)> {
    values.sort_by(f64::total_cmp);
    let n = values.len();
    if n == 0 || total == 0 {
        return Vec::new();
    }
    let steps = n.min(max_points.max(1));
    let mut out: Vec<(f64, f64)> = Vec::with_capacity(steps + 1);
    let mut last = usize::MAX;
    for k in 0..=steps {
        let idx = ((k * n).div_ceil(steps)).saturating_sub(1);
        if idx != last {
            out.push((values[idx], 100.0 * (idx + 1) as f64 / total as f64));
            last = idx;
        }
    }
    out
}

/// The bin width for "outcomes over time": 100 ms, or coarser (1 s, 10 s) so there are at most
/// about 600 bins.
pub fn bin_width_us(span_us: u64) -> u64 {
    [100_000, 1_000_000, 10_000_000]
        .into_iter()
        .find(|w| span_us / w <= 600)
        .unwrap_or(60_000_000)
}

/// Connections per outcome per bin of scheduled start: `counts[bin][outcome index]`.
pub fn outcome_bins(conns: &[Conn], width_us: u64) -> Vec<[u64; Outcome::COUNT]> {
    let last = conns.iter().map(|c| c.scheduled_us).max().unwrap_or(0);
    let mut bins = vec![[0u64; Outcome::COUNT]; (last / width_us) as usize + 1];
    for c in conns {
        bins[(c.scheduled_us / width_us) as usize][c.outcome.index()] += 1;
    }
    bins
}

/// Rates per second from a cumulative series, over consecutive windows of at least
/// `min_window_s` (at 10 ms sampling a per-sample rate is mostly noise): `(from, to, rate)`, to be
/// drawn as steps, since the rate is an average over the whole window. Empty cells are skipped; a
/// counter that went backwards (a reset) gives no negative rate.
pub fn rates(t_s: &[f64], cumulative: &[Option<f64>], min_window_s: f64) -> Vec<(f64, f64, f64)> {
    let points: Vec<(f64, f64)> = t_s
        .iter()
        .zip(cumulative)
        .filter_map(|(t, v)| v.map(|v| (*t, v)))
        .collect();
    let mut out = Vec::new();
    let mut start = match points.first() {
        Some(p) => *p,
        None => return out,
    };
    for &(t, v) in &points[1..] {
        let dt = t - start.0;
        if dt >= min_window_s && dt > 0.0 {
            out.push((start.0, t, ((v - start.1) / dt).max(0.0)));
            start = (t, v);
        }
    }
    out
}

/// Spans `(from, to)` in seconds during which `values` were at or above `threshold`, from the
/// first to the last sample of each run of such samples. Two such samples at most `bridge_s`
/// apart belong to one span even with samples below between them: a queue that accept() drains
/// and the next SYN refills dips between readings without ceasing to be full.
pub fn spans_at_or_above(
    t_s: &[f64],
    values: &[Option<f64>],
    threshold: f64,
    bridge_s: f64,
) -> Vec<(f64, f64)> {
    let mut spans: Vec<(f64, f64)> = Vec::new();
    for (t, v) in t_s.iter().zip(values) {
        if v.is_none_or(|v| v < threshold) {
            continue;
        }
        match spans.last_mut() {
            Some(last) if *t - last.1 <= bridge_s + 1e-9 => last.1 = *t,
            _ => spans.push((*t, *t)),
        }
    }
    spans
}

/// The bridge for [`spans_at_or_above`] over a series sampled every `interval_s`: one missed
/// sample at 100 ms, about 200 ms at finer sampling.
pub fn bridge_s(interval_s: f64) -> f64 {
    (2.0 * interval_s).max(0.2)
}

/// The accept-queue length counted as "full" for a queue that holds `capacity`: 95 % of it, and at
/// least one short of it. A 100 ms sample of a queue that is drained by accept() and refilled by
/// the next SYN rarely catches the exact capacity.
pub fn full_threshold(capacity: u64) -> u64 {
    let c = capacity.max(1);
    (c * 95).div_ceil(100).min(c - 1).max(1)
}

/// How many of `latencies_s` lie within `tolerance_s` of each mark; the count next to each mark.
pub fn near_marks(latencies_s: &[f64], marks: &[f64], tolerance_s: f64) -> Vec<(f64, u64)> {
    marks
        .iter()
        .map(|m| {
            let n = latencies_s
                .iter()
                .filter(|l| (**l - m).abs() <= tolerance_s)
                .count();
            (*m, n as u64)
        })
        .collect()
}

/// Connect latencies of the connections with outcome `o` that connected, in milliseconds from
/// the scheduled start.
pub fn connect_latencies_ms(conns: &[Conn], o: Option<Outcome>) -> Vec<f64> {
    conns
        .iter()
        .filter(|c| o.is_none_or(|o| c.outcome == o))
        .filter_map(|c| c.connect_latency_us())
        .map(|us| us as f64 / 1000.0)
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn conn(scheduled_us: u64, outcome: Outcome) -> Conn {
        Conn {
            scheduled_us,
            started_us: scheduled_us,
            connected_us: None,
            outcome,
            retransmits: 0,
        }
    }

    #[test]
    fn cdf_levels_off_at_the_share_that_has_a_value() {
        let mut v = vec![3.0, 1.0, 2.0, 4.0];
        let c = cdf(&mut v, 8, 100);
        assert_eq!(c, vec![(1.0, 12.5), (2.0, 25.0), (3.0, 37.5), (4.0, 50.0)]);
        assert!(cdf(&mut [], 5, 10).is_empty());
    }

    #[test]
    fn cdf_is_thinned_but_keeps_its_ends() {
        let mut v: Vec<f64> = (0..10_000).map(f64::from).collect();
        let c = cdf(&mut v, 10_000, 100);
        assert!(c.len() <= 101, "{}", c.len());
        assert_eq!(c.last(), Some(&(9999.0, 100.0)));
        assert!(c.windows(2).all(|w| w[0].0 < w[1].0 && w[0].1 < w[1].1));
    }

    #[test]
    fn bins_count_outcomes_by_scheduled_start() {
        let conns = [
            conn(0, Outcome::Ok),
            conn(99_999, Outcome::Ok),
            conn(100_000, Outcome::ConnectTimeout),
            conn(250_000, Outcome::Ok),
        ];
        let b = outcome_bins(&conns, 100_000);
        assert_eq!(b.len(), 3);
        assert_eq!(b[0][Outcome::Ok.index()], 2);
        assert_eq!(b[1][Outcome::ConnectTimeout.index()], 1);
        assert_eq!(b[2][Outcome::Ok.index()], 1);
        assert_eq!(bin_width_us(4_000_000), 100_000);
        assert_eq!(bin_width_us(120_000_000), 1_000_000);
    }

    #[test]
    fn rates_are_per_second_over_windows() {
        let t: Vec<f64> = (0..=10).map(|i| i as f64 * 0.05).collect();
        // 10 events per 50 ms sample = 200/s, with one empty cell.
        let mut v: Vec<Option<f64>> = (0..=10).map(|i| Some(i as f64 * 10.0)).collect();
        v[3] = None;
        let r = rates(&t, &v, 0.1);
        assert!(!r.is_empty());
        for (_, _, rate) in &r {
            assert!((rate - 200.0).abs() < 1e-9, "{r:?}");
        }
        assert_eq!((r[0].0, r[0].1), (0.0, 0.1), "the first window: {r:?}");
        assert!(r.windows(2).all(|w| w[0].1 == w[1].0), "consecutive: {r:?}");
        assert!(rates(&t, &[None; 11], 0.1).is_empty());
    }

    #[test]
    fn spans_bridge_a_single_dip() {
        let t: Vec<f64> = (0..10).map(f64::from).collect();
        let v = [0., 5., 5., 4., 5., 0., 0., 5., 5., 0.].map(Some);
        assert_eq!(
            spans_at_or_above(&t, &v, 5.0, 2.0),
            vec![(1.0, 4.0), (7.0, 8.0)]
        );
        assert_eq!(
            spans_at_or_above(&t, &v, 5.0, 1.0),
            vec![(1.0, 2.0), (4.0, 4.0), (7.0, 8.0)]
        );
        assert!(spans_at_or_above(&t, &[Some(0.0); 10], 5.0, 2.0).is_empty());
        assert_eq!(bridge_s(0.1), 0.2);
        assert_eq!(bridge_s(0.01), 0.2);
        assert_eq!(bridge_s(0.5), 1.0);
    }

    #[test]
    fn full_means_within_five_percent_and_at_least_one_short() {
        assert_eq!(full_threshold(129), 123);
        assert_eq!(full_threshold(5), 4);
        assert_eq!(full_threshold(1), 1);
        assert_eq!(full_threshold(512), 487);
    }

    #[test]
    fn latencies_are_counted_near_their_mark() {
        let l = [0.001, 1.05, 0.95, 2.1, 2.5, 7.0];
        assert_eq!(
            near_marks(&l, &[1.0, 2.0, 3.0], 0.2),
            vec![(1.0, 2), (2.0, 1), (3.0, 0)]
        );
    }
}
