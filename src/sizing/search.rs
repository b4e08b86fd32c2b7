//! The search by runs: the smallest backlog at which every repetition meets the target. It
//! starts at the model's answer and brackets it: one below (or above) first, since a good model
//! is exact, then steps of a twentieth (at least 2), doubling each time it misses; then it
//! bisects to the exact number. It assumes that more room never hurts: every
//! backlog it tries below the answer failed, every one at or above passed.

/// What is known about one backlog after its runs.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Point {
    Passed,
    Failed,
}

/// How the search ended.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Found {
    /// The smallest backlog that passed, or `None` when the top of the range failed.
    pub backlog: Option<u32>,
    /// The largest backlog that failed, if any was tried.
    pub failed_below: Option<u32>,
    /// Each backlog tried, in order, with its result.
    pub tried: Vec<(u32, Point)>,
    /// Stopped before the end (a stop signal).
    pub interrupted: bool,
}

/// Searches `range` from `start`; `probe(backlog)` runs it and says whether it passed, or `None`
/// when a stop signal ended it.
pub fn search(
    range: (u32, u32),
    start: u32,
    mut probe: impl FnMut(u32) -> anyhow::Result<Option<Point>>,
) -> anyhow::Result<Found> {
    let (min, max) = range;
    let mut tried: Vec<(u32, Point)> = Vec::new();
    let mut found = |b: u32, tried: &mut Vec<(u32, Point)>| -> anyhow::Result<Option<Point>> {
        if let Some((_, p)) = tried.iter().find(|(t, _)| *t == b) {
            return Ok(Some(*p));
        }
        let p = probe(b)?;
        if let Some(p) = p {
            tried.push((b, p));
        }
        Ok(p)
    };
    let start = start.clamp(min, max);
    // After the first step of 1: a twentieth, at least 2, then doubling.
    let next_step = |step: u32, b: u32| {
        if step == 1 {
            (b / 20).max(2)
        } else {
            step.saturating_mul(2)
        }
    };
    // Bracket: lo failed (or is below the range), hi passed.
    let (mut lo, mut hi): (Option<u32>, Option<u32>);
    let Some(first) = found(start, &mut tried)? else {
        return Ok(end(None, None, tried, true));
    };
    if first == Point::Passed {
        hi = Some(start);
        lo = None;
        let mut step = 1;
        let mut b = start;
        while b > min {
            let next = b.saturating_sub(step).max(min);
            let Some(p) = found(next, &mut tried)? else {
                return Ok(end(hi, lo, tried, true));
            };
            if p == Point::Failed {
                lo = Some(next);
                break;
            }
            hi = Some(next);
            b = next;
            step = next_step(step, start);
        }
        if lo.is_none() {
            return Ok(end(hi, None, tried, false));
        }
    } else {
        lo = Some(start);
        hi = None;
        let mut step = 1;
        let mut b = start;
        while b < max {
            let next = b.saturating_add(step).min(max);
            let Some(p) = found(next, &mut tried)? else {
                return Ok(end(None, lo, tried, true));
            };
            if p == Point::Passed {
                hi = Some(next);
                break;
            }
            lo = Some(next);
            b = next;
            step = next_step(step, start);
        }
        if hi.is_none() {
            return Ok(end(None, lo, tried, false));
        }
    }
    let (mut l, mut h) = (lo.expect("bracketed"), hi.expect("bracketed"));
    while h - l > 1 {
        let mid = l + (h - l) / 2;
        match found(mid, &mut tried)? {
            None => return Ok(end(Some(h), Some(l), tried, true)),
            Some(Point::Passed) => h = mid,
            Some(Point::Failed) => l = mid,
        }
    }
    Ok(end(Some(h), Some(l), tried, false))
}

fn end(
    backlog: Option<u32>,
    lo: Option<u32>,
    tried: Vec<(u32, Point)>,
    interrupted: bool,
) -> Found {
    Found {
        backlog,
        failed_below: lo,
        tried,
        interrupted,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn run(range: (u32, u32), start: u32, need: u32) -> Found {
        search(range, start, |b| {
            Ok(Some(if b >= need {
                Point::Passed
            } else {
                Point::Failed
            }))
        })
        .unwrap()
    }

    #[test]
    fn finds_the_exact_threshold_from_either_side() {
        for (start, need) in [
            (59, 59),
            (60, 59),
            (40, 59),
            (1000, 1063),
            (1100, 1063),
            (1, 1),
        ] {
            let f = run((1, 65535), start, need);
            assert_eq!(f.backlog, Some(need), "start {start}");
            assert!(f.tried.len() < 20, "{} runs", f.tried.len());
        }
        // An exact model's answer costs two points: 59 passes, 58 fails.
        assert_eq!(run((1, 65535), 59, 59).tried.len(), 2);
        assert_eq!(run((1, 65535), 58, 59).tried.len(), 2);
    }

    #[test]
    fn reports_an_unmeetable_target_with_the_best_tried() {
        let f = run((1, 500), 100, 10_000);
        assert_eq!(f.backlog, None);
        assert_eq!(f.failed_below, Some(500));
    }
}
