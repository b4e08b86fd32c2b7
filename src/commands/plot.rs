//! `backlog-lab plot`: the post-mortem of a result folder, its plots and its two reports, drawn
//! from the files alone. `backlog-lab run` renders too once its data is on disk, through
//! [`render_after_run`], which turns any failure into a warning.

use std::path::{Path, PathBuf};

use std::io::Write;

use anyhow::Context;

use crate::cli::PlotArgs;
use crate::plots;
use crate::report::{html, markdown, sections};
use crate::results::{self, files, Folder, RunFolder};

/// `backlog-lab plot DIR`.
pub fn command(args: &PlotArgs, out: &mut impl Write) -> anyhow::Result<u8> {
    writable(&args.dir)?;
    let files = render(&args.dir)?;
    writeln!(out, "{}", describe(&args.dir, &files))?;
    Ok(0)
}

/// A folder `plot` cannot write into is the user's input to fix (exit 2), said before anything
/// is drawn. A folder that is not there is left to the reader, which names what is missing.
fn writable(dir: &Path) -> Result<(), crate::error::Failure> {
    if !dir.is_dir() {
        return Ok(());
    }
    let probe = dir.join(".backlog-lab-plot-probe");
    match std::fs::File::create(&probe) {
        Ok(_) => {
            let _ = std::fs::remove_file(&probe);
            Ok(())
        }
        Err(e) => Err(crate::error::Failure::bad_input(format!(
            "cannot write the plots and reports into {}: {e}; plot a copy of it \
             (cp -r {} /tmp/copy && backlog-lab plot /tmp/copy)",
            dir.display(),
            dir.display()
        ))),
    }
}

/// Renders plots and reports for a run folder or a comparison folder (and each of its runs).
/// Returns every file written.
pub fn render(dir: &Path) -> anyhow::Result<Vec<PathBuf>> {
    render_folder(dir, true)
}

/// `each_run`: also (re)draw every run of a comparison; `run` has already drawn them when it
/// finishes a comparison, so it draws only the comparison's own charts and report.
fn render_folder(dir: &Path, each_run: bool) -> anyhow::Result<Vec<PathBuf>> {
    match results::open(dir)? {
        Folder::Run(run) => render_run(&run),
        Folder::Comparison(cmp) => {
            let mut files = Vec::new();
            if each_run {
                for r in &cmp.runs {
                    files.extend(render_run(&r.run)?);
                }
            }
            let charts = plots::render_comparison(&cmp)?;
            let doc = sections::comparison_document(&cmp, &charts);
            files.extend(charts);
            files.extend(write_reports(&cmp.dir, &doc)?);
            Ok(files)
        }
        Folder::Plan(plan, dir) => {
            let mut files = plots::sizing::render_plan(&plan, &dir)?;
            let doc = crate::report::plan::plan_document(&plan, &dir, &files);
            files.extend(write_reports(&dir, &doc)?);
            Ok(files)
        }
    }
}

fn render_run(run: &RunFolder) -> anyhow::Result<Vec<PathBuf>> {
    let mut files = plots::render_run(run)?;
    let doc = sections::run_document(run, &files);
    files.extend(write_reports(&run.dir, &doc)?);
    Ok(files)
}

fn write_reports(
    dir: &Path,
    doc: &crate::report::document::Document,
) -> anyhow::Result<Vec<PathBuf>> {
    let md = dir.join(files::REPORT_MD);
    std::fs::write(&md, markdown::render(doc))
        .with_context(|| format!("cannot write {}", md.display()))?;
    let page = dir.join(files::REPORT_HTML);
    std::fs::write(&page, html::render(doc, dir)?)
        .with_context(|| format!("cannot write {}", page.display()))?;
    Ok(vec![md, page])
}

/// For the end of `backlog-lab run` (of one run, or of a comparison whose runs are drawn): the
/// data is already written, so a failure here (or a panic in a drawing library) only costs the
/// pictures. Returns whether everything was written.
pub fn render_after_run(dir: &Path) -> bool {
    let outcome =
        std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| render_folder(dir, false)));
    let why = match outcome {
        Ok(Ok(_)) => return true,
        Ok(Err(e)) => format!("{e:#}"),
        Err(_) => "a panic while drawing (see above)".to_string(),
    };
    eprintln!(
        "warning: plots and report not written ({why}); the run's data is complete in {d}; \
         retry with `backlog-lab plot {d}`",
        d = dir.display()
    );
    false
}

/// One line for the terminal: what `plot` wrote.
pub fn describe(dir: &Path, files: &[PathBuf]) -> String {
    let pngs = files
        .iter()
        .filter(|f| f.extension().is_some_and(|e| e == "png"))
        .count();
    let reports = files
        .iter()
        .filter(|f| f.file_name().is_some_and(|n| n == files::REPORT_HTML))
        .count();
    format!(
        "wrote {pngs} plots (PNG + SVG) and {reports} report{} (report.html, report.md); open {}",
        if reports == 1 { "" } else { "s" },
        dir.join(files::REPORT_HTML).display()
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A folder with only what is strictly required (older or hand-made): every chart and both
    /// reports still come out, and the charts say what they could not draw.
    #[test]
    fn a_minimal_folder_renders_and_says_what_is_missing() {
        let dir = tempfile::tempdir().unwrap();
        let d = dir.path();
        std::fs::write(
            d.join("connections.csv"),
            "id,scheduled_us,connected_us,finished_us,outcome\n\
             0,0,150,900,ok\n1,1000,,3001000,connect_timeout\n2,2000,1002500,1500000,ok\n",
        )
        .unwrap();
        std::fs::write(d.join("timeseries.csv"), "t_us\n0\n100000\n").unwrap();
        std::fs::write(d.join("summary.json"), r#"{"scenario": "hand-made"}"#).unwrap();
        let files = render(d).unwrap();
        assert_eq!(files.len(), 10, "{files:?}");
        let svg = |n: &str| std::fs::read_to_string(d.join("plots").join(n)).unwrap();
        assert!(svg("queue-occupancy.svg").contains("no accept_queue column"));
        assert!(svg("queue-occupancy.svg").contains("timeseries.csv has no queue samples"));
        assert!(svg("counter-rates.svg").contains("did not move"));
        assert!(svg("connect-latency-cdf.svg").contains("never connected"));
        let md = std::fs::read_to_string(d.join("report.md")).unwrap();
        assert!(md.contains("# backlog-lab report: hand-made"), "{md}");
        assert!(md.contains("scenario | not readable"), "{md}");
    }
}
