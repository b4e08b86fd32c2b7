//! A result folder read back from disk: what the plots and the reports are drawn from, so that
//! `backlog-lab plot DIR` works long after the run, on another machine, without root.
//!
//! Only files are read here (see `results/README.md` for their layout). The reader is tolerant
//! where a later or earlier version may differ (extra columns, counters absent because they did
//! not move, a `scenario.toml` this version cannot load) and strict where the data would be
//! wrong (a malformed number: the file, line and column are named).
//!
//! - [`table`]: CSV files read by column name.
//! - [`analysis`]: pure computations over the records (CDFs, bins, rates, queue-full spans).
//! - [`settings`]: the scenario's knobs and effective sysctls, as text for captions and reports.
//! - [`comparison`]: a folder of several runs described by `comparison.json`.

pub mod analysis;
pub mod comparison;
pub mod settings;
pub mod table;

use std::path::{Path, PathBuf};

use serde_json::Value;

use crate::error::Failure;
use crate::plan::RunPlan;
use crate::record::{ConnRecord, Outcome};
use table::{bad, Table};

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
    pub connections: Vec<ConnRecord>,
    pub series: TimeSeries,
    /// `summary.json` as written (read as JSON, so fields added later do not break reading).
    pub summary: Value,
    /// `environment.json`, when present.
    pub environment: Option<Value>,
    /// `scenario.toml` as run, or why it could not be loaded (the plots then lack the knobs
    /// that only the scenario knows, such as the accept policy).
    pub plan: Result<RunPlan, String>,
}

/// What a folder given to `backlog-lab plot` turned out to be.
pub enum Folder {
    Run(Box<RunFolder>),
    Comparison(ComparisonFolder),
}

/// Opens `dir` as a comparison folder (it has `comparison.json`) or a run folder.
pub fn open(dir: &Path) -> Result<Folder, Failure> {
    if !dir.is_dir() {
        return Err(bad(dir, "no such folder"));
    }
    if dir.join("comparison.json").is_file() {
        return Ok(Folder::Comparison(ComparisonFolder::read(dir)?));
    }
    let known = [
        "summary.json",
        "connections.csv",
        "timeseries.csv",
        "comparison.json",
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

fn read_json(dir: &Path, name: &str, required: bool) -> Result<Option<Value>, Failure> {
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
    serde_json::from_str(&text)
        .map(Some)
        .map_err(|e| bad(&path, format!("line {}: not valid JSON: {e}", e.line())))
}

impl RunFolder {
    /// Reads every file of a run folder; the three data files are required.
    pub fn read(dir: &Path) -> Result<RunFolder, Failure> {
        if !dir.is_dir() {
            return Err(bad(dir, "no such folder"));
        }
        let summary = read_json(dir, "summary.json", true)?.unwrap_or_default();
        if !summary.is_object() {
            return Err(bad(&dir.join("summary.json"), "not a JSON object"));
        }
        let connections = read_connections(dir)?;
        let series = read_timeseries(dir)?;
        let environment = read_json(dir, "environment.json", false)?;
        let scenario = dir.join("scenario.toml");
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
        self.summary["scenario"]
            .as_str()
            .map(str::to_string)
            .unwrap_or_else(|| self.dir.display().to_string())
    }

    /// A counter's delta over the run as `summary.json` has it (absent: it did not move).
    pub fn counter(&self, ns: &str, name: &str) -> i64 {
        self.summary["counters"][ns][name].as_i64().unwrap_or(0)
    }

    pub fn outcome_count(&self, o: Outcome) -> u64 {
        self.summary["outcomes"][o.name()].as_u64().unwrap_or(0)
    }

    /// Number of connections the run attempted.
    pub fn total(&self) -> u64 {
        self.summary["connections"]
            .as_u64()
            .unwrap_or(self.connections.len() as u64)
    }

    /// An effective sysctl of the `server` or `client` namespace, as read back during the run.
    pub fn sysctl(&self, ns: &str, key: &str) -> Option<&str> {
        self.summary["sysctl"][ns][key].as_str().or_else(|| {
            self.environment
                .as_ref()
                .and_then(|e| e["sysctl"][ns][key].as_str())
        })
    }

    /// `ss -lnt` Send-Q of the listener: the effective backlog (from the summary, else from the
    /// samples).
    pub fn accept_queue_limit(&self) -> Option<u64> {
        self.summary["listen"]["accept_queue_limit"]
            .as_u64()
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
        self.summary["listen"]["accept_queue_capacity"]
            .as_u64()
            .or_else(|| self.accept_queue_limit().map(|l| l + 1))
    }

    /// Where the time axes of a run's charts end (s): the last sample, or the end of the last
    /// connection if later. The same for every chart, so they line up.
    pub fn end_s(&self) -> f64 {
        let last_sample = self.series.t_s.last().copied().unwrap_or(0.0);
        let duration = self.summary["duration_s"].as_f64().unwrap_or(0.0);
        last_sample.max(duration).max(0.1)
    }

    pub fn kernel_release(&self) -> Option<&str> {
        self.environment.as_ref()?["kernel_release"].as_str()
    }
}

fn read_connections(dir: &Path) -> Result<Vec<ConnRecord>, Failure> {
    let t = Table::read(dir, "connections.csv")?;
    let id = t.require("id")?;
    let scheduled = t.require("scheduled_us")?;
    let finished = t.require("finished_us")?;
    let outcome = t.require("outcome")?;
    let started = t.column("started_us");
    let connected = t.require("connected_us")?;
    let first_byte = t.column("first_byte_us");
    let retransmits = t.column("retransmits");
    let errno = t.column("errno");
    let local_port = t.column("local_port");
    let bytes = t.column("bytes");
    let mut out = Vec::with_capacity(t.len());
    for row in t.rows() {
        let name = row.text(outcome);
        let o = Outcome::ALL
            .into_iter()
            .find(|o| o.name() == name)
            .ok_or_else(|| row.invalid(outcome, "an outcome (ok, connect_timeout, ...)"))?;
        let scheduled_us = row.u64(scheduled)?;
        out.push(ConnRecord {
            id: row.u64(id)?,
            scheduled_us,
            started_us: row.opt_u64(started)?.unwrap_or(scheduled_us),
            connected_us: row.opt_u64(Some(connected))?,
            first_byte_us: row.opt_u64(first_byte)?,
            finished_us: row.u64(finished)?,
            outcome: o,
            errno: row.opt_int(errno, "an errno")?,
            retransmits: row.opt_int(retransmits, "a count")?.unwrap_or(0),
            local_port: row.opt_int(local_port, "a port")?,
            bytes: row.opt_u64(bytes)?.unwrap_or(0),
        });
    }
    Ok(out)
}

fn read_timeseries(dir: &Path) -> Result<TimeSeries, Failure> {
    let t = Table::read(dir, "timeseries.csv")?;
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
