//! The two queues of the listener over time, against what they hold: the accept queue (`ss -lnt`
//! Recv-Q) and the number of SYN_RECV request sockets (the SYN queue), as sampled through
//! sock_diag. The capacity lines are what the kernel really holds (backlog + 1), not the Send-Q
//! value, and spans in which the accept queue was full are shaded.

use plotters::coord::Shift;
use plotters::prelude::*;

use super::{
    bands, empty_note, frame, pause_legend, pauses, time_chart, Chart, DrawResult, LegendEntry,
    Swatch, TimeAxes, TimeChart, PALETTE,
};
use crate::results::{QueueFull, RunFolder};

pub struct QueueOccupancy<'a> {
    pub run: &'a RunFolder,
}

/// Shading of the spans in which the accept queue was full.
const FULL_BAND: RGBAColor = RGBAColor(214, 39, 40, 0.12);
const ACCEPT_COLOR: RGBColor = PALETTE[0];
/// The accept queue's capacity: a darker blue than its length.
const CAPACITY_COLOR: RGBColor = RGBColor(20, 50, 120);
/// SYN_RECV and the SYN queue's capacity (dashed).
const SYN_COLOR: RGBColor = PALETTE[1];

fn points(t: &[f64], v: Option<&[Option<f64>]>) -> Vec<(f64, f64)> {
    v.map(|v| {
        t.iter()
            .zip(v)
            .filter_map(|(t, v)| v.map(|v| (*t, v)))
            .collect()
    })
    .unwrap_or_default()
}

/// What the chart draws, read from the run once.
struct Queues<'r> {
    accept: Vec<(f64, f64)>,
    syn: Vec<(f64, f64)>,
    /// `ss -lnt` Send-Q of the listener.
    limit: Option<u64>,
    /// What the accept queue really holds: backlog + 1.
    capacity: Option<u64>,
    syn_capacity: Option<u64>,
    cookies: Option<&'r str>,
    full: Option<QueueFull>,
    /// Median sampling interval, s.
    interval: Option<f64>,
}

impl<'r> Queues<'r> {
    fn of(run: &'r RunFolder) -> Queues<'r> {
        let s = &run.series;
        Queues {
            accept: points(&s.t_s, s.column("accept_queue")),
            syn: points(&s.t_s, s.column("syn_recv")),
            limit: run.accept_queue_limit(),
            capacity: run.accept_queue_capacity(),
            syn_capacity: run.syn_queue_capacity(),
            cookies: run.sysctl("server", "net.ipv4.tcp_syncookies"),
            full: run.accept_queue_full(),
            interval: s.interval_s(),
        }
    }

    /// Above every sample and both capacities, with room for the eye.
    fn y_top(&self) -> f64 {
        self.accept
            .iter()
            .chain(&self.syn)
            .map(|p| p.1)
            .chain(self.capacity.map(|c| c as f64))
            .chain(self.syn_capacity.map(|c| c as f64))
            .fold(1.0, f64::max)
            * 1.15
    }
}

impl Chart for QueueOccupancy<'_> {
    fn name(&self) -> &'static str {
        "queue-occupancy"
    }

    fn draw<DB: DrawingBackend>(&self, root: &DrawingArea<DB, Shift>) -> DrawResult<DB> {
        let run = self.run;
        let q = Queues::of(run);
        let pauses = pauses(run);
        let mut legend = legend(run, &q);
        pause_legend(&mut legend, &pauses);

        let area = frame(
            root,
            "Accept queue and SYN queue over time",
            &run.caption(),
            &legend,
        )?;
        if q.accept.is_empty() && q.syn.is_empty() {
            return empty_note(&area, "timeseries.csv has no queue samples");
        }
        let axes = TimeAxes {
            x_max: run.end_s(),
            y_top: q.y_top(),
            x_desc: "time (s since the storm's time zero)",
            y_desc: "connections / request sockets",
            y_label_area: 62,
        };
        let mut chart = time_chart(&area, &axes, &pauses)?;
        draw_full_spans(&mut chart, &q, &axes)?;
        draw_capacities(&mut chart, &q, axes.x_max)?;
        draw_queues(&mut chart, q.accept, q.syn)
    }
}

/// The legend entries for the queues and their capacities (the server's pauses are added after).
fn legend(run: &RunFolder, q: &Queues) -> Vec<LegendEntry> {
    let mut legend = vec![accept_entry(q)];
    // Equal capacities (Linux 6.14 and later) are one line, named for both.
    if let (Some(c), Some(l), true) = (q.capacity, q.limit, same_capacity(q)) {
        legend.push(
            LegendEntry::new(
                Swatch::Line(CAPACITY_COLOR),
                format!("both queues' capacity {c}"),
            )
            .detail(format!(
                "accept queue and SYN queue each hold backlog + 1 = {l} + 1 (Send-Q shows {l}; \
                 Linux 6.14 and later){}",
                unproven(run, q).unwrap_or_default()
            )),
        );
        legend.push(syn_entry(q));
    } else if let (Some(c), Some(l)) = (q.capacity, q.limit) {
        legend.push(
            LegendEntry::new(
                Swatch::Line(CAPACITY_COLOR),
                format!("accept queue capacity {c}"),
            )
            .detail(format!(
                "the kernel holds backlog + 1 = {l} + 1 (Send-Q shows {l})"
            )),
        );
    }
    if !same_capacity(q) {
        legend.push(syn_entry(q));
        if let Some(c) = q.syn_capacity {
            legend.push(syn_capacity_entry(run, q, c));
        }
    }
    if let Some(f) = &q.full {
        if !f.spans.is_empty() {
            legend.push(
                LegendEntry::new(Swatch::Band(FULL_BAND), "accept queue full").detail(format!(
                    "a sample at {} or more of {}",
                    f.threshold, f.capacity
                )),
            );
        }
    }
    legend
}

