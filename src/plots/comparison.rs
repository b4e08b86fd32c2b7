//! Charts of a comparison folder, one row per combination: how the connections ended (shares),
//! and connect and response latency percentiles. Both come from each run's `summary.json`.

use plotters::coord::Shift;
use plotters::prelude::*;
use plotters::style::text_anchor::{HPos, Pos, VPos};

use super::{
    builder, font, frame, mesh, ms_label, outcome_color, thousands, Chart, DrawResult, LegendEntry,
    Swatch, PALETTE,
};
use crate::record::percentiles::Percentiles;
use crate::record::summary::Summary;
use crate::record::Outcome;
use crate::results::ComparisonFolder;

/// Height of the canvas: room for every row.
fn height(rows: usize, per_row: u32, fixed: u32) -> u32 {
    (fixed + per_row * rows as u32).max(SIZE_H)
}
const SIZE_H: u32 = 600;
const LABEL_AREA: u32 = 230;

/// Draws each run's label left of its row, right-aligned against the plot, with a smaller
/// second line (the number of connections) under it.
fn row_labels<DB: DrawingBackend>(
    root: &DrawingArea<DB, Shift>,
    labels: impl Iterator<Item = (String, String, (i32, i32))>,
) -> DrawResult<DB> {
    let style = font(14.0).pos(Pos::new(HPos::Right, VPos::Bottom));
    let detail = font(12.0)
        .color(&super::GRAY)
        .pos(Pos::new(HPos::Right, VPos::Top));
    for (label, second, (x, y)) in labels {
        // Long labels are cut rather than run into the chart (the report has them whole).
        let label = if label.chars().count() > 30 {
            format!("{}…", label.chars().take(29).collect::<String>())
        } else {
            label
        };
        root.draw_text(&label, &style, (x - 8, y))?;
        root.draw_text(&second, &detail, (x - 8, y + 2))?;
    }
    Ok(())
}

pub struct OutcomeShares<'a> {
    pub cmp: &'a ComparisonFolder,
}

impl Chart for OutcomeShares<'_> {
    fn name(&self) -> &'static str {
        "comparison-outcome-shares"
    }

    fn size(&self) -> (u32, u32) {
        (1000, height(self.cmp.runs.len(), 56, 220))
    }

    fn draw<DB: DrawingBackend>(&self, root: &DrawingArea<DB, Shift>) -> DrawResult<DB> {
        let runs = &self.cmp.runs;
        let present: Vec<Outcome> = Outcome::ALL
            .into_iter()
            .filter(|o| runs.iter().any(|r| r.run.outcome_count(*o) > 0))
            .collect();
        let legend: Vec<LegendEntry> = present
            .iter()
            .map(|o| LegendEntry::new(Swatch::Box(outcome_color(*o)), o.name()))
            .collect();
        let area = frame(
            root,
            "How connections ended, per combination",
            &self.cmp.caption(),
            &legend,
        )?;
        let n = runs.len() as f64;
        let mut chart = builder(&area, LABEL_AREA).build_cartesian_2d(0f64..100.0, 0f64..n)?;
        mesh(&mut chart, "share of the run's connections (%)", "")
            .disable_y_mesh()
            .y_labels(0)
            .x_label_formatter(&|v| format!("{v:.0}%"))
            .draw()?;
        let value_style = font(12.0)
            .color(&WHITE)
            .pos(Pos::new(HPos::Center, VPos::Center));
        for (i, r) in runs.iter().enumerate() {
            // Row 0 at the top.
            let y1 = n - i as f64 - 0.18;
            let y0 = n - i as f64 - 0.82;
            let total = r.run.total().max(1) as f64;
            let mut x = 0.0;
            for o in &present {
                let share = 100.0 * r.run.outcome_count(*o) as f64 / total;
                if share <= 0.0 {
                    continue;
                }
                chart.draw_series([Rectangle::new(
                    [(x, y0), (x + share, y1)],
                    outcome_color(*o).filled(),
                )])?;
                if share >= 7.0 {
                    let pos = chart.backend_coord(&(x + share / 2.0, (y0 + y1) / 2.0));
                    root.draw_text(&format!("{share:.1}%"), &value_style, pos)?;
                }
                x += share;
            }
        }
        let labels = runs.iter().enumerate().map(|(i, r)| {
            let y = n - i as f64 - 0.5;
            (
                r.label.clone(),
                format!("{} connections", thousands(r.run.total())),
                chart.backend_coord(&(0.0, y)),
            )
        });
        row_labels(root, labels.collect::<Vec<_>>().into_iter())
    }
}

