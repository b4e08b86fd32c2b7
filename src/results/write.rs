//! Writes a run's result folder ([`RunWriter`]) and a comparison's own files. Data first (CSV
//! and JSON), so that nothing measured is lost if anything after it fails. Layout, documented in
//! `results/README.md` (the names are [`super::files`]):
//!
//! - `scenario.toml`: the scenario as run, `--set` values included
//! - `environment.json`: kernel, tool version, namespaces, effective sysctls, host values
//! - `connections.csv`: one row per connection
//! - `counters.csv`: namespace, counter, before, after, delta (every counter)
//! - `timeseries.csv`: the sampled listen queue and the counters that moved, as deltas from the start
//! - `drops.csv`: the kernel's drop and reset events for the lab, tied to connections
//! - `summary.json`: the summary and the verdict on each expectation

use std::path::{Path, PathBuf};

use anyhow::Context;
use serde::Serialize;

use super::files;
use crate::counters::{Series, Snapshot};
use crate::drops::Row as DropRow;
use crate::error::Failure;
use crate::record::summary::Summary;
use crate::record::RowSink;
use crate::record::{ConnRecord, Environment};

/// One run's result folder, being written.
pub struct RunWriter {
    dir: PathBuf,
    /// Whether [`RunWriter::create`] made the folder (rather than found it empty or `--force`d).
    created: bool,
}

impl RunWriter {
    /// Creates the folder (`out`, or a new `results/<scenario>/<timestamp>/`); see
    /// [`create_dir`].
    pub fn create(out: Option<&Path>, scenario: &str, force: bool) -> Result<RunWriter, Failure> {
        let (dir, created) = create_dir(out, scenario, force)?;
        Ok(RunWriter { dir, created })
    }

    /// Takes the folder away again if this run made it and wrote nothing into it (the lab
    /// could not stand up): a failed start leaves no empty result behind.
    pub fn discard_if_unused(&self) {
        if self.created {
            let _ = std::fs::remove_dir(&self.dir);
        }
    }

    pub fn dir(&self) -> &Path {
        &self.dir
    }

    /// `scenario.toml`: the scenario as run, `--set` values included.
    pub fn scenario(&self, text: &str) -> anyhow::Result<()> {
        let path = self.dir.join(files::SCENARIO);
        std::fs::write(&path, text).with_context(|| format!("cannot write {}", path.display()))
    }

    pub fn environment(&self, env: &Environment) -> anyhow::Result<()> {
        write_json(&self.dir, files::ENVIRONMENT, env)
    }

    /// `connections.csv`, to be written row by row as connections finish.
    pub fn connections_csv(&self) -> anyhow::Result<ConnectionsCsv> {
        ConnectionsCsv::create(&self.dir)
    }

    /// `connections.csv` from records at hand.
    pub fn connections(&self, records: &[ConnRecord]) -> anyhow::Result<()> {
        let mut csv = self.connections_csv()?;
        for r in records {
            csv.push(r.clone())?;
        }
        csv.flush(true)
    }

    /// `drops.csv`: one row per trace event of the lab (see [`crate::drops::Row`]).
    pub fn drops(&self, rows: &[DropRow]) -> anyhow::Result<()> {
        write_rows(&self.dir, files::DROPS, rows, DROP_COLUMNS)
    }

    pub fn counters(&self, pairs: &[CounterPair]) -> anyhow::Result<()> {
        write_counters(&self.dir, pairs)
    }

    pub fn timeseries(
        &self,
        series: &Series,
        server: &CounterPair,
        client: &CounterPair,
    ) -> anyhow::Result<()> {
        write_timeseries(&self.dir, series, server, client)
    }

    pub fn summary(&self, summary: &Summary) -> anyhow::Result<()> {
        write_json(&self.dir, files::SUMMARY, summary)
    }
}

/// The columns of `drops.csv`, in the order of [`crate::drops::Row`]'s fields.
pub const DROP_COLUMNS: &[&str] = &[
    "t_us",
    "event",
    "side",
    "reason",
    "state",
    "local",
    "remote",
    "connection",
    "location",
];

