//! Outcomes over time: for each bin of *scheduled* start (100 ms unless the run is long), how the
//! connections scheduled in it ended, stacked. It shows when in the storm the failures began
//! and which kind they were.

use plotters::coord::Shift;
use plotters::prelude::*;

use super::{
    frame, outcome_color, pause_legend, pauses, thousands, time_chart, Chart, DrawResult,
    LegendEntry, Swatch, TimeAxes,
};
use crate::record::Outcome;
use crate::results::analysis::{bin_width_us, outcome_bins};
use crate::results::RunFolder;

pub struct OutcomesOverTime<'a> {
    pub run: &'a RunFolder,
}

/// "100 ms", "1 s".
fn width_text(us: u64) -> String {
    if us < 1_000_000 {
        format!("{} ms", us / 1000)
    } else {
        format!("{} s", us / 1_000_000)
    }
}

impl Chart for OutcomesOverTime<'_> {
    fn name(&self) -> &'static str {
        "outcomes-over-time"
    }

    fn draw<DB: DrawingBackend>(&self, root: &DrawingArea<DB, Shift>) -> DrawResult<DB> {
        let run = self.run;
        let conns = &run.connections;
        let span = conns.iter().map(|c| c.scheduled_us).max().unwrap_or(0);
        let width = bin_width_us(span);
        let bins = outcome_bins(conns, width);
        let w_s = width as f64 / 1e6;
        let pauses = pauses(run);

        let mut legend: Vec<LegendEntry> = Outcome::ALL
            .iter()
            .filter_map(|o| {
                let n = bins.iter().map(|b| b[o.index()]).sum::<u64>();
                (n > 0).then(|| {
                    LegendEntry::new(
                        Swatch::Box(outcome_color(*o)),
                        format!("{} ({})", o.name(), thousands(n)),
                    )
                })
            })
            .collect();
        let absent: Vec<&str> = Outcome::ALL
            .iter()
            .filter(|o| bins.iter().all(|b| b[o.index()] == 0))
            .map(|o| o.name())
            .collect();
        if !absent.is_empty() {
            legend
                .push(LegendEntry::new(Swatch::Absent, "none of these").detail(absent.join(", ")));
        }
        pause_legend(&mut legend, &pauses);

        let area = frame(
            root,
            &format!(
                "How connections ended, by scheduled start ({} bins)",
                width_text(width)
            ),
            &run.caption(),
            &legend,
        )?;
        // The axis is scheduled start: it ends with the last bin (not with the run, whose last
        // connections end a timeout later), or with a pause window that outlasts it.
        let x_max = pauses
            .iter()
            .map(|(_, end)| *end)
            .fold(bins.len() as f64 * w_s, f64::max);
        let y_max = bins
            .iter()
            .map(|b| b.iter().sum::<u64>())
            .max()
            .unwrap_or(0)
            .max(1) as f64
            * 1.08;
        let y_desc = format!("connections per {} bin", width_text(width));
        let axes = TimeAxes {
            x_max,
            y_top: y_max,
            x_desc: "scheduled start (s since the storm's time zero)",
            y_desc: &y_desc,
            y_label_area: 70,
        };
        let mut chart = time_chart(&area, &axes, &pauses)?;
        let mut rects = Vec::new();
        for (i, b) in bins.iter().enumerate() {
            let x0 = i as f64 * w_s;
            // Leave a hairline between bins only when bins are wide enough to show it.
            let x1 = x0 + w_s * if bins.len() <= 200 { 0.92 } else { 1.0 };
            let mut y = 0.0;
            for o in Outcome::ALL {
                let n = b[o.index()] as f64;
                if n > 0.0 {
                    rects.push(Rectangle::new(
                        [(x0, y), (x1, y + n)],
                        outcome_color(o).filled(),
                    ));
                    y += n;
                }
            }
        }
        chart.draw_series(rects)?;
        Ok(())
    }
}
