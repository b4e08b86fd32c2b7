//! Charts of a result folder, each written as PNG and SVG into `plots/`.
//!
//! Every chart is a pure function of a [`RunFolder`] (or a [`ComparisonFolder`]) and must be
//! readable on its own: a title that says what is drawn, axes with units, a legend panel that
//! also names the series that are *not* drawn and why, and a caption with the run's knobs.
//!
//! Text is laid out with DejaVu Sans compiled into the binary (`assets/fonts/`, measured through
//! plotters' `ab_glyph` feature), so rendering needs no system font, fontconfig or freetype. The
//! SVGs name the generic `sans-serif` family and leave the glyphs to the viewer; the PNGs are
//! those SVGs rasterized by resvg with the same font, so their text is shaped properly.
//!
//! - [`latency`]: connect latency CDF per outcome, with the client SYN retransmission times.
//! - [`outcomes`]: outcomes over time, stacked per bin of scheduled start.
//! - [`queue`]: accept-queue length and SYN_RECV count against their capacities.
//! - [`counters`]: rates of the key listen-queue counters.
//! - [`comparison`]: outcome shares and latency percentiles per combination.
//! - [`sizing`]: a plan's target quantity against the backlog, model and runs.

pub mod comparison;
pub mod counters;
pub mod latency;
pub mod outcomes;
pub mod queue;
pub mod sizing;

use std::path::{Path, PathBuf};
use std::sync::Once;

use anyhow::{anyhow, Context};
use plotters::chart::MeshStyle;
use plotters::coord::ranged1d::ValueFormatter;
use plotters::coord::types::RangedCoordf64;
use plotters::coord::Shift;
use plotters::prelude::*;
use plotters::style::text_anchor::{HPos, Pos, VPos};

use crate::record::Outcome;
use crate::results::{ComparisonFolder, RunFolder};

/// The family name the embedded font is registered under (and that the SVGs ask for).
pub const FONT: &str = "sans-serif";
const FONT_BYTES: &[u8] = include_bytes!("../../assets/fonts/DejaVuSans.ttf");
/// The embedded font's own family name, which the PNGs' text is shaped with.
const FONT_NAME: &str = "DejaVu Sans";

/// Default chart size in pixels: large enough for a legend panel beside the plot.
pub const SIZE: (u32, u32) = (1000, 600);
const LEGEND_WIDTH: u32 = 270;

pub type DrawResult<DB> = Result<(), DrawingAreaErrorKind<<DB as DrawingBackend>::ErrorType>>;

/// One chart, drawable on any plotters backend.
pub trait Chart {
    /// File stem in `plots/`, e.g. `connect-latency-cdf`.
    fn name(&self) -> &'static str;
    fn size(&self) -> (u32, u32) {
        SIZE
    }
    /// Draws on `root`, the whole canvas (its coordinates are the backend's pixels).
    fn draw<DB: DrawingBackend>(&self, root: &DrawingArea<DB, Shift>) -> DrawResult<DB>;
}

fn register_font() {
    static ONCE: Once = Once::new();
    ONCE.call_once(|| {
        if plotters::style::register_font(FONT, FontStyle::Normal, FONT_BYTES).is_err() {
            panic!("the embedded DejaVuSans.ttf is not a valid font");
        }
    });
}

/// Writes `chart` as `dir/NAME.png` and `dir/NAME.svg`.
pub fn render(chart: &impl Chart, dir: &Path) -> anyhow::Result<Vec<PathBuf>> {
    register_font();
    let png = dir.join(format!("{}.png", chart.name()));
    let svg = dir.join(format!("{}.svg", chart.name()));
    write_png(chart, &png)?;
    draw_on(chart, SVGBackend::new(&svg, chart.size()), &svg)?;
    Ok(vec![png, svg])
}