/// A scenario name or a comparison's label as one path component: `name = "../../x"` or
/// `"/tmp/escape"` must not choose where the results go (root writes them). Anything but
/// letters, digits, `-`, `_`, `=` and `.` becomes `_`, leading dots go, and it is cut at 80.
pub fn path_component(name: &str) -> String {
    let s: String = name
        .chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || "-_.=".contains(c) {
                c
            } else {
                '_'
            }
        })
        .collect();
    let s = s.trim_start_matches('.');
    if s.is_empty() {
        "scenario".to_string()
    } else {
        s.chars().take(80).collect()
    }
}

/// Creates the result folder before anything is built, so a bad path fails early (bad input,
/// exit 2) and nothing is ever written over: `out` must be new or empty unless `force`; the
/// default, `results/<scenario>/<timestamp>[-N]/`, is made with an exclusive create, so two labs
/// started in the same second get two folders. Returns the folder and whether it was created
/// here (so a run that fails before writing anything can take it away again).
pub fn create_dir(
    out: Option<&Path>,
    scenario: &str,
    force: bool,
) -> Result<(PathBuf, bool), Failure> {
    let cannot = |dir: &Path, e: &dyn std::fmt::Display| {
        Failure::bad_input(format!(
            "cannot create the result folder {}: {e} (choose another with --out DIR)",
            dir.display()
        ))
    };
    let Some(dir) = out else {
        let stamp = humantime::format_rfc3339_seconds(std::time::SystemTime::now())
            .to_string()
            .replace(':', "-")
            .trim_end_matches('Z')
            .to_string();
        let parent = PathBuf::from("results").join(path_component(scenario));
        std::fs::create_dir_all(&parent).map_err(|e| cannot(&parent, &e))?;
        for n in 1.. {
            let leaf = if n == 1 {
                stamp.clone()
            } else {
                format!("{stamp}-{n}")
            };
            let d = parent.join(leaf);
            match std::fs::create_dir(&d) {
                Ok(()) => return Ok((d, true)),
                Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => continue,
                Err(e) => return Err(cannot(&d, &e)),
            }
        }
        unreachable!("some numbered folder is free");
    };
    let existed = dir.exists();
    if existed && !dir.is_dir() {
        return Err(cannot(dir, &"it exists and is not a folder"));
    }
    let has_files = existed
        && std::fs::read_dir(dir)
            .map_err(|e| cannot(dir, &e))?
            .next()
            .is_some();
    if has_files && !force {
        return Err(Failure::bad_input(format!(
            "the result folder {} is not empty: nothing was run, and nothing in it was changed. \
             Give a new or empty folder with --out, or add --force to write into this one (files \
             of the same names are replaced, others stay)",
            dir.display()
        )));
    }
    std::fs::create_dir_all(dir).map_err(|e| cannot(dir, &e))?;
    // A folder can exist and still refuse files (read-only, /proc): find out now.
    let probe = dir.join(".backlog-lab-write-test");
    std::fs::write(&probe, b"")
        .and_then(|_| std::fs::remove_file(&probe))
        .map_err(|e| cannot(dir, &e))?;
    Ok((dir.to_path_buf(), !existed))
}

/// Everything one namespace's counters did: before and after the storm.
pub struct CounterPair<'a> {
    pub namespace: &'a str,
    pub before: &'a Snapshot,
    pub after: &'a Snapshot,
}

pub fn write_json(dir: &Path, name: &str, value: &impl Serialize) -> anyhow::Result<()> {
    let path = dir.join(name);
    let text = serde_json::to_string_pretty(value)?;
    std::fs::write(&path, text + "\n").with_context(|| format!("cannot write {}", path.display()))
}

