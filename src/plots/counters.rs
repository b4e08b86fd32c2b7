//! Rates of the key listen-queue counters over time, per second, from the cumulative series in
//! `timeseries.csv`. A counter that did not move has no column there: the legend says so, which
//! is itself a finding (no TCPReqQFullDrop means no SYN was dropped for a full SYN queue).

use plotters::coord::Shift;
use plotters::prelude::*;

use super::{
    frame, pause_legend, pauses, thousands, time_chart, Chart, DrawResult, LegendEntry, Swatch,
    TimeAxes, PALETTE,
};
use crate::results::analysis::rates;
use crate::results::RunFolder;

pub struct CounterRates<'a> {
    pub run: &'a RunFolder,
}

/// (column in timeseries.csv, legend label, what it counts).
pub const SERIES: &[(&str, &str, &str)] = &[
    (
        "server:TcpExt.ListenOverflows",
        "ListenOverflows",
        "server: SYN or final ACK met a full accept queue",
    ),
    (
        "server:TcpExt.ListenDrops",
        "ListenDrops",
        "server: every listener drop (dashed)",
    ),
    (
        "server:TcpExt.TCPReqQFullDrop",
        "TCPReqQFullDrop",
        "server: SYN dropped, SYN queue full, no cookies",
    ),
    (
        "server:TcpExt.SyncookiesSent",
        "SyncookiesSent",
        "server: SYN queue full, answered with a cookie",
    ),
    (
        "server:TcpExt.TCPSynRetrans",
        "server TCPSynRetrans",
        "server: SYN-ACK retransmissions",
    ),
    (
        "server:TcpExt.EmbryonicRsts",
        "EmbryonicRsts",
        "server: SYN_RECV requests reset",
    ),
    (
        "client:TcpExt.TCPSynRetrans",
        "client TCPSynRetrans",
        "client: SYN retransmissions",
    ),
    (
        "client:Tcp.RetransSegs",
        "client RetransSegs",
        "client: every retransmitted segment (dashed)",
    ),
];

/// Rates are taken over windows of at least this long, whatever the sampling interval.
const WINDOW_S: f64 = 0.1;

impl Chart for CounterRates<'_> {
    fn name(&self) -> &'static str {
        "counter-rates"
    }

    fn draw<DB: DrawingBackend>(&self, root: &DrawingArea<DB, Shift>) -> DrawResult<DB> {
        let run = self.run;
        let s = &run.series;
        let window = s.interval_s().unwrap_or(WINDOW_S).max(WINDOW_S);
        let mut drawn = Vec::new();
        let mut legend = Vec::new();
        let mut absent = Vec::new();
        for (i, (col, label, what)) in SERIES.iter().enumerate() {
            let (ns, name) = col.split_once(':').expect("namespace:counter");
            let total = run.counter(ns, name).max(0) as u64;
            match s.column(col) {
                Some(values) => {
                    let color = PALETTE[i % PALETTE.len()];
                    // Each is drawn dashed over the series it often equals.
                    let dashed = matches!(*label, "ListenDrops" | "client RetransSegs");
                    legend.push(
                        LegendEntry::new(
                            if dashed {
                                Swatch::Dashed(color)
                            } else {
                                Swatch::Line(color)
                            },
                            format!("{label} ({} in all)", thousands(total)),
                        )
                        .detail(*what),
                    );
                    let steps: Vec<(f64, f64)> = rates(&s.t_s, values, window)
                        .into_iter()
                        .flat_map(|(from, to, r)| [(from, r), (to, r)])
                        .collect();
                    drawn.push((steps, color, dashed));
                }
                None => absent.push(*label),
            }
        }
        if !absent.is_empty() {
            legend.push(
                LegendEntry::new(Swatch::Absent, "did not move (0)").detail(absent.join(", ")),
            );
        }
        let pauses = pauses(run);
        pause_legend(&mut legend, &pauses);

        let area = frame(
            root,
            &format!(
                "Listen-queue counters: events per second ({:.0} ms windows)",
                window * 1000.0
            ),
            &run.caption(),
            &legend,
        )?;
        let x_max = run.end_s();
        let y_top = drawn
            .iter()
            .flat_map(|(p, _, _)| p.iter().map(|p| p.1))
            .fold(1.0, f64::max)
            * 1.1;
        let axes = TimeAxes {
            x_max,
            y_top,
            x_desc: "time (s since the storm's time zero)",
            y_desc: "events per second",
            y_label_area: 78,
        };
        let mut chart = time_chart(&area, &axes, &pauses)?;
        for (points, color, dashed) in drawn {
            if dashed {
                chart.draw_series(DashedLineSeries::new(points, 7, 5, color.stroke_width(2)))?;
            } else {
                chart.draw_series(LineSeries::new(points, color.stroke_width(2)))?;
            }
        }
        Ok(())
    }
}