/// Draws the chart as SVG and rasterizes that with resvg, whose text is shaped (kerning, side
/// bearings) with the same embedded font; plotters' own bitmap text places each glyph at a
/// truncated pen position and ignores its side bearing ("SY N", "connection s"). The PNG is then
/// encoded with adaptive filtering, which makes these flat-colour charts about half the size
/// plotters' own encoder does (they are inlined into report.html).
fn write_png(chart: &impl Chart, path: &Path) -> anyhow::Result<()> {
    use resvg::{tiny_skia, usvg};
    let (w, h) = chart.size();
    let mut svg = String::new();
    draw_on(chart, SVGBackend::with_string(&mut svg, (w, h)), path)?;
    let mut options = usvg::Options::default();
    let fonts = options.fontdb_mut();
    fonts.load_font_data(FONT_BYTES.to_vec());
    fonts.set_sans_serif_family(FONT_NAME);
    options.font_family = FONT_NAME.to_string();
    let tree = usvg::Tree::from_str(&svg, &options).with_context(|| {
        format!(
            "cannot draw {}: the chart's SVG does not parse",
            path.display()
        )
    })?;
    let mut pixmap = tiny_skia::Pixmap::new(w, h)
        .ok_or_else(|| anyhow!("cannot draw {}: a {w}x{h} canvas", path.display()))?;
    pixmap.fill(tiny_skia::Color::WHITE);
    resvg::render(&tree, tiny_skia::Transform::default(), &mut pixmap.as_mut());
    // Opaque everywhere (white below everything), so premultiplied RGBA is plain RGB plus 255.
    let rgb: Vec<u8> = pixmap
        .data()
        .chunks_exact(4)
        .flat_map(|p| [p[0], p[1], p[2]])
        .collect();
    let file =
        std::fs::File::create(path).with_context(|| format!("cannot write {}", path.display()))?;
    let mut encoder = png::Encoder::new(std::io::BufWriter::new(file), w, h);
    encoder.set_color(png::ColorType::Rgb);
    encoder.set_depth(png::BitDepth::Eight);
    // The encoder's own default is `Fast`; `Default` is the better trade here.
    encoder.set_compression(png::Compression::Default);
    encoder.set_adaptive_filter(png::AdaptiveFilterType::Adaptive);
    encoder
        .write_header()
        .and_then(|mut w| w.write_image_data(&rgb))
        .with_context(|| format!("cannot write {}", path.display()))
}

/// Draws `chart` on `backend` and writes it out (the file is `path`).
fn draw_on<DB: DrawingBackend>(chart: &impl Chart, backend: DB, path: &Path) -> anyhow::Result<()> {
    let root = backend.into_drawing_area();
    chart
        .draw(&root)
        .and_then(|_| root.present())
        .map_err(|e| anyhow!("{e}"))
        .with_context(|| format!("cannot draw {}", path.display()))
}

/// Every chart of one run, into `run.dir/plots/`. Returns the files written (PNG, SVG pairs).
pub fn render_run(run: &RunFolder) -> anyhow::Result<Vec<PathBuf>> {
    let dir = run.dir.join("plots");
    std::fs::create_dir_all(&dir).with_context(|| format!("cannot create {}", dir.display()))?;
    let mut files = render(&queue::QueueOccupancy { run }, &dir)?;
    if run.summary.has_connection_rows() {
        files.splice(0..0, render(&latency::LatencyCdf { run }, &dir)?);
        files.extend(render(&outcomes::OutcomesOverTime { run }, &dir)?);
    }
    files.extend(render(&counters::CounterRates { run }, &dir)?);
    Ok(files)
}

/// The comparison charts, into `cmp.dir/plots/` (each run's own charts are [`render_run`]'s).
pub fn render_comparison(cmp: &ComparisonFolder) -> anyhow::Result<Vec<PathBuf>> {
    let dir = cmp.dir.join("plots");
    std::fs::create_dir_all(&dir).with_context(|| format!("cannot create {}", dir.display()))?;
    let mut files = render(&comparison::OutcomeShares { cmp }, &dir)?;
    files.extend(render(&comparison::LatencyPercentiles { cmp }, &dir)?);
    Ok(files)
}

