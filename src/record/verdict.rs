//! The verdict on one `[expect]` assertion, as `summary.json → expectations` holds it. The
//! assertion itself and its evaluation live in [`crate::scenario::expect`]; this is its result.

use serde::{Deserialize, Serialize};

/// The verdict on one expectation.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
#[serde(default)]
pub struct Verdict {
    /// The assertion as written: `counters.server.TcpExt.ListenOverflows > 100`.
    pub text: String,
    /// The left side's value in this run (null if the path does not exist).
    pub value: Option<f64>,
    /// The right side's value in this run.
    pub expected: Option<f64>,
    pub pass: bool,
}

impl Verdict {
    /// A `watch --alert`'s verdict in a word: `ALERT` when its condition held, else `quiet`.
    pub fn alert_word(&self) -> &'static str {
        if self.pass {
            "ALERT"
        } else {
            "quiet"
        }
    }
}
