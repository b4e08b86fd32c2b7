//! Arrival processes as absolute schedules: offset *i* from time zero is when attempt *i* must
//! start, computed up front and never from "now", so a slow server or a busy client can never
//! push the schedule back (no coordinated omission).

use std::time::Duration;

use rand::{rngs::StdRng, SeedableRng};
use rand_distr::{Distribution, Exp};

use crate::plan::Arrival;

/// Start offsets for at most `max` attempts, none later than `window`.
pub fn schedule(arrival: &Arrival, max: u64, window: Duration, seed: u64) -> Vec<Duration> {
    let w = window.as_secs_f64();
    let mut out = Vec::new();
    match *arrival {
        Arrival::Constant { rate } => {
            for i in 0..max {
                let t = i as f64 / rate;
                if t > w {
                    break;
                }
                out.push(Duration::from_secs_f64(t));
            }
        }
        Arrival::Poisson { rate } => {
            let mut rng = StdRng::seed_from_u64(seed);
            let gap = Exp::new(rate).expect("rate checked positive by the plan");
            let mut t = 0.0;
            while (out.len() as u64) < max {
                if t > w {
                    break;
                }
                out.push(Duration::from_secs_f64(t));
                t += gap.sample(&mut rng);
            }
        }
        Arrival::Burst { size, interval } => {
            let mut t = Duration::ZERO;
            'outer: loop {
                for _ in 0..size {
                    if out.len() as u64 >= max {
                        break 'outer;
                    }
                    out.push(t);
                }
                match interval {
                    Some(i) if t + i <= window => t += i,
                    _ => break,
                }
            }
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn constant_is_evenly_spaced_and_bounded_by_both_limits() {
        let s = schedule(
            &Arrival::Constant { rate: 100.0 },
            1000,
            Duration::from_millis(95),
            1,
        );
        assert_eq!(s.len(), 10);
        assert_eq!(s[3], Duration::from_millis(30));
        let s = schedule(
            &Arrival::Constant { rate: 100.0 },
            4,
            Duration::from_secs(10),
            1,
        );
        assert_eq!(s.len(), 4);
    }

    #[test]
    fn poisson_is_seeded_sorted_and_near_its_rate() {
        let a = schedule(
            &Arrival::Poisson { rate: 1000.0 },
            1_000_000,
            Duration::from_secs(10),
            7,
        );
        let b = schedule(
            &Arrival::Poisson { rate: 1000.0 },
            1_000_000,
            Duration::from_secs(10),
            7,
        );
        assert_eq!(a, b);
        assert!(a.windows(2).all(|w| w[0] <= w[1]));
        // 10,000 expected; a Poisson count has sd 100, so 5 sd either side.
        assert!((9_500..=10_500).contains(&a.len()), "{}", a.len());
    }

    #[test]
    fn bursts_repeat_within_the_window() {
        let arr = Arrival::Burst {
            size: 3,
            interval: Some(Duration::from_secs(1)),
        };
        let s = schedule(&arr, 100, Duration::from_millis(2500), 1);
        assert_eq!(s.len(), 9);
        assert_eq!(s[3], Duration::from_secs(1));
        let once = Arrival::Burst {
            size: 5,
            interval: None,
        };
        assert_eq!(schedule(&once, 3, Duration::from_secs(1), 1).len(), 3);
    }
}