/// The colour of an outcome, the same in every chart.
pub fn outcome_color(o: Outcome) -> RGBColor {
    match o {
        Outcome::Ok => RGBColor(44, 160, 44),
        Outcome::ConnectTimeout => RGBColor(214, 39, 40),
        Outcome::ConnectRefused => RGBColor(148, 103, 189),
        Outcome::ConnectReset => RGBColor(140, 86, 75),
        Outcome::ResetAfterConnect => RGBColor(255, 127, 14),
        Outcome::ResponseTimeout => RGBColor(188, 150, 20),
        Outcome::ClosedWithoutResponse => RGBColor(23, 190, 207),
        Outcome::Other => RGBColor(127, 127, 127),
        Outcome::Abandoned => RGBColor(227, 119, 194),
        Outcome::NotStarted => RGBColor(199, 199, 199),
    }
}

/// Colours for series that are not outcomes, distinct from each other.
pub const PALETTE: [RGBColor; 8] = [
    RGBColor(31, 119, 180),
    RGBColor(255, 127, 14),
    RGBColor(44, 160, 44),
    RGBColor(214, 39, 40),
    RGBColor(148, 103, 189),
    RGBColor(140, 86, 75),
    RGBColor(227, 119, 194),
    RGBColor(23, 190, 207),
];

pub const GRAY: RGBColor = RGBColor(110, 110, 110);
/// Background band for windows in which the server did not accept (pause policy).
pub const PAUSE_BAND: RGBAColor = RGBAColor(120, 120, 120, 0.18);

pub fn font(size: f64) -> TextStyle<'static> {
    (FONT, size).into_font().color(&BLACK)
}

pub use crate::units::thousands;

/// Splits `text` into lines no wider than `width` pixels when drawn in `style` on `area`.
fn wrap<DB: DrawingBackend>(
    area: &DrawingArea<DB, Shift>,
    text: &str,
    style: &TextStyle,
    width: u32,
) -> Vec<String> {
    let fits = |s: &str| {
        area.estimate_text_size(s, style)
            .map(|(w, _)| w <= width)
            .unwrap_or(s.len() < 100)
    };
    // A caption is knobs joined by " · ": break between knobs, so "connect 3 s" stays whole;
    // other text breaks between words.
    let (sep, pieces): (&str, Vec<&str>) = if text.contains(" · ") {
        (" · ", text.split(" · ").collect())
    } else {
        (" ", text.split(' ').collect())
    };
    let mut lines = Vec::new();
    let mut line = String::new();
    for word in pieces {
        let candidate = if line.is_empty() {
            word.to_string()
        } else {
            format!("{line}{sep}{word}")
        };
        if fits(&candidate) || line.is_empty() {
            line = candidate;
        } else {
            lines.push(std::mem::replace(&mut line, word.to_string()));
        }
    }
    if !line.is_empty() {
        lines.push(line);
    }
    lines
}

/// How a legend entry is drawn.
pub enum Swatch {
    Line(RGBColor),
    Dashed(RGBColor),
    Box(RGBColor),
    Band(RGBAColor),
    /// No series: the entry explains why something is not drawn.
    Absent,
}

pub struct LegendEntry {
    pub swatch: Swatch,
    pub label: String,
    /// A second, smaller line (wrapped): what the series means or why it is missing.
    pub detail: Option<String>,
}

impl LegendEntry {
    pub fn new(swatch: Swatch, label: impl Into<String>) -> LegendEntry {
        LegendEntry {
            swatch,
            label: label.into(),
            detail: None,
        }
    }
    pub fn detail(mut self, d: impl Into<String>) -> LegendEntry {
        self.detail = Some(d.into());
        self
    }
}

/// Title band, caption band and legend panel around the plot; returns the area for the plot.
pub fn frame<DB: DrawingBackend>(
    root: &DrawingArea<DB, Shift>,
    title: &str,
    caption: &str,
    legend: &[LegendEntry],
) -> Result<DrawingArea<DB, Shift>, DrawingAreaErrorKind<DB::ErrorType>> {
    root.fill(&WHITE)?;
    let (w, h) = root.dim_in_pixel();
    let title_style = font(22.0).pos(Pos::new(HPos::Center, VPos::Top));
    root.draw_text(title, &title_style, (w as i32 / 2, 10))?;
    let cap_style = font(13.0).color(&RGBColor(60, 60, 60));
    let lines = wrap(root, caption, &cap_style, w - 40);
    let cap_h = 12 + 17 * lines.len() as u32;
    for (i, l) in lines.iter().enumerate() {
        root.draw_text(l, &cap_style, (15, (h - cap_h + 6) as i32 + 17 * i as i32))?;
    }
    let body = root.margin(42, cap_h, 0, 0);
    let (plot, panel) = body.split_horizontally(w - LEGEND_WIDTH);
    draw_legend(&panel, legend)?;
    Ok(plot)
}