/// `connections.csv` as connections finish: one row per connection, the columns of
/// [`super::connections::COLUMNS`], in id order. Connections finish out of order (a stalled one
/// ends seconds after those scheduled behind it), so a row waits here until every lower id has
/// been written: at most the rows finished within one connection's lifetime (a few MB at
/// 10,000/s with 5 s timeouts), instead of all of them.
pub struct ConnectionsCsv {
    w: csv::Writer<std::fs::File>,
    path: PathBuf,
    /// The id of `waiting[0]`.
    next: u64,
    waiting: std::collections::VecDeque<Option<ConnRecord>>,
}

impl ConnectionsCsv {
    fn create(dir: &Path) -> anyhow::Result<ConnectionsCsv> {
        let path = dir.join(files::CONNECTIONS);
        let mut w = csv::WriterBuilder::new()
            .has_headers(false)
            .from_path(&path)
            .with_context(|| format!("cannot write {}", path.display()))?;
        w.write_record(super::connections::COLUMNS)?;
        Ok(ConnectionsCsv {
            w,
            path,
            next: 0,
            waiting: Default::default(),
        })
    }

    fn write(&mut self, r: &ConnRecord) -> anyhow::Result<()> {
        self.w
            .serialize(r)
            .with_context(|| format!("cannot write {}", self.path.display()))
    }
}

impl RowSink for ConnectionsCsv {
    fn push(&mut self, r: ConnRecord) -> anyhow::Result<()> {
        let Some(i) = r.id.checked_sub(self.next) else {
            // An id already written: a second record of one connection, which the storm never
            // makes. Kept rather than lost.
            return self.write(&r);
        };
        let i = i as usize;
        if self.waiting.len() <= i {
            self.waiting.resize_with(i + 1, || None);
        }
        self.waiting[i] = Some(r);
        while let Some(Some(_)) = self.waiting.front() {
            let r = self.waiting.pop_front().flatten().expect("checked");
            self.write(&r)?;
            self.next += 1;
        }
        Ok(())
    }

    /// With `last`, the rows still waiting go out too (in id order, past any id that never
    /// came: the attempts after an interruption have none).
    fn flush(&mut self, last: bool) -> anyhow::Result<()> {
        if last {
            while let Some(r) = self.waiting.pop_front() {
                self.next += 1;
                if let Some(r) = r {
                    self.write(&r)?;
                }
            }
        }
        self.w
            .flush()
            .with_context(|| format!("cannot write {}", self.path.display()))
    }
}

/// A CSV of serialized rows under `header`, which names the rows' fields in order (a test holds
/// each header to its type), so an empty file still says what it would hold.
fn write_rows<T: Serialize>(
    dir: &Path,
    name: &str,
    rows: &[T],
    header: &[&str],
) -> anyhow::Result<()> {
    let path = dir.join(name);
    let mut w = csv::WriterBuilder::new()
        .has_headers(false)
        .from_path(&path)
        .with_context(|| format!("cannot write {}", path.display()))?;
    w.write_record(header)?;
    for r in rows {
        w.serialize(r)?;
    }
    w.flush()?;
    Ok(())
}

fn write_counters(dir: &Path, pairs: &[CounterPair]) -> anyhow::Result<()> {
    let path = dir.join(files::COUNTERS);
    let mut w = csv::Writer::from_path(&path)
        .with_context(|| format!("cannot write {}", path.display()))?;
    w.write_record(["namespace", "counter", "before", "after", "delta"])?;
    for p in pairs {
        for (k, after) in &p.after.0 {
            let before = p.before.get(k).unwrap_or(0);
            w.write_record([
                p.namespace,
                k,
                &before.to_string(),
                &after.to_string(),
                &(after - before).to_string(),
            ])?;
        }
    }
    w.flush()?;
    Ok(())
}