/// With syncookies off the kernel drops SYNs from unproven peers earlier, at three quarters of
/// tcp_max_syn_backlog: said where the SYN queue's capacity is.
fn unproven(run: &RunFolder, q: &Queues) -> Option<String> {
    let m = run
        .sysctl("server", "net.ipv4.tcp_max_syn_backlog")
        .and_then(|v| v.parse::<u64>().ok())
        .filter(|_| q.cookies == Some("0"))?;
    Some(format!(
        "; with syncookies=0 SYNs from unproven peers are dropped from {} up",
        m - m / 4
    ))
}

/// Whether both queues hold the same number (then one capacity line stands for both).
fn same_capacity(q: &Queues) -> bool {
    q.capacity.is_some() && q.capacity == q.syn_capacity
}

/// The accept queue's length, with how often it was sampled.
fn accept_entry(q: &Queues) -> LegendEntry {
    if q.accept.is_empty() {
        return LegendEntry::new(Swatch::Absent, "accept queue")
            .detail("no accept_queue column in timeseries.csv");
    }
    let interval = q
        .interval
        .map(|i| format!("sampled every {:.0} ms (sock_diag)", i * 1000.0))
        .unwrap_or_else(|| "no samples".into());
    LegendEntry::new(Swatch::Line(ACCEPT_COLOR), "accept queue length")
        // Not "ss -lnt": in a sans-serif font its l reads as a capital I.
        .detail(format!("Recv-Q of ss --listening, {interval}"))
}

/// SYN_RECV, with what the syncookies setting makes of it.
fn syn_entry(q: &Queues) -> LegendEntry {
    if q.syn.is_empty() {
        return LegendEntry::new(Swatch::Absent, "SYN_RECV")
            .detail("no syn_recv column in timeseries.csv");
    }
    let detail = match q.cookies {
        Some("2") => "syncookies=2: every SYN gets a cookie, so there are none",
        Some("0") => "request sockets of the port (syncookies off)",
        _ => "request sockets of the port; syncookie handshakes make none",
    };
    LegendEntry::new(Swatch::Line(SYN_COLOR), "SYN_RECV (SYN queue)").detail(detail)
}

/// The SYN queue's capacity `c`, which changed with Linux 6.14; with syncookies off the kernel
/// drops SYNs from unproven peers earlier, at three quarters of tcp_max_syn_backlog.
fn syn_capacity_entry(run: &RunFolder, q: &Queues, c: u64) -> LegendEntry {
    let mut detail = if Some(c) == q.capacity {
        "backlog + 1 (Linux 6.14 and later)".to_string()
    } else {
        "backlog (before Linux 6.14)".to_string()
    };
    detail.push_str(&unproven(run, q).unwrap_or_default());
    LegendEntry::new(Swatch::Dashed(SYN_COLOR), format!("SYN queue capacity {c}")).detail(detail)
}

/// Shades the spans in which the accept queue was full.
fn draw_full_spans<DB: DrawingBackend>(
    chart: &mut TimeChart<DB>,
    q: &Queues,
    axes: &TimeAxes,
) -> DrawResult<DB> {
    if let Some(f) = &q.full {
        // Each sample stands for the half interval either side of it.
        let half = q.interval.unwrap_or(0.0) / 2.0;
        let widened: Vec<(f64, f64)> = f.spans.iter().map(|(a, b)| (a - half, b + half)).collect();
        chart.draw_series(bands(&widened, axes.x_max, axes.y_top, FULL_BAND))?;
    }
    Ok(())
}

/// The accept queue's capacity as a solid line, the SYN queue's dashed in the SYN_RECV colour.
fn draw_capacities<DB: DrawingBackend>(
    chart: &mut TimeChart<DB>,
    q: &Queues,
    x_max: f64,
) -> DrawResult<DB> {
    if let Some(c) = q.capacity {
        chart.draw_series(LineSeries::new(
            [(0.0, c as f64), (x_max, c as f64)],
            CAPACITY_COLOR.stroke_width(1),
        ))?;
    }
    if let Some(c) = q.syn_capacity.filter(|_| !same_capacity(q)) {
        chart.draw_series(DashedLineSeries::new(
            [(0.0, c as f64), (x_max, c as f64)],
            8,
            5,
            SYN_COLOR.stroke_width(2),
        ))?;
    }
    Ok(())
}

/// SYN_RECV, then the accept queue over it.
fn draw_queues<DB: DrawingBackend>(
    chart: &mut TimeChart<DB>,
    accept: Vec<(f64, f64)>,
    syn: Vec<(f64, f64)>,
) -> DrawResult<DB> {
    // plotters joins a wide polyline with mitres, and a one-sample dip (common at 10 ms
    // sampling) turns into a spike far past the axis; 1-pixel lines have no joins.
    let width = |n: usize| if n > 300 { 1 } else { 2 };
    let (ws, wa) = (width(syn.len()), width(accept.len()));
    chart.draw_series(LineSeries::new(syn, SYN_COLOR.stroke_width(ws)))?;
    chart.draw_series(LineSeries::new(accept, ACCEPT_COLOR.stroke_width(wa)))?;
    Ok(())
}