fn draw_legend<DB: DrawingBackend>(
    panel: &DrawingArea<DB, Shift>,
    entries: &[LegendEntry],
) -> DrawResult<DB> {
    let label_style = font(14.0);
    let detail_style = font(12.0).color(&GRAY);
    let mut y = 24;
    let x = 8;
    for e in entries {
        let mid = y + 8;
        match &e.swatch {
            Swatch::Line(c) => {
                panel.draw(&PathElement::new(
                    [(x, mid), (x + 28, mid)],
                    c.stroke_width(3),
                ))?;
            }
            Swatch::Dashed(c) => {
                for dx in [0, 11, 22] {
                    panel.draw(&PathElement::new(
                        [(x + dx, mid), (x + dx + 6, mid)],
                        c.stroke_width(2),
                    ))?;
                }
            }
            Swatch::Box(c) => {
                panel.draw(&Rectangle::new(
                    [(x + 4, y + 1), (x + 24, y + 15)],
                    c.filled(),
                ))?;
            }
            Swatch::Band(c) => {
                panel.draw(&Rectangle::new(
                    [(x + 4, y + 1), (x + 24, y + 15)],
                    c.filled(),
                ))?;
            }
            Swatch::Absent => {
                panel.draw(&Rectangle::new(
                    [(x + 4, y + 1), (x + 24, y + 15)],
                    GRAY.stroke_width(1),
                ))?;
            }
        }
        let style = if matches!(e.swatch, Swatch::Absent) {
            label_style.color(&GRAY)
        } else {
            label_style.clone()
        };
        panel.draw_text(&e.label, &style, (x + 36, y))?;
        y += 18;
        if let Some(d) = &e.detail {
            for line in wrap(panel, d, &detail_style, LEGEND_WIDTH - x as u32 - 56) {
                panel.draw_text(&line, &detail_style, (x + 36, y))?;
                y += 15;
            }
        }
        y += 8;
    }
    Ok(())
}

/// The windows in which the server did not accept (pause policy), in seconds from time zero.
pub fn pauses(run: &RunFolder) -> Vec<(f64, f64)> {
    run.plan
        .as_ref()
        .map(crate::results::settings::pause_windows)
        .unwrap_or_default()
}

/// The legend entry for [`pauses`] shaded in a chart, if there are any.
pub fn pause_legend(legend: &mut Vec<LegendEntry>, pauses: &[(f64, f64)]) {
    if !pauses.is_empty() {
        legend.push(
            LegendEntry::new(Swatch::Band(PAUSE_BAND), "server paused")
                .detail("accept() not called (pause policy)"),
        );
    }
}

/// Full-height bands over time spans (pauses, a full queue), cut at `x_max`.
pub fn bands(
    spans: &[(f64, f64)],
    x_max: f64,
    y_top: f64,
    color: RGBAColor,
) -> Vec<Rectangle<(f64, f64)>> {
    spans
        .iter()
        .map(|(a, b)| Rectangle::new([(a.max(0.0), 0.0), (b.min(x_max), y_top)], color.filled()))
        .collect()
}

/// A count on an axis: `1,500`; a fraction only where the axis steps by less than one.
pub fn count_label(v: f64) -> String {
    if v.fract() == 0.0 {
        thousands(v.max(0.0) as u64)
    } else {
        format!("{v:.1}")
    }
}

/// The area of a chart over time, `0..x_max` s against `0..y_top` (counts), before drawing.
pub struct TimeAxes<'t> {
    pub x_max: f64,
    pub y_top: f64,
    pub x_desc: &'t str,
    pub y_desc: &'t str,
    /// Pixels for the y tick labels.
    pub y_label_area: u32,
}

