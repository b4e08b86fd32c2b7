//! The storm's statistics, folded in one connection at a time as connections finish, so that a
//! run keeps no row of its own: the rows go to `connections.csv` as they come, and the summary
//! needs only this. A million connections held as records were about 100 MB; this keeps 16
//! bytes per connection (the start and end times the in-flight sweep sorts) and a few
//! histograms.

use std::collections::BTreeMap;

use super::outcome::OutcomeCounts;
use super::percentiles::{Percentiles, Samples};
use super::summary::{OutcomeTiming, Retransmits, Schedule};
use super::{ConnRecord, Outcome};

/// The first and last of some times, and how many there were.
#[derive(Debug, Clone, Copy)]
struct Span {
    n: u64,
    lo: u64,
    hi: u64,
}

impl Default for Span {
    fn default() -> Span {
        Span {
            n: 0,
            lo: u64::MAX,
            hi: 0,
        }
    }
}

impl Span {
    fn add(&mut self, t: u64) {
        self.n += 1;
        self.lo = self.lo.min(t);
        self.hi = self.hi.max(t);
    }

    /// Events per second over the span. `burst_interval_us`: for bursts repeated every so long,
    /// over the bursts' whole span (bursts × interval: 5 bursts of 2,000 a second apart are
    /// 2,000/s), not over the time to the last burst's start; otherwise one gap per event after
    /// the first.
    fn rate(&self, burst_interval_us: Option<u64>) -> Option<f64> {
        match burst_interval_us {
            Some(i) if self.n > 0 && i > 0 => {
                Some(self.n as f64 / ((self.hi - self.lo + i) as f64 / 1e6))
            }
            _ => (self.n > 1 && self.hi > self.lo)
                .then(|| (self.n - 1) as f64 / ((self.hi - self.lo) as f64 / 1e6)),
        }
    }
}

/// [`OutcomeTiming`]'s samples for one outcome.
#[derive(Debug, Default)]
struct Timing {
    count: u64,
    connect: Samples,
    first_byte: Samples,
    total: Samples,
}

/// What the summary needs of the connection records, added one record at a time in any order.
#[derive(Debug, Default)]
pub struct Tally {
    connections: u64,
    outcomes: OutcomeCounts,
    last_finish_us: u64,
    /// From the scheduled start (client lag charged to the latency), from `connect()`, and the
    /// first response byte of served ones from the scheduled start.
    connect: Samples,
    connect_from_start: Samples,
    response: Samples,
    by_outcome: [Timing; Outcome::COUNT],
    scheduled: Span,
    started: Span,
    lag: Samples,
    /// Start and finish times of the attempts that started, for the in-flight sweep.
    starts: Vec<u64>,
    finishes: Vec<u64>,
    retransmitted: u64,
    retransmits: u64,
    errnos: BTreeMap<i32, u64>,
}

impl Tally {
    /// A tally with room for `planned` connections' times, so that a million of them do not
    /// grow (and copy) their vectors as they come.
    pub fn with_capacity(planned: u64) -> Tally {
        let n = usize::try_from(planned).unwrap_or(0);
        Tally {
            starts: Vec::with_capacity(n),
            finishes: Vec::with_capacity(n),
            ..Tally::default()
        }
    }