pub struct LatencyPercentiles<'a> {
    pub cmp: &'a ComparisonFolder,
}

/// (summary.json field, panel title).
/// Which percentiles of a summary a panel shows.
type Field = fn(&Summary) -> &Percentiles;

const PANELS: &[(Field, &str)] = &[
    (
        |s| &s.connect_latency_ms,
        "connect latency, from scheduled start (connections that connected)",
    ),
    (
        |s| &s.response_latency_ms,
        "first response byte, from scheduled start (ok connections)",
    ),
];
const PCTS: &[&str] = &["p50", "p90", "p99", "max"];

/// Percentile `p` (one of [`PCTS`]).
fn pct(p: &Percentiles, name: &str) -> Option<f64> {
    match name {
        "p50" => p.p50,
        "p90" => p.p90,
        "p99" => p.p99,
        _ => p.max,
    }
}

impl Chart for LatencyPercentiles<'_> {
    fn name(&self) -> &'static str {
        "comparison-latency-percentiles"
    }

    fn size(&self) -> (u32, u32) {
        (1000, height(self.cmp.runs.len() * 2, 40, 300))
    }

    fn draw<DB: DrawingBackend>(&self, root: &DrawingArea<DB, Shift>) -> DrawResult<DB> {
        let runs = &self.cmp.runs;
        let colors = [PALETTE[2], PALETTE[0], PALETTE[1], PALETTE[3]];
        let mut legend: Vec<LegendEntry> = PCTS
            .iter()
            .zip(colors)
            .map(|(p, c)| LegendEntry::new(Swatch::Box(c), *p))
            .collect();
        legend.push(
            LegendEntry::new(Swatch::Absent, "no marks in a row")
                .detail("nothing measured (no connection connected, or none was ok)"),
        );
        let area = frame(
            root,
            "Latency percentiles, per combination",
            &self.cmp.caption(),
            &legend,
        )?;
        let value = |r: &crate::results::comparison::ComparedRun, field: &Field, p: &str| {
            pct(field(&r.run.summary), p).filter(|v| *v > 0.0)
        };
        let all: Vec<f64> = runs
            .iter()
            .flat_map(|r| {
                PANELS
                    .iter()
                    .flat_map(move |(f, _)| PCTS.iter().filter_map(move |p| value(r, f, p)))
            })
            .collect();
        let lo = all.iter().copied().fold(f64::INFINITY, f64::min).max(0.01);
        let hi = all.iter().copied().fold(0.0, f64::max);
        let (lo, hi) = if hi > 0.0 {
            (
                10f64.powf(lo.log10().floor()),
                10f64.powf((hi * 1.05).log10().ceil()),
            )
        } else {
            (0.1, 10_000.0)
        };
        let panels = area.split_evenly((PANELS.len(), 1));
        let n = runs.len() as f64;
        for ((field, title), panel) in PANELS.iter().zip(&panels) {
            let mut chart = ChartBuilder::on(panel)
                .margin(10)
                .margin_top(28)
                .x_label_area_size(40)
                .y_label_area_size(LABEL_AREA)
                .caption(*title, font(15.0))
                .build_cartesian_2d((lo..hi).log_scale(), 0f64..n)?;
            mesh(&mut chart, "latency (log scale)", "")
                .disable_y_mesh()
                .y_labels(0)
                .x_label_formatter(&|v| ms_label(*v))
                .draw()?;
            let mut labels = Vec::new();
            for (i, r) in runs.iter().enumerate() {
                let y = n - i as f64 - 0.5;
                // Each percentile a little lower than the one before, so that close values
                // (p99 and max often are) do not hide each other.
                let marks: Vec<(f64, f64, RGBColor)> = PCTS
                    .iter()
                    .zip(colors)
                    .enumerate()
                    .filter_map(|(k, (p, c))| {
                        value(r, field, p).map(|v| (v, y + 0.24 - 0.16 * k as f64, c))
                    })
                    .collect();
                if i % 2 == 0 {
                    chart.draw_series([Rectangle::new(
                        [(lo, y - 0.45), (hi, y + 0.45)],
                        RGBColor(244, 244, 244).filled(),
                    )])?;
                }
                chart.draw_series(
                    marks
                        .iter()
                        .map(|(v, y, c)| Circle::new((*v, *y), 5, c.filled())),
                )?;
                let count = field(&r.run.summary).count;
                labels.push((
                    r.label.clone(),
                    format!("n={}", thousands(count)),
                    chart.backend_coord(&(lo, y)),
                ));
            }
            row_labels(root, labels.into_iter())?;
        }
        Ok(())
    }
}
