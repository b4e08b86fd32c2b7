//! The progress line on stderr while the storm runs: connections finished out of planned, the
//! elapsed time, and the outcomes so far.

use std::sync::atomic::Ordering;

use indicatif::{ProgressBar, ProgressDrawTarget, ProgressStyle};

use crate::client::Progress;
use crate::record::Outcome;

/// The progress line: connections finished out of planned, elapsed time, outcomes so far.
pub struct Bar {
    pb: ProgressBar,
}

impl Bar {
    /// A line drawn on stderr at most 10 times a second, or one that draws nothing.
    pub fn new(hidden: bool) -> Bar {
        let pb = if hidden {
            ProgressBar::hidden()
        } else {
            let pb = ProgressBar::with_draw_target(None, ProgressDrawTarget::stderr_with_hz(10));
            pb.set_style(
                ProgressStyle::with_template("{elapsed:>4} [{bar:25}] {pos}/{len} done  {msg}")
                    .expect("valid template")
                    .progress_chars("=> "),
            );
            pb
        };
        Bar { pb }
    }

    /// Shows the storm's counts now.
    pub fn tick(&self, p: &Progress) {
        self.pb.set_length(p.planned);
        let finished = p.finished.load(Ordering::Relaxed);
        self.pb.set_position(finished);
        let mut msg = format!(
            "in flight {}",
            p.started.load(Ordering::Relaxed).saturating_sub(finished)
        );
        for o in Outcome::ALL {
            let n = p.outcome(o);
            if n > 0 {
                msg.push_str(&format!("  {} {n}", o.name()));
            }
        }
        self.pb.set_message(msg);
    }

    /// Clears the line (the last tick came from the storm's end).
    pub fn finish(&self) {
        self.pb.finish_and_clear();
    }
}
