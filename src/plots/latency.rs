//! Connect latency CDF on a log time axis, one line per outcome, with the times at which clients
//! retransmit an unanswered SYN marked: a SYN dropped at a full accept queue shows up as a step
//! at one of those marks (1, 2, 3 ... s on Linux 6.x).

use plotters::coord::combinators::LogCoord;
use plotters::coord::types::RangedCoordf64;
use plotters::coord::Shift;
use plotters::prelude::*;
use plotters::style::text_anchor::{HPos, Pos, VPos};

use super::{
    builder, font, frame, mesh, ms_label, outcome_color, thousands, Chart, DrawResult, LegendEntry,
    Swatch, GRAY,
};
use crate::record::{Conn, Outcome};
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

impl Line {
    /// A CDF is a step function: each value is held until the next point, and the last one to
    /// `hi`, the right edge of the chart.
    fn steps(&self, hi: f64) -> Vec<(f64, f64)> {
        let mut steps = Vec::with_capacity(self.points.len() * 2);
        let mut prev = 0.0;
        for &(x, y) in &self.points {
            let x = x.max(FLOOR_MS);
            steps.push((x, prev));
            steps.push((x, y));
            prev = y;
        }
        if let Some(&(_, y)) = self.points.last() {
            steps.push((hi, y));
        }
        steps
    }
}

/// The x axis in milliseconds: `lo..hi` in whole decades around every point, at least one decade
/// wide; `max` is the largest latency drawn.
struct Span {
    max: f64,
    lo: f64,
    hi: f64,
}

impl Span {
    fn of(lines: &[Line]) -> Span {
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
        Span { max, lo, hi }
    }
}

type CdfChart<'a, DB> = ChartContext<'a, DB, Cartesian2d<LogCoord<f64>, RangedCoordf64>>;

impl Chart for LatencyCdf<'_> {
    fn name(&self) -> &'static str {
        "connect-latency-cdf"
    }

    fn draw<DB: DrawingBackend>(&self, root: &DrawingArea<DB, Shift>) -> DrawResult<DB> {
        let run = self.run;
        let (lines, mut legend) = series(&run.connections);
        let span = Span::of(&lines);
        let marks = syn_retry_marks(run, &span);
        legend.extend(marks_legend(&marks));

        let area = frame(
            root,
            "Connect latency, from each connection's scheduled start",
            &run.caption(),
            &legend,
        )?;
        let mut chart = cdf_chart(&area, &span)?;
        draw_marks(root, &mut chart, &marks)?;
        for l in &lines {
            chart.draw_series(LineSeries::new(
                l.steps(span.hi),
                l.color.stroke_width(l.width),
            ))?;
        }
        Ok(())
    }
}

/// The lines to draw, one per outcome that connected and then "all", and the legend entries:
/// "all" first, then every outcome that occurred, drawn or not.
fn series(conns: &[Conn]) -> (Vec<Line>, Vec<LegendEntry>) {
    let mut all = connect_latencies_ms(conns, None);
    let n_all = conns.len();
    let mut legend = vec![LegendEntry::new(
        Swatch::Line(BLACK),
        format!("all ({})", thousands(n_all as u64)),
    )
    .detail(format!(
        "{:.1}% connected at all",
        100.0 * all.len() as f64 / n_all.max(1) as f64
    ))];
    // "all" is drawn last and thin, so it stays visible where one outcome is all there is.
    let all_line = Line {
        color: BLACK,
        width: 1,
        points: cdf(&mut all, n_all, POINTS),
    };
    let mut lines = Vec::new();
    for o in Outcome::ALL {
        if let Some((entry, line)) = outcome_series(conns, o) {
            legend.push(entry);
            lines.extend(line);
        }
    }
    lines.push(all_line);
    (lines, legend)
}

/// The legend entry and line of one outcome; no line where none of them connected, nothing at
/// all where the outcome did not occur.
fn outcome_series(conns: &[Conn], o: Outcome) -> Option<(LegendEntry, Option<Line>)> {
    let n = conns.iter().filter(|c| c.outcome == o).count();
    if n == 0 {
        return None;
    }
    let mut lat = connect_latencies_ms(conns, Some(o));
    let label = format!("{} ({})", o.name(), thousands(n as u64));
    if lat.is_empty() {
        let entry = LegendEntry::new(Swatch::Absent, label)
            .detail("never connected: no line (their time spent is not a connect latency)");
        return Some((entry, None));
    }
    let share = 100.0 * lat.len() as f64 / n as f64;
    let mut entry = LegendEntry::new(Swatch::Line(outcome_color(o)), label);
    if share < 99.95 {
        entry = entry.detail(format!("{share:.1}% of them connected"));
    }
    let line = Line {
        color: outcome_color(o),
        width: 2,
        points: cdf(&mut lat, n, POINTS),
    };
    Some((entry, Some(line)))
}

/// The client's SYN retransmission times in milliseconds that fall inside the chart and not far
/// past the slowest connect (later ones would only stretch the eye past the data).
fn syn_retry_marks(run: &RunFolder, span: &Span) -> Vec<f64> {
    run.syn_retry_times()
        .into_iter()
        .map(|s| s * 1000.0)
        .filter(|m| *m < span.hi && *m <= span.max + 500.0)
        .collect()
}

/// The legend entry for the marks, listing every one of them (their labels on the chart may not).
fn marks_legend(marks: &[f64]) -> Option<LegendEntry> {
    if marks.is_empty() {
        return None;
    }
    let list: Vec<String> = marks.iter().map(|m| format!("{}", m / 1000.0)).collect();
    Some(
        LegendEntry::new(Swatch::Dashed(GRAY), "client SYN retransmissions").detail(format!(
            "at {} s after connect(): a SYN dropped at a full queue is answered at one of these",
            list.join(", ")
        )),
    )
}

/// Log-scale latency axis against the share connected, with its mesh drawn.
fn cdf_chart<'a, DB: DrawingBackend>(
    area: &'a DrawingArea<DB, Shift>,
    span: &Span,
) -> Result<CdfChart<'a, DB>, DrawingAreaErrorKind<DB::ErrorType>> {
    let mut chart =
        builder(area, 62).build_cartesian_2d((span.lo..span.hi).log_scale(), 0f64..100.0)?;
    mesh(
        &mut chart,
        "connect latency (log scale)",
        "connected within x (% of the line's connections)",
    )
    .x_label_formatter(&|v| ms_label(*v))
    .y_label_formatter(&|v| format!("{v:.0}%"))
    .draw()?;
    Ok(chart)
}

/// A dashed vertical line at each mark, labelled above the plot (on `root`, outside the chart's
/// area).
fn draw_marks<DB: DrawingBackend>(
    root: &DrawingArea<DB, Shift>,
    chart: &mut CdfChart<DB>,
    marks: &[f64],
) -> DrawResult<DB> {
    // Labels of marks closer than this to the previous label are left out (4 s and 5 s sit
    // close together on a log axis); the legend lists them all.
    let mut last_label: Option<i32> = None;
    for m in marks {
        chart.draw_series(DashedLineSeries::new(
            [(*m, 0.0), (*m, 100.0)],
            5,
            4,
            GRAY.stroke_width(1),
        ))?;
        // The top of the plot at the mark (x and y map independently).
        let (x, top) = chart.backend_coord(&(*m, 100.0));
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
    Ok(())
}
