//! A result folder read back from disk: what the plots and the reports are drawn from, so that
//! `backlog-lab plot DIR` works long after the run, on another machine, without root.
//!
//! Only files are read here (see `results/README.md` for their layout). The reader is tolerant
//! where a later or earlier version may differ (extra columns, counters absent because they did
//! not move, a `scenario.toml` this version cannot load) and strict where the data would be
//! wrong (a malformed number: the file, line and column are named).
//!
//! - [`files`]: the names of a result folder's files.
//! - [`write`]: writing a run's folder and a comparison's own files.
//! - [`connections`]: `connections.csv`, its columns named once for writer and reader.
//! - [`table`]: CSV files read by column name.
//! - [`rows`]: tables computed from results, shared by the terminal, the reports and CSVs.
//! - [`analysis`]: pure computations over the records (CDFs, bins, rates, queue-full spans).
//! - [`settings`]: the scenario's knobs and effective sysctls, as text for captions and reports.
//! - [`comparison`]: a folder of several runs described by `comparison.json`.

pub mod analysis;
pub mod comparison;
pub mod connections;
pub mod plan;
pub mod rows;
pub mod settings;
pub mod table;
pub mod write;

use std::path::{Path, PathBuf};

use serde::de::DeserializeOwned;

use crate::error::Failure;
use crate::plan::RunPlan;
use crate::record::summary::Summary;
use crate::record::{Conn, Environment, Outcome};
use table::{bad, Table};

/// The files of a result folder, each named once (their layout is in `results/README.md`).
pub mod files {
    /// The scenario as run, `--set` values included.
    pub const SCENARIO: &str = "scenario.toml";
    /// Kernel, tool version, namespaces, effective sysctls, host values.
    pub const ENVIRONMENT: &str = "environment.json";
    /// One row per connection.
    pub const CONNECTIONS: &str = "connections.csv";
    /// Namespace, counter, before, after, delta (every counter).
    pub const COUNTERS: &str = "counters.csv";
    /// The sampled listen queue and the counters that moved, as deltas from the start.
    pub const TIMESERIES: &str = "timeseries.csv";
    /// The kernel's drop and reset events for the lab, tied to connections.
    pub const DROPS: &str = "drops.csv";
    /// The summary and the verdict on each expectation.
    pub const SUMMARY: &str = "summary.json";
    /// The stdout and stderr of a program of the user's own run as the server.
    pub const SERVER_LOG: &str = "server.log";
    pub const CLIENT_LOG: &str = "client.log";
    /// A comparison's axes and runs.
    pub const COMPARISON: &str = "comparison.json";
    /// A comparison's rows, one per run.
    pub const COMPARISON_CSV: &str = "comparison.csv";
    /// A plan's answer, model, closed forms and runs (`backlog-lab plan`).
    pub const PLAN: &str = "plan.json";
    /// A plan's runs, one row each, with the model's prediction beside each.
    pub const PLAN_CSV: &str = "plan.csv";
    /// The report, self-contained (plots inlined): what to open after a run.
    pub const REPORT_HTML: &str = "report.html";
    /// The same report as Markdown, for a postmortem document.
    pub const REPORT_MD: &str = "report.md";
}

pub use comparison::ComparisonFolder;

/// `timeseries.csv`: time in seconds and every other column by name (`None` for an empty cell).
#[derive(Debug, Clone, Default)]
pub struct TimeSeries {
    pub t_s: Vec<f64>,
    pub columns: Vec<(String, Vec<Option<f64>>)>,
}

impl TimeSeries {
    pub fn column(&self, name: &str) -> Option<&[Option<f64>]> {
        self.columns
            .iter()
            .find(|(n, _)| n == name)
            .map(|(_, v)| v.as_slice())
    }

    /// The median gap between samples, in seconds.
    pub fn interval_s(&self) -> Option<f64> {
        let mut gaps: Vec<f64> = self.t_s.windows(2).map(|w| w[1] - w[0]).collect();
        gaps.sort_by(f64::total_cmp);
        gaps.get(gaps.len() / 2).copied()
    }
}