    /// A tally of `records` (in any order).
    pub fn of<'a>(records: impl IntoIterator<Item = &'a ConnRecord>) -> Tally {
        let mut t = Tally::default();
        records.into_iter().for_each(|r| t.add(r));
        t
    }

    pub fn add(&mut self, r: &ConnRecord) {
        self.connections += 1;
        self.outcomes.add(r.outcome);
        self.last_finish_us = self.last_finish_us.max(r.finished_us);
        let since_start = |t: u64| t.saturating_sub(r.started_us);
        if let Some(us) = r.connect_latency_us() {
            self.connect.add(us);
        }
        if let Some(c) = r.connected_us {
            self.connect_from_start.add(since_start(c));
        }
        if r.outcome == Outcome::Ok {
            if let Some(f) = r.first_byte_us {
                self.response.add(f.saturating_sub(r.scheduled_us));
            }
        }
        let t = &mut self.by_outcome[r.outcome.index()];
        t.count += 1;
        if let Some(c) = r.connected_us {
            t.connect.add(since_start(c));
        }
        if let (Some(f), Some(c)) = (r.first_byte_us, r.connected_us) {
            t.first_byte.add(f.saturating_sub(c));
        }
        t.total.add(since_start(r.finished_us));
        // Attempts that never started (the client's budget was spent) have no start to measure.
        self.scheduled.add(r.scheduled_us);
        if r.outcome != Outcome::NotStarted {
            self.started.add(r.started_us);
            self.lag.add(r.started_us.saturating_sub(r.scheduled_us));
            self.starts.push(r.started_us);
            self.finishes.push(r.finished_us);
        }
        if r.retransmits > 0 {
            self.retransmitted += 1;
        }
        self.retransmits += r.retransmits as u64;
        if let Some(e) = r.errno {
            *self.errnos.entry(e).or_default() += 1;
        }
    }

    /// Records added.
    pub fn connections(&self) -> u64 {
        self.connections
    }

    pub fn outcomes(&self) -> OutcomeCounts {
        self.outcomes
    }

    /// When the last attempt ended, seconds since time zero.
    pub fn duration_s(&self) -> f64 {
        self.last_finish_us as f64 / 1e6
    }

    /// Connect latency from the scheduled start, from `connect()`, and the served connections'
    /// first response byte from the scheduled start.
    pub fn latencies(&self) -> (Percentiles, Percentiles, Percentiles) {
        (
            self.connect.percentiles(),
            self.connect_from_start.percentiles(),
            self.response.percentiles(),
        )
    }

    /// [`OutcomeTiming`] for every outcome name.
    pub fn by_outcome(&self) -> BTreeMap<String, OutcomeTiming> {
        Outcome::ALL
            .iter()
            .map(|&o| {
                let t = &self.by_outcome[o.index()];
                let timing = OutcomeTiming {
                    count: t.count,
                    connect_ms: t.connect.percentiles(),
                    first_byte_ms: t.first_byte.percentiles(),
                    total_ms: t.total.percentiles(),
                };
                (o.name().to_string(), timing)
            })
            .collect()
    }

    /// How well the storm kept to its schedule (see [`Span::rate`] for `burst_interval_us`).
    pub fn schedule(&self, burst_interval_us: Option<u64>) -> Schedule {
        Schedule {
            planned_rate: self.scheduled.rate(burst_interval_us),
            achieved_rate: self.started.rate(burst_interval_us),
            lag_ms: self.lag.percentiles(),
            max_in_flight: self.max_in_flight(),
            in_flight_budget: None,
            peak_rss_bytes: None,
        }
    }

    /// Sweeps the starts (+1) and finishes (-1) in time order; a finish sorts before a start at
    /// the same microsecond. Sorts copies: the tally itself stays as added.
    fn max_in_flight(&self) -> u64 {
        let (mut starts, mut finishes) = (self.starts.clone(), self.finishes.clone());
        starts.sort_unstable();
        finishes.sort_unstable();
        let (mut open, mut most, mut f) = (0u64, 0u64, 0usize);
        for s in starts {
            while f < finishes.len() && finishes[f] <= s {
                open = open.saturating_sub(1);
                f += 1;
            }
            open += 1;
            most = most.max(open);
        }
        most
    }

    pub fn retransmits(&self) -> Retransmits {
        Retransmits {
            connections_with_retransmits: self.retransmitted,
            total: self.retransmits,
        }
    }

    /// Connections that failed with errno `e`.
    pub fn errno(&self, e: i32) -> u64 {
        self.errnos.get(&e).copied().unwrap_or(0)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn rec(id: u64, us: u64) -> ConnRecord {
        ConnRecord {
            id,
            scheduled_us: us,
            started_us: us + 10,
            connected_us: None,
            first_byte_us: None,
            finished_us: us + 20,
            outcome: Outcome::Ok,
            errno: None,
            retransmits: 0,
            local_port: None,
            bytes: 0,
        }
    }

    #[test]
    fn a_burst_storm_rate_is_over_the_bursts_whole_span() {
        // 5 bursts of 4, one second apart: 20 connections over 5 s.
        let records: Vec<ConnRecord> = (0..5u64)
            .flat_map(|b| std::iter::repeat_n(b * 1_000_000, 4))
            .map(|us| rec(0, us))
            .collect();
        let s = Tally::of(&records).schedule(Some(1_000_000));
        assert_eq!(s.planned_rate, Some(4.0));
        assert_eq!(s.achieved_rate, Some(4.0));
        // Evenly spaced: one gap per connection after the first.
        let even: Vec<ConnRecord> = (0..11u64).map(|i| rec(i, i * 100_000)).collect();
        assert_eq!(Tally::of(&even).schedule(None).planned_rate, Some(10.0));
    }

    #[test]
    fn in_flight_is_swept_in_time_order_whatever_order_the_rows_came_in() {
        // [0,100) [50,150) [100,200) [120,130): at most 3 at once (50..100 has 2, 120..130 has
        // 3); a finish at 100 comes before the start at 100.
        let spans = [(0, 100), (50, 150), (100, 200), (120, 130)];
        let mut records: Vec<ConnRecord> = spans
            .iter()
            .enumerate()
            .map(|(i, &(s, f))| ConnRecord {
                started_us: s,
                finished_us: f,
                ..rec(i as u64, s)
            })
            .collect();
        assert_eq!(Tally::of(&records).schedule(None).max_in_flight, 3);
        records.reverse();
        assert_eq!(Tally::of(&records).schedule(None).max_in_flight, 3);
        // Back to back: never two at once.
        let chain: Vec<ConnRecord> = (0..5u64)
            .map(|i| ConnRecord {
                started_us: i * 10,
                finished_us: i * 10 + 10,
                ..rec(i, i * 10)
            })
            .collect();
        assert_eq!(
            Tally::of(chain.iter().rev()).schedule(None).max_in_flight,
            1
        );
    }
}
