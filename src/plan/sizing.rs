//! The `[plan]` table (and `backlog-lab plan`'s flags, which override it): the targets a backlog
//! must meet, the range searched, and the runs per backlog, assembled into a [`SizingPlan`].

use super::values::bad;
use crate::error::Failure;
use crate::scenario::expect::Expectation;
use crate::scenario::PlanFile;

/// The target when none is given: nothing dropped at the listener, neither by the accept queue
/// (ListenOverflows) nor by the SYN queue.
pub const DEFAULT_TARGET: &str = "counters.server.TcpExt.ListenDrops == 0";

/// The largest backlog the planner tries (and sets somaxconn to).
pub const MAX_BACKLOG: u32 = 1 << 20;

#[derive(Debug, Clone)]
pub struct SizingPlan {
    /// Every one must hold.
    pub targets: Vec<Expectation>,
    /// The backlogs searched, both ends included.
    pub range: (u32, u32),
    pub repetitions: u32,
}

/// Targets in the `[expect]` language, each `PATH OP EXPRESSION`; none means [`DEFAULT_TARGET`].
pub fn targets(lines: &[String]) -> Result<Vec<Expectation>, Failure> {
    if lines.is_empty() {
        return Ok(vec![Expectation::parse_line(DEFAULT_TARGET)?]);
    }
    lines.iter().map(|l| Expectation::parse_line(l)).collect()
}

/// `range = [LOW, HIGH]`: 1 ≤ LOW ≤ HIGH ≤ [`MAX_BACKLOG`].
pub fn range(key: &str, v: &[i64]) -> Result<(u32, u32), Failure> {
    let max = i64::from(MAX_BACKLOG);
    match v {
        [lo, hi] if 1 <= *lo && lo <= hi && *hi <= max => Ok((*lo as u32, *hi as u32)),
        _ => Err(bad(format!(
            "{key} = {v:?}: must be [LOW, HIGH] with 1 <= LOW <= HIGH <= {max}, e.g. [1, 65535]"
        ))),
    }
}

/// `repetitions`: from 1 to 20.
pub fn repetitions(key: &str, n: i64) -> Result<u32, Failure> {
    if (1..=20).contains(&n) {
        Ok(n as u32)
    } else {
        Err(bad(format!("{key} = {n}: must be from 1 to 20")))
    }
}

pub(super) fn plan(p: &PlanFile) -> Result<SizingPlan, Failure> {
    let lines = p.target.as_ref().map(|t| t.list()).unwrap_or_default();
    Ok(SizingPlan {
        targets: targets(&lines).map_err(|mut e| {
            e.message = format!("plan.{}", e.message);
            e
        })?,
        range: match &p.range {
            Some(r) => range("plan.range", r)?,
            None => (1, 65535),
        },
        repetitions: repetitions("plan.repetitions", p.repetitions.unwrap_or(3))?,
    })
}