/// When the accept queue was full: samples at `threshold` or more of `capacity`, in `spans` (s).
#[derive(Debug, Clone, PartialEq)]
pub struct QueueFull {
    pub threshold: u64,
    pub capacity: u64,
    pub spans: Vec<(f64, f64)>,
}

/// One run's result folder.
#[derive(Debug)]
pub struct RunFolder {
    pub dir: PathBuf,
    /// `connections.csv`, one record per connection (columns a file lacks read as empty).
    pub connections: Vec<Conn>,
    pub series: TimeSeries,
    /// `summary.json` as written; keys it lacks (an older or hand-made folder) read as their
    /// defaults, keys this version does not know are ignored.
    pub summary: Summary,
    /// `environment.json`, when present.
    pub environment: Option<Environment>,
    /// `scenario.toml` as run, or why it could not be loaded (the plots then lack the knobs
    /// that only the scenario knows, such as the accept policy).
    pub plan: Result<RunPlan, String>,
}

/// What a folder given to `backlog-lab plot` turned out to be.
pub enum Folder {
    Run(Box<RunFolder>),
    Comparison(ComparisonFolder),
    /// A plan's folder (`plan.json`), with the folder itself.
    Plan(Box<crate::record::sizing::PlanResult>, PathBuf),
}

/// Opens `dir` as a comparison folder (it has `comparison.json`), a plan's (`plan.json`) or a
/// run folder.
pub fn open(dir: &Path) -> Result<Folder, Failure> {
    if !dir.is_dir() {
        return Err(bad(dir, "no such folder"));
    }
    if dir.join(files::COMPARISON).is_file() {
        return Ok(Folder::Comparison(ComparisonFolder::read(dir)?));
    }
    if let Some(p) = plan::read(dir)? {
        return Ok(Folder::Plan(Box::new(p), dir.to_path_buf()));
    }
    let known = [
        files::SUMMARY,
        files::CONNECTIONS,
        files::TIMESERIES,
        files::COMPARISON,
    ];
    if !known.iter().any(|f| dir.join(f).is_file()) {
        return Err(bad(
            dir,
            "not a backlog-lab result folder: it has none of summary.json, connections.csv, \
             timeseries.csv or comparison.json. Give a folder written by `backlog-lab run` \
             (results/<scenario>/<timestamp>/, or its --out DIR)",
        ));
    }
    Ok(Folder::Run(Box::new(RunFolder::read(dir)?)))
}

/// A JSON file of the folder as `T`; `None` if it is missing and not `required`.
fn read_json<T: DeserializeOwned>(
    dir: &Path,
    name: &str,
    required: bool,
) -> Result<Option<T>, Failure> {
    let path = dir.join(name);
    let text = match std::fs::read_to_string(&path) {
        Ok(t) => t,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound && !required => return Ok(None),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
            return Err(bad(
                &path,
                "missing; a folder written by `backlog-lab run` has connections.csv, \
                 timeseries.csv and summary.json",
            ))
        }
        Err(e) => return Err(bad(&path, e)),
    };
    serde_json::from_str(&text).map(Some).map_err(|e| {
        let what = match e.classify() {
            serde_json::error::Category::Data => "not what a backlog-lab result holds",
            _ => "not valid JSON",
        };
        bad(&path, format!("line {}: {what}: {e}", e.line()))
    })
}

impl RunFolder {
    /// Reads every file of a run folder; the three data files are required.
    pub fn read(dir: &Path) -> Result<RunFolder, Failure> {
        if !dir.is_dir() {
            return Err(bad(dir, "no such folder"));
        }
        let summary = read_json(dir, files::SUMMARY, true)?.unwrap_or_default();
        let connections = connections::read(dir)?;
        let series = read_timeseries(dir)?;
        let environment = read_json(dir, files::ENVIRONMENT, false)?;
        let scenario = dir.join(files::SCENARIO);
        let plan = if scenario.is_file() {
            // A run's scenario.toml is always a single run (a comparison saves one per run).
            crate::scenario::load(Some(&scenario), &[])
                .and_then(|mut runs| match runs.len() {
                    1 => RunPlan::from_scenario(&runs.remove(0).loaded),
                    n => Err(crate::error::Failure::bad_input(format!(
                        "{} describes a comparison of {n} runs, not one run",
                        scenario.display()
                    ))),
                })
                .map_err(|e| e.message)
        } else {
            Err(format!("{} is missing", scenario.display()))
        };
        Ok(RunFolder {
            dir: dir.to_path_buf(),
            connections,
            series,
            summary,
            environment,
            plan,
        })
    }