pub type TimeChart<'a, DB> = ChartContext<'a, DB, Cartesian2d<RangedCoordf64, RangedCoordf64>>;

/// A chart over the run's time with count labels on the y axis and the server's pauses shaded.
pub fn time_chart<'a, DB: DrawingBackend>(
    area: &'a DrawingArea<DB, Shift>,
    axes: &TimeAxes,
    pauses: &[(f64, f64)],
) -> Result<TimeChart<'a, DB>, DrawingAreaErrorKind<DB::ErrorType>> {
    let mut chart =
        builder(area, axes.y_label_area).build_cartesian_2d(0f64..axes.x_max, 0f64..axes.y_top)?;
    mesh(&mut chart, axes.x_desc, axes.y_desc)
        .y_label_formatter(&|v| count_label(*v))
        .draw()?;
    chart.draw_series(bands(pauses, axes.x_max, axes.y_top, PAUSE_BAND))?;
    Ok(chart)
}

/// The chart builder every plot uses: room for axis labels, and for mark labels above the plot.
pub fn builder<'a, 'b, DB: DrawingBackend>(
    area: &'a DrawingArea<DB, Shift>,
    y_label_area: u32,
) -> ChartBuilder<'a, 'b, DB> {
    let mut b = ChartBuilder::on(area);
    b.margin(12)
        .margin_top(22)
        .x_label_area_size(48)
        .y_label_area_size(y_label_area);
    b
}

/// Axes with their descriptions in the common style; no minor grid lines (they read as hatching).
pub fn mesh<'a, 'b, X, Y, DB>(
    chart: &'b mut ChartContext<'a, DB, Cartesian2d<X, Y>>,
    x_desc: &str,
    y_desc: &str,
) -> MeshStyle<'a, 'b, X, Y, DB>
where
    X: Ranged + ValueFormatter<X::ValueType>,
    Y: Ranged + ValueFormatter<Y::ValueType>,
    DB: DrawingBackend,
{
    let mut m = chart.configure_mesh();
    m.x_desc(x_desc)
        .y_desc(y_desc)
        .axis_desc_style(font(15.0))
        .label_style(font(13.0))
        .light_line_style(TRANSPARENT)
        .bold_line_style(RGBColor(225, 225, 225));
    m
}

/// A note in the middle of an empty plot ("no samples in timeseries.csv").
pub fn empty_note<DB: DrawingBackend>(area: &DrawingArea<DB, Shift>, note: &str) -> DrawResult<DB> {
    let (w, h) = area.dim_in_pixel();
    area.draw(&Rectangle::new(
        [(20, 20), (w as i32 - 20, h as i32 - 20)],
        GRAY.stroke_width(1),
    ))?;
    area.draw_text(
        note,
        &font(16.0)
            .color(&GRAY)
            .pos(Pos::new(HPos::Center, VPos::Center)),
        (w as i32 / 2, h as i32 / 2),
    )
}

/// `1000 ms` -> `1 s`; tick labels of a log-scale latency axis in milliseconds.
pub fn ms_label(v: f64) -> String {
    if v >= 1000.0 {
        format!("{} s", trim(v / 1000.0))
    } else if v >= 1.0 {
        format!("{} ms", trim(v))
    } else {
        format!("{} µs", trim(v * 1000.0))
    }
}

fn trim(v: f64) -> String {
    let s = format!("{v:.2}");
    s.trim_end_matches('0').trim_end_matches('.').to_string()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn numbers_read_well() {
        assert_eq!(thousands(0), "0");
        assert_eq!(thousands(999), "999");
        assert_eq!(thousands(27115), "27,115");
        assert_eq!(thousands(1234567), "1,234,567");
        assert_eq!(ms_label(1000.0), "1 s");
        assert_eq!(ms_label(2500.0), "2.5 s");
        assert_eq!(ms_label(10.0), "10 ms");
        assert_eq!(ms_label(0.1), "100 µs");
    }
}
