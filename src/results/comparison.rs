//! A comparison folder: several runs of one scenario, one per combination of settings, described
//! by `comparison.json`:
//!
//! ```json
//! {"scenario": "envoy-somaxconn-128", "axes": ["server.sysctl.net.ipv4.tcp_abort_on_overflow"],
//!  "runs": [{"label": "tcp_abort_on_overflow=0",
//!            "settings": {"server.sysctl.net.ipv4.tcp_abort_on_overflow": 0},
//!            "dir": "abort-0"}, ...]}
//! ```
//!
//! Each `dir` (relative to the comparison folder) is an ordinary run folder.

use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};
use serde_json::Value;

use super::table::bad;
use super::{files, write, RunFolder};
use crate::error::Failure;
use crate::record::summary::Summary;

/// `comparison.json`, written by `run` as each run ends and read back by `plot`.
#[derive(Debug, Serialize, Deserialize)]
pub struct ComparisonFile {
    pub scenario: String,
    /// The keys the runs were given: axis keys, `case` for `[[case]]`, and the keys any case sets.
    #[serde(default)]
    pub axes: Vec<String>,
    pub runs: Vec<RunEntry>,
}

/// One run of the comparison.
#[derive(Debug, Serialize, Deserialize)]
pub struct RunEntry {
    pub label: String,
    #[serde(default)]
    pub settings: serde_json::Map<String, Value>,
    /// Relative to the comparison folder.
    pub dir: PathBuf,
    #[serde(default)]
    pub exit_code: u8,
    #[serde(default)]
    pub expectations_passed: usize,
    #[serde(default)]
    pub expectations_total: usize,
}

impl ComparisonFile {
    /// Writes `comparison.json` and `comparison.csv` (the rows of every run in `done`) into
    /// `dir`: after every run, so that what ran is on disk whatever happens next.
    pub fn write(&self, dir: &Path, done: &[(&str, &Summary)]) -> anyhow::Result<()> {
        write::write_json(dir, files::COMPARISON, self)?;
        write::write_comparison_csv(dir, done)
    }
}

/// One combination: its label, its settings and its run folder.
#[derive(Debug)]
pub struct ComparedRun {
    pub label: String,
    /// (axis, value) in the order of `settings`.
    pub settings: Vec<(String, String)>,
    pub run: RunFolder,
}

#[derive(Debug)]
pub struct ComparisonFolder {
    pub dir: PathBuf,
    pub scenario: String,
    pub axes: Vec<String>,
    pub runs: Vec<ComparedRun>,
}

/// A setting's value as text: strings without their quotes.
fn text(v: &Value) -> String {
    match v {
        Value::String(s) => s.clone(),
        other => other.to_string(),
    }
}

impl ComparisonFolder {
    /// Reads `comparison.json` and every run folder it names.
    pub fn read(dir: &Path) -> Result<ComparisonFolder, Failure> {
        let path = dir.join(files::COMPARISON);
        let body = std::fs::read_to_string(&path).map_err(|e| bad(&path, e))?;
        let file: ComparisonFile = serde_json::from_str(&body).map_err(|e| {
            bad(
                &path,
                format!(
                    "line {}: {e}; expected {{\"scenario\": NAME, \"axes\": [KEY, ...], \
                     \"runs\": [{{\"label\": ..., \"settings\": {{...}}, \"dir\": SUBFOLDER}}]}}",
                    e.line()
                ),
            )
        })?;
        if file.runs.is_empty() {
            return Err(bad(&path, "lists no runs"));
        }
        let mut runs = Vec::with_capacity(file.runs.len());
        for entry in file.runs {
            let run_dir = dir.join(&entry.dir);
            let run = RunFolder::read(&run_dir).map_err(|e| {
                Failure::bad_input(format!(
                    "{}: run `{}`: {}",
                    path.display(),
                    entry.label,
                    e.message
                ))
            })?;
            runs.push(ComparedRun {
                label: entry.label,
                settings: entry
                    .settings
                    .iter()
                    .map(|(k, v)| (k.clone(), text(v)))
                    .collect(),
                run,
            });
        }
        Ok(ComparisonFolder {
            dir: dir.to_path_buf(),
            scenario: file.scenario,
            axes: file.axes,
            runs,
        })
    }

    /// Knobs every run shares (from the first run), minus the axes that vary, for captions.
    pub fn caption(&self) -> String {
        let first = &self.runs[0].run;
        let varying: Vec<String> = self.axes.clone();
        let knobs: Vec<String> = first
            .knobs()
            .into_iter()
            .filter(|(k, _)| !varying.iter().any(|a| a.ends_with(k.as_str())))
            .map(|(k, v)| format!("{k} {v}"))
            .collect();
        format!(
            "{}, {} combinations of {}. Shared (first run): {}",
            self.scenario,
            self.runs.len(),
            if self.axes.is_empty() {
                "settings".to_string()
            } else {
                self.axes.join(", ")
            },
            knobs.join(" · ")
        )
    }
}
