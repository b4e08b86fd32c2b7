//! The two queues of the listener over time, against what they hold: the accept queue (`ss -lnt`
//! Recv-Q) and the number of SYN_RECV request sockets (the SYN queue), as sampled through
//! sock_diag. The capacity lines are what the kernel really holds (backlog + 1), not the Send-Q
//! value, and spans in which the accept queue was full are shaded.

use plotters::coord::Shift;
use plotters::prelude::*;

use super::{
    bands, empty_note, frame, pause_legend, pauses, time_chart, Chart, DrawResult, LegendEntry,
    Swatch, TimeAxes, PALETTE,
};
use crate::results::RunFolder;

pub struct QueueOccupancy<'a> {
    pub run: &'a RunFolder,
}

const FULL_BAND: RGBAColor = RGBAColor(214, 39, 40, 0.12);

fn points(t: &[f64], v: Option<&[Option<f64>]>) -> Vec<(f64, f64)> {
    v.map(|v| {
        t.iter()
            .zip(v)
            .filter_map(|(t, v)| v.map(|v| (*t, v)))
            .collect()
    })
    .unwrap_or_default()
}

impl Chart for QueueOccupancy<'_> {
    fn name(&self) -> &'static str {
        "queue-occupancy"
    }

    fn draw<DB: DrawingBackend>(&self, root: &DrawingArea<DB, Shift>) -> DrawResult<DB> {
        let run = self.run;
        let s = &run.series;
        let accept_col = s.column("accept_queue");
        let accept = points(&s.t_s, accept_col);
        let syn = points(&s.t_s, s.column("syn_recv"));
        let limit = run.accept_queue_limit();
        let capacity = run.accept_queue_capacity();
        let syn_capacity = run.syn_queue_capacity();
        let cookies = run.sysctl("server", "net.ipv4.tcp_syncookies");
        let pauses = pauses(run);
        let full = run.accept_queue_full();
        let interval = s
            .interval_s()
            .map(|i| format!("sampled every {:.0} ms (sock_diag)", i * 1000.0))
            .unwrap_or_else(|| "no samples".into());

        let accept_color = PALETTE[0];
        let syn_color = PALETTE[1];
        let mut legend = Vec::new();
        legend.push(if accept.is_empty() {
            LegendEntry::new(Swatch::Absent, "accept queue")
                .detail("no accept_queue column in timeseries.csv")
        } else {
            LegendEntry::new(Swatch::Line(accept_color), "accept queue length")
                .detail(format!("ss -lnt Recv-Q, {interval}"))
        });
        if let (Some(c), Some(l)) = (capacity, limit) {
            legend.push(
                LegendEntry::new(
                    Swatch::Line(RGBColor(20, 50, 120)),
                    format!("accept queue capacity {c}"),
                )
                .detail(format!(
                    "the kernel holds backlog + 1 = {l} + 1 (Send-Q shows {l})"
                )),
            );
        }
        legend.push(if syn.is_empty() {
            LegendEntry::new(Swatch::Absent, "SYN_RECV")
                .detail("no syn_recv column in timeseries.csv")
        } else {
            let detail = match cookies {
                Some("2") => "syncookies=2: every SYN gets a cookie, so there are none".to_string(),
                Some("0") => "request sockets of the port (syncookies off)".to_string(),
                _ => "request sockets of the port; syncookie handshakes make none".to_string(),
            };
            LegendEntry::new(Swatch::Line(syn_color), "SYN_RECV (SYN queue)").detail(detail)
        });
        if let Some(c) = syn_capacity {
            let mut detail = if Some(c) == capacity {
                "backlog + 1 (Linux 6.14 and later)".to_string()
            } else {
                "backlog (before Linux 6.14)".to_string()
            };
            if cookies == Some("0") {
                if let Some(m) = run
                    .sysctl("server", "net.ipv4.tcp_max_syn_backlog")
                    .and_then(|v| v.parse::<u64>().ok())
                {
                    detail.push_str(&format!(
                        "; with syncookies=0 SYNs from unproven peers are dropped from {} up",
                        m - m / 4
                    ));
                }
            }
            legend.push(
                LegendEntry::new(Swatch::Dashed(syn_color), format!("SYN queue capacity {c}"))
                    .detail(detail),
            );
        }
        if let Some(f) = &full {
            if !f.spans.is_empty() {
                legend.push(
                    LegendEntry::new(Swatch::Band(FULL_BAND), "accept queue full").detail(format!(
                        "a sample at {} or more of {}",
                        f.threshold, f.capacity
                    )),
                );
            }
        }
        pause_legend(&mut legend, &pauses);

        let area = frame(
            root,
            "Accept queue and SYN queue over time",
            &run.caption(),
            &legend,
        )?;
        if accept.is_empty() && syn.is_empty() {
            return empty_note(&area, "timeseries.csv has no queue samples");
        }
        let x_max = run.end_s();
        let y_top = accept
            .iter()
            .chain(&syn)
            .map(|p| p.1)
            .chain(capacity.map(|c| c as f64))
            .chain(syn_capacity.map(|c| c as f64))
            .fold(1.0, f64::max)
            * 1.15;
        let axes = TimeAxes {
            x_max,
            y_top,
            x_desc: "time (s since the storm's time zero)",
            y_desc: "connections / request sockets",
            y_label_area: 62,
        };
        let mut chart = time_chart(&area, &axes, &pauses)?;
        if let Some(f) = &full {
            // Each sample stands for the half interval either side of it.
            let half = s.interval_s().unwrap_or(0.0) / 2.0;
            let widened: Vec<(f64, f64)> =
                f.spans.iter().map(|(a, b)| (a - half, b + half)).collect();
            chart.draw_series(bands(&widened, x_max, y_top, FULL_BAND))?;
        }
        if let Some(c) = capacity {
            chart.draw_series(LineSeries::new(
                [(0.0, c as f64), (x_max, c as f64)],
                RGBColor(20, 50, 120).stroke_width(1),
            ))?;
        }
        if let Some(c) = syn_capacity {
            chart.draw_series(DashedLineSeries::new(
                [(0.0, c as f64), (x_max, c as f64)],
                8,
                5,
                syn_color.stroke_width(2),
            ))?;
        }
        // plotters joins a wide polyline with mitres, and a one-sample dip (common at 10 ms
        // sampling) turns into a spike far past the axis; 1-pixel lines have no joins.
        let width = |n: usize| if n > 300 { 1 } else { 2 };
        let (ws, wa) = (width(syn.len()), width(accept.len()));
        chart.draw_series(LineSeries::new(syn, syn_color.stroke_width(ws)))?;
        chart.draw_series(LineSeries::new(accept, accept_color.stroke_width(wa)))?;
        Ok(())
    }
}
