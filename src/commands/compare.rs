//! A comparison run: every combination of a scenario's axes ([`crate::scenario::matrix`]) with
//! the same storm and seed, one after the other, each in its own result folder under one parent,
//! then one table side by side.
//!
//! Parent folder layout (`results/<scenario>/<timestamp>/`, or `--out DIR`):
//! - `01-<label>/`, `02-<label>/` ...: ordinary run folders (see `results/README.md`);
//! - `comparison.json`: the axes and, per run, its label, settings, folder and verdict;
//! - `comparison.csv`: one row per run with outcomes, latency percentiles and key counters;
//! - `plots/` and `report.{md,html}`: the runs side by side.
//!
//! Runs are sequential, never concurrent: two storms on one machine would distort each other.
//! Ctrl-C ends the current run as usual and skips the rest; what ran is still written.

use std::io::Write;
use std::path::Path;

use super::run::{self, Print, Shown};
use crate::plan::RunPlan;
use crate::record::summary::Summary;
use crate::results::comparison::{ComparisonFile, RunEntry};
use crate::results::write;
use crate::scenario::Combination;
use crate::terminal;

/// Runs every combination; returns the exit code (128 + the signal if interrupted, 1 if any expectation
/// failed in any run, else 0).
pub fn run(
    name: &str,
    runs: &[(Combination, RunPlan)],
    opts: run::Options,
    display: &Shown,
) -> anyhow::Result<u8> {
    let (parent, _) = write::create_dir(opts.out, name, opts.force)?;
    let mut comparison = ComparisonFile {
        scenario: name.to_string(),
        axes: axes(runs),
        runs: Vec::new(),
    };
    let mut done: Vec<(String, Summary)> = Vec::new();
    let mut interrupted = false;
    let mut stderr = std::io::stderr();
    for (i, (combo, plan)) in runs.iter().enumerate() {
        let sub = format!("{:02}-{}", i + 1, write::path_component(&combo.label));
        if matches!(display.print, Print::Table | Print::Json) {
            writeln!(stderr, "[{}/{}] {}", i + 1, runs.len(), combo.label)?;
        }
        let per_run = Shown {
            progress: display.progress,
            print: Print::Nothing,
        };
        let sub_dir = parent.join(&sub);
        let each = run::Options {
            out: Some(&sub_dir),
            ..opts
        };
        let result = match run::run(plan, each, &per_run) {
            Ok(r) => r,
            Err(e) => {
                // What ran is still written, then the error ends the comparison.
                comparison.write(&parent, &labelled(&done))?;
                return Err(e.context(format!(
                    "run {} of {} (`{}`) failed; the runs before it are in {}",
                    i + 1,
                    runs.len(),
                    combo.label,
                    parent.display()
                )));
            }
        };
        let s = result.summary.clone();
        if display.print == Print::Table {
            writeln!(stderr, "      {}", terminal::one_line(&s))?;
        }
        comparison.runs.push(RunEntry {
            label: combo.label.clone(),
            settings: combo
                .settings
                .iter()
                .map(|(k, v)| (k.clone(), serde_json::Value::from(v.clone())))
                .collect(),
            dir: sub.into(),
            exit_code: result.exit_code(),
            expectations_passed: s.expectations.iter().filter(|e| e.pass).count(),
            expectations_total: s.expectations.len(),
        });
        interrupted = s.interrupted || crate::interrupt::requested().is_some();
        done.push((combo.label.clone(), s));
        if interrupted {
            break;
        }
    }
    comparison.write(&parent, &labelled(&done))?;
    super::plot::render_after_run(&parent);
    print(display.print, &comparison, &done, &parent)?;
    Ok(if interrupted {
        crate::interrupt::exit_code(crate::interrupt::requested().unwrap_or(libc::SIGINT))
    } else if comparison.runs.iter().all(|r| r.exit_code == 0) {
        0
    } else {
        1
    })
}

/// The keys the runs were given, in first-seen order.
fn axes(runs: &[(Combination, RunPlan)]) -> Vec<String> {
    let mut axes: Vec<String> = Vec::new();
    for (combo, _) in runs {
        for (k, _) in &combo.settings {
            if !axes.contains(k) {
                axes.push(k.clone());
            }
        }
    }
    axes
}

fn labelled(done: &[(String, Summary)]) -> Vec<(&str, &Summary)> {
    done.iter().map(|(l, s)| (l.as_str(), s)).collect()
}

/// What a comparison prints on stdout once every run is done.
fn print(
    how: Print,
    comparison: &ComparisonFile,
    done: &[(String, Summary)],
    parent: &Path,
) -> anyhow::Result<()> {
    let mut stdout = std::io::stdout().lock();
    match how {
        Print::Json => {
            let summaries: Vec<&Summary> = done.iter().map(|(_, s)| s).collect();
            let all = serde_json::json!({ "comparison": comparison, "summaries": summaries });
            writeln!(stdout, "{}", super::run::with_dir(&all, parent)?)?;
        }
        Print::Table => {
            let name = &comparison.scenario;
            stdout.write_all(terminal::comparison_table(name, &labelled(done)).as_bytes())?;
            writeln!(stdout, "\n  results in {}", parent.display())?;
        }
        Print::Path => writeln!(stdout, "{}", parent.display())?,
        Print::Nothing => {}
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    #[test]
    fn folder_names_are_safe() {
        assert_eq!(
            crate::results::write::path_component("tcp_abort_on_overflow=1 rtt=20ms"),
            "tcp_abort_on_overflow=1_rtt=20ms"
        );
        assert_eq!(crate::results::write::path_component("a/b c"), "a_b_c");
        assert_eq!(crate::results::write::path_component("../x"), "_x");
    }
}
