//! Connect latency CDF on a log time axis, one line per outcome, with the times at which clients
//! retransmit an unanswered SYN marked: a SYN dropped at a full accept queue shows up as a step
//! at one of those marks (1, 2, 3 ... s on Linux 6.x).

use plotters::coord::Shift;
use plotters::prelude::*;
use plotters::style::text_anchor::{HPos, Pos, VPos};

use super::{
    builder, font, frame, mesh, ms_label, outcome_color, thousands, Chart, DrawResult, LegendEntry,
    Swatch, GRAY,
};
use crate::record::Outcome;
use crate::results::analysis::{cdf, connect_latencies_ms};
use crate::results::RunFolder;

pub struct LatencyCdf<'a> {
    pub run: &'a RunFolder,
}

/// Latencies below this are drawn at it (a log axis has no zero): 10 µs.
const FLOOR_MS: f64 = 0.01;
const POINTS: usize = 1500;

struct Line {
    color: RGBColor,
    width: u32,
    points: Vec<(f64, f64)>,
}

impl Chart for LatencyCdf<'_> {
    fn name(&self) -> &'static str {
        "connect-latency-cdf"
    }

    fn draw<DB: DrawingBackend>(&self, root: &DrawingArea<DB, Shift>) -> DrawResult<DB> {
        let run = self.run;
        let conns = &run.connections;
        let mut lines = Vec::new();
        let mut legend = Vec::new();
        let mut all = connect_latencies_ms(conns, None);
        let n_all = conns.len();
        let connected_all = all.len();
        legend.push(
            LegendEntry::new(
                Swatch::Line(BLACK),
                format!("all ({})", thousands(n_all as u64)),
            )
            .detail(format!(
                "{:.1}% connected at all",
                100.0 * connected_all as f64 / n_all.max(1) as f64
            )),
        );
        // "all" is drawn last and thin, so it stays visible where one outcome is all there is.
        let all_line = Line {
            color: BLACK,
            width: 1,
            points: cdf(&mut all, n_all, POINTS),
        };
        for o in Outcome::ALL {
            let n = conns.iter().filter(|c| c.outcome == o).count();
            if n == 0 {
                continue;
            }
            let mut lat = connect_latencies_ms(conns, Some(o));
            let label = format!("{} ({})", o.name(), thousands(n as u64));
            if lat.is_empty() {
                legend.push(LegendEntry::new(Swatch::Absent, label).detail(
                    "never connected: no line (their time spent is not a connect latency)",
                ));
                continue;
            }
            let share = 100.0 * lat.len() as f64 / n as f64;
            let mut entry = LegendEntry::new(Swatch::Line(outcome_color(o)), label);
            if share < 99.95 {
                entry = entry.detail(format!("{share:.1}% of them connected"));
            }
            legend.push(entry);
            lines.push(Line {
                color: outcome_color(o),
                width: 2,
                points: cdf(&mut lat, n, POINTS),
            });
        }

        lines.push(all_line);
        let max = lines
            .iter()
            .flat_map(|l| l.points.iter().map(|p| p.0))
            .fold(FLOOR_MS, f64::max);
        let min = lines
            .iter()
            .flat_map(|l| l.points.iter().map(|p| p.0))
            .fold(f64::INFINITY, f64::min)
            .max(FLOOR_MS);
        let lo = 10f64.powf(min.min(max).log10().floor());
        let hi = 10f64.powf((max * 1.05).log10().ceil()).max(lo * 10.0);
        let marks: Vec<f64> = run
            .syn_retry_times()
            .into_iter()
            .map(|s| s * 1000.0)
            .filter(|m| *m < hi && *m <= max + 500.0)
            .collect();
        if !marks.is_empty() {
            let list: Vec<String> = marks.iter().map(|m| format!("{}", m / 1000.0)).collect();
            legend.push(
                LegendEntry::new(Swatch::Dashed(GRAY), "client SYN retransmissions").detail(
                    format!(
                        "at {} s after connect(): a SYN dropped at a full queue is answered at one of these",
                        list.join(", ")
                    ),
                ),
            );
        }

        let area = frame(
            root,
            "Connect latency, from each connection's scheduled start",
            &run.caption(),
            &legend,
        )?;
        let mut chart = builder(&area, 62).build_cartesian_2d((lo..hi).log_scale(), 0f64..100.0)?;
        mesh(
            &mut chart,
            "connect latency (log scale)",
            "connected within x (% of the line's connections)",
        )
        .x_label_formatter(&|v| ms_label(*v))
        .y_label_formatter(&|v| format!("{v:.0}%"))
        .draw()?;

        let top = chart.backend_coord(&(lo, 100.0)).1;
        // Labels of marks closer than this to the previous label are left out (4 s and 5 s sit
        // close together on a log axis); the legend lists them all.
        let mut last_label: Option<i32> = None;
        for m in &marks {
            chart.draw_series(DashedLineSeries::new(
                [(*m, 0.0), (*m, 100.0)],
                5,
                4,
                GRAY.stroke_width(1),
            ))?;
            let (x, _) = chart.backend_coord(&(*m, 100.0));
            if last_label.is_some_and(|l| x - l < 18) {
                continue;
            }
            last_label = Some(x);
            root.draw_text(
                &format!("{}s", m / 1000.0),
                &font(11.0)
                    .color(&GRAY)
                    .pos(Pos::new(HPos::Center, VPos::Bottom)),
                (x, top - 3),
            )?;
        }
        for l in &lines {
            // A CDF is a step function: hold each value until the next point.
            let mut steps = Vec::with_capacity(l.points.len() * 2);
            let mut prev = 0.0;
            for &(x, y) in &l.points {
                let x = x.max(FLOOR_MS);
                steps.push((x, prev));
                steps.push((x, y));
                prev = y;
            }
            if let Some(&(_, y)) = l.points.last() {
                steps.push((hi, y));
            }
            chart.draw_series(LineSeries::new(steps, l.color.stroke_width(l.width)))?;
        }
        Ok(())
    }
}