    /// The scenario's name: from the summary, else the folder's name.
    pub fn name(&self) -> String {
        if self.summary.scenario.is_empty() {
            self.dir.display().to_string()
        } else {
            self.summary.title()
        }
    }

    /// A counter's delta over the run as `summary.json` has it (absent: it did not move).
    pub fn counter(&self, ns: &str, name: &str) -> i64 {
        self.summary.counter(ns, name)
    }

    pub fn outcome_count(&self, o: Outcome) -> u64 {
        self.summary.outcomes[o]
    }

    /// Number of connections the run attempted (from the rows, for a summary that lacks it).
    pub fn total(&self) -> u64 {
        match self.summary.connections {
            0 => self.connections.len() as u64,
            n => n,
        }
    }

    /// An effective sysctl of the `server` or `client` namespace, as read back during the run.
    pub fn sysctl(&self, ns: &str, key: &str) -> Option<&str> {
        self.summary.sysctl(ns, key).or_else(|| {
            let env = self.environment.as_ref()?;
            env.sysctl.get(ns)?.get(key).map(String::as_str)
        })
    }

    /// `ss -lnt` Send-Q of the listener: the effective backlog (from the summary, else from the
    /// samples).
    pub fn accept_queue_limit(&self) -> Option<u64> {
        self.summary
            .listen
            .accept_queue_limit
            .map(u64::from)
            .or_else(|| {
                self.series
                    .column("accept_queue_limit")?
                    .iter()
                    .flatten()
                    .map(|v| *v as u64)
                    .max()
            })
    }

    /// When the sampled accept queue was full (see [`analysis::full_threshold`]), if the folder
    /// has the samples and the capacity.
    pub fn accept_queue_full(&self) -> Option<QueueFull> {
        let capacity = self.accept_queue_capacity()?;
        let col = self.series.column("accept_queue")?;
        let threshold = analysis::full_threshold(capacity);
        let bridge = analysis::bridge_s(self.series.interval_s().unwrap_or(0.1));
        Some(QueueFull {
            threshold,
            capacity,
            spans: analysis::spans_at_or_above(&self.series.t_s, col, threshold as f64, bridge),
        })
    }

    /// How many connections the accept queue really holds (limit + 1).
    pub fn accept_queue_capacity(&self) -> Option<u64> {
        self.summary
            .listen
            .accept_queue_capacity
            .map(u64::from)
            .or_else(|| self.accept_queue_limit().map(|l| l + 1))
    }

    /// Where the time axes of a run's charts end (s): the last sample, or the end of the last
    /// connection if later. The same for every chart, so they line up.
    pub fn end_s(&self) -> f64 {
        let last_sample = self.series.t_s.last().copied().unwrap_or(0.0);
        let duration = self.summary.duration_s;
        last_sample.max(duration).max(0.1)
    }

    pub fn kernel_release(&self) -> Option<&str> {
        let release = self.environment.as_ref()?.kernel_release.as_str();
        (!release.is_empty()).then_some(release)
    }
}

fn read_timeseries(dir: &Path) -> Result<TimeSeries, Failure> {
    let t = Table::read(dir, files::TIMESERIES)?;
    let t_col = t.require("t_us")?;
    let names: Vec<(usize, String)> = t
        .header()
        .iter()
        .enumerate()
        .filter(|(i, _)| *i != t_col)
        .map(|(i, n)| (i, n.clone()))
        .collect();
    let mut series = TimeSeries {
        t_s: Vec::with_capacity(t.len()),
        columns: names
            .iter()
            .map(|(_, n)| (n.clone(), Vec::with_capacity(t.len())))
            .collect(),
    };
    for row in t.rows() {
        series.t_s.push(row.u64(t_col)? as f64 / 1e6);
        for ((i, _), (_, values)) in names.iter().zip(series.columns.iter_mut()) {
            values.push(row.opt_f64(*i)?);
        }
    }
    Ok(series)
}