/// `timeseries.csv`: one row per sample. Columns: `t_us`, `accept_queue`, `accept_queue_limit`,
/// `syn_recv`, then `server:COUNTER` and `client:COUNTER` for each counter that moved during the
/// run, as the change since the reading taken before the storm.
fn write_timeseries(
    dir: &Path,
    series: &Series,
    server: &CounterPair,
    client: &CounterPair,
) -> anyhow::Result<()> {
    // Only counters that moved over the run get a column, each as its change since the start.
    let columns = |p: &CounterPair, names: &[String]| -> Vec<(String, usize, i64)> {
        let moved = Snapshot::moved(p.before, p.after);
        names
            .iter()
            .enumerate()
            .filter(|(_, n)| moved.contains_key(*n))
            .map(|(i, n)| (n.clone(), i, p.before.get(n).unwrap_or(0)))
            .collect()
    };
    let cols = [
        columns(server, &series.names[0]),
        columns(client, &series.names[1]),
    ];
    let path = dir.join(files::TIMESERIES);
    let mut w = csv::Writer::from_path(&path)
        .with_context(|| format!("cannot write {}", path.display()))?;
    let mut header = vec![
        "t_us".to_string(),
        "accept_queue".into(),
        "accept_queue_limit".into(),
        "syn_recv".into(),
    ];
    for (ns, c) in ["server", "client"].iter().zip(&cols) {
        header.extend(c.iter().map(|(k, _, _)| format!("{ns}:{k}")));
    }
    w.write_record(&header)?;
    let mut result = Ok(());
    series.replay(|p, values| {
        if result.is_err() {
            return;
        }
        let mut row = vec![
            p.t_us.to_string(),
            p.queue.accept_queue.to_string(),
            p.queue
                .accept_queue_limit
                .map(|l| l.to_string())
                .unwrap_or_default(),
            p.queue.syn_recv.map(|n| n.to_string()).unwrap_or_default(),
        ];
        for (ns, c) in cols.iter().enumerate() {
            // Empty where this sample skipped the counters (a rate over it spans the gap).
            row.extend(c.iter().map(|(_, i, base)| match p.counted {
                true => (values[ns][*i] - base).to_string(),
                false => String::new(),
            }));
        }
        result = w.write_record(&row);
    });
    result?;
    w.flush()?;
    Ok(())
}

/// `comparison.csv`: one row per run of a comparison, the columns of
/// [`super::rows::comparison_rows`].
pub fn write_comparison_csv(dir: &Path, runs: &[(&str, &Summary)]) -> anyhow::Result<()> {
    let path = dir.join(files::COMPARISON_CSV);
    let mut w =
        csv::Writer::from_path(&path).with_context(|| format!("writing {}", path.display()))?;
    let rows = super::rows::comparison_rows(runs);
    let mut header = vec!["run".to_string()];
    header.extend(rows.all().map(|(l, _)| l.clone()));
    w.write_record(&header)?;
    for (i, (label, _)) in runs.iter().enumerate() {
        let mut record = vec![label.to_string()];
        record.extend(rows.all().map(|(_, v)| v[i].clone()));
        w.write_record(&record)?;
    }
    w.flush()?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Each header names its type's fields in serialization order, so a row never lands under
    /// another column's name.
    #[test]
    fn headers_name_the_fields_in_order() {
        fn header_of<T: Serialize>(row: &T) -> Vec<String> {
            let mut w = csv::Writer::from_writer(Vec::new());
            w.serialize(row).unwrap();
            let text = String::from_utf8(w.into_inner().unwrap()).unwrap();
            text.lines()
                .next()
                .unwrap()
                .split(',')
                .map(String::from)
                .collect()
        }
        let conn = ConnRecord {
            id: 0,
            scheduled_us: 0,
            started_us: 0,
            connected_us: None,
            first_byte_us: None,
            finished_us: 0,
            outcome: crate::record::Outcome::Ok,
            errno: None,
            retransmits: 0,
            local_port: None,
            bytes: 0,
        };
        assert_eq!(header_of(&conn), super::super::connections::COLUMNS);
        let drop = DropRow {
            t_us: 0,
            event: "",
            side: "",
            reason: String::new(),
            state: String::new(),
            local: String::new(),
            remote: String::new(),
            connection: None,
            location: String::new(),
        };
        assert_eq!(header_of(&drop), DROP_COLUMNS);
    }
}
