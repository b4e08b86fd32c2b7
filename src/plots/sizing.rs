//! The sizing chart of a plan: the first target's quantity against the backlog, the model's curve
//! beside every run's measurement, the target line, and both answers marked (the runs' and the
//! model's). It is drawn from `plan.json` alone.

use plotters::coord::Shift;
use plotters::prelude::*;

use super::{builder, count_label, frame, mesh, Chart, DrawResult, LegendEntry, Swatch, PALETTE};
use crate::record::sizing::PlanResult;

/// A plan's sizing chart, into `dir/plots/`.
pub fn render_plan(
    plan: &PlanResult,
    dir: &std::path::Path,
) -> anyhow::Result<Vec<std::path::PathBuf>> {
    use anyhow::Context;
    let dir = dir.join("plots");
    std::fs::create_dir_all(&dir).with_context(|| format!("cannot create {}", dir.display()))?;
    super::render(&Sizing { plan }, &dir)
}

pub struct Sizing<'a> {
    pub plan: &'a PlanResult,
}

const MODEL: RGBColor = PALETTE[0];
const PASSED: RGBColor = RGBColor(44, 160, 44);
const FAILED: RGBColor = RGBColor(214, 39, 40);
const TARGET: RGBColor = RGBColor(60, 60, 60);

/// What the chart draws, read from the plan once.
struct Drawn {
    /// The first target, and the quantity it reads (its left side).
    target: String,
    quantity: String,
    curve: Vec<(f64, f64)>,
    /// (backlog, value, passed), one per run.
    measured: Vec<(f64, f64, bool)>,
    x: (f64, f64),
    y_hi: f64,
}

impl Drawn {
    fn of(r: &PlanResult) -> Drawn {
        let target = r.targets.first().cloned().unwrap_or_default();
        let quantity = target
            .split(|c| "=!<>".contains(c))
            .next()
            .unwrap_or("")
            .trim()
            .to_string();
        let value =
            |v: &std::collections::BTreeMap<String, Option<f64>>| v.get(&target).copied().flatten();
        let curve: Vec<(f64, f64)> = r
            .model_curve
            .iter()
            .filter_map(|m| value(&m.values).map(|y| (f64::from(m.backlog), y)))
            .collect();
        let measured: Vec<(f64, f64, bool)> = r
            .points
            .iter()
            .filter_map(|p| value(&p.values).map(|y| (f64::from(p.backlog), y, p.passed)))
            .collect();
        let xs = curve
            .iter()
            .map(|p| p.0)
            .chain(measured.iter().map(|p| p.0));
        let (x_lo, x_hi) = xs.fold((f64::INFINITY, 0f64), |(a, b), x| (a.min(x), b.max(x)));
        let x = if x_lo.is_finite() {
            let pad = ((x_hi - x_lo) * 0.05).max(1.0);
            ((x_lo - pad).max(0.0), x_hi + pad)
        } else {
            (0.0, f64::from(r.range[1]))
        };
        let y_hi = curve
            .iter()
            .map(|p| p.1)
            .chain(measured.iter().map(|p| p.1))
            .chain(r.target_line)
            .fold(0f64, f64::max)
            .max(1.0)
            * 1.1;
        Drawn {
            target,
            quantity,
            curve,
            measured,
            x,
            y_hi,
        }
    }

    fn legend(&self, r: &PlanResult) -> Vec<LegendEntry> {
        let mut legend = vec![
            LegendEntry::new(Swatch::Line(MODEL), "model").detail("predicted for each backlog"),
            LegendEntry::new(Swatch::Box(PASSED), "run: target met"),
            LegendEntry::new(Swatch::Box(FAILED), "run: target missed"),
        ];
        if r.target_line.is_some() {
            legend.push(
                LegendEntry::new(Swatch::Dashed(TARGET), "target").detail(self.target.clone()),
            );
        }
        if let Some(b) = r.recommended_backlog {
            legend.push(
                LegendEntry::new(Swatch::Line(PASSED), format!("answer: {b}"))
                    .detail("smallest backlog every run passed"),
            );
        }
        if let Some(b) = r.model_backlog {
            legend.push(LegendEntry::new(
                Swatch::Dashed(MODEL),
                format!("model's answer: {b}"),
            ));
        }
        if self.measured.is_empty() {
            legend.push(
                LegendEntry::new(Swatch::Absent, "no runs")
                    .detail("--model-only, or stopped before the first run ended"),
            );
        }
        legend
    }
}

impl Chart for Sizing<'_> {
    fn name(&self) -> &'static str {
        "sizing"
    }

    fn draw<DB: DrawingBackend>(&self, root: &DrawingArea<DB, Shift>) -> DrawResult<DB> {
        let r = self.plan;
        let d = Drawn::of(r);
        let ((x_lo, x_hi), y_hi) = (d.x, d.y_hi);
        let caption = format!(
            "{} · kernel {} · {} run(s) per backlog · range {}–{}",
            r.scenario, r.kernel, r.repetitions, r.range[0], r.range[1]
        );
        let area = frame(
            root,
            &format!("Sizing: {} against the listen backlog", d.quantity),
            &caption,
            &d.legend(r),
        )?;
        let mut chart = builder(&area, 70).build_cartesian_2d(x_lo..x_hi, 0f64..y_hi)?;
        mesh(&mut chart, "listen() backlog", &d.quantity)
            .y_label_formatter(&|v| count_label(*v))
            .x_label_formatter(&|v| count_label(v.round()))
            .draw()?;
        if let Some(t) = r.target_line {
            chart.draw_series(DashedLineSeries::new(
                [(x_lo, t), (x_hi, t)],
                8,
                6,
                TARGET.stroke_width(2),
            ))?;
        }
        if let Some(b) = r.model_backlog {
            let b = f64::from(b);
            chart.draw_series(DashedLineSeries::new(
                [(b, 0.0), (b, y_hi)],
                6,
                5,
                MODEL.stroke_width(2),
            ))?;
        }
        if let Some(b) = r.recommended_backlog {
            let b = f64::from(b);
            chart.draw_series(LineSeries::new(
                [(b, 0.0), (b, y_hi)],
                PASSED.stroke_width(2),
            ))?;
        }
        chart.draw_series(LineSeries::new(d.curve, MODEL.stroke_width(2)))?;
        chart.draw_series(d.measured.iter().map(|(x, y, ok)| {
            let color = if *ok { PASSED } else { FAILED };
            Circle::new((*x, *y), 5, color.filled())
        }))?;
        Ok(())
    }
}
