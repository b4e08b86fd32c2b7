//! `backlog-lab run` of one scenario: stand the lab up, create the result folder, storm, write
//! every file, judge, draw, print. A comparison runs this once per combination
//! ([`super::compare`]).

use std::io::{IsTerminal, Write};
use std::path::{Path, PathBuf};

use crate::lab::{self, judge, storm, Lab};
use crate::plan::RunPlan;
use crate::record::summary::Summary;
use crate::results::write::{CounterPair, RunWriter};
use crate::terminal;
use crate::topo::claim::StormLock;

/// How the result is shown (not `Display`, which is std's trait); what is measured does not
/// depend on it.
#[derive(Debug, Clone, Default)]
pub struct Shown {
    /// A progress line on stderr while the storm runs (only if stderr is a terminal).
    pub progress: bool,
    /// What goes to stdout at the end.
    pub print: Print,
}

/// What a run prints on stdout when it ends.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub enum Print {
    /// The summary table and the verdict.
    #[default]
    Table,
    /// `summary.json`, with the result folder as `result_dir`.
    Json,
    /// `--quiet`: the result folder alone, one line, for scripts.
    Path,
    /// Nothing at all (a comparison's own runs: the comparison prints).
    Nothing,
}

/// Where a run writes, and what it may share.
#[derive(Debug, Clone, Copy, Default)]
pub struct Options<'a> {
    /// `--out`: the result folder (else a new one under `results/`).
    pub out: Option<&'a Path>,
    /// `--force`: write into a folder that holds files.
    pub force: bool,
    /// `--concurrent`: storm while another lab storms, instead of waiting for it.
    pub concurrent: bool,
    /// Leave out the plots and reports (a plan's runs: `backlog-lab plot` draws them later).
    pub no_pictures: bool,
}

/// What `backlog-lab run` returns to `main`.
pub struct RunResult {
    pub dir: PathBuf,
    pub summary: Summary,
}

impl RunResult {
    /// 0 when every expectation held, 1 when one failed, 128 + the signal when a stop signal
    /// ended it (130 for Ctrl-C, 143 for SIGTERM, 129 for SIGHUP).
    pub fn exit_code(&self) -> u8 {
        if let Some(signal) = crate::interrupt::requested() {
            crate::interrupt::exit_code(signal)
        } else if self.summary.interrupted {
            crate::interrupt::exit_code(libc::SIGINT)
        } else if self.summary.expectations.iter().all(|e| e.pass) {
            0
        } else {
            1
        }
    }
}

/// `value` as pretty JSON with `result_dir` first: where the files of what it describes are.
pub fn with_dir(value: &impl serde::Serialize, dir: &Path) -> anyhow::Result<String> {
    let mut out = serde_json::Map::new();
    out.insert("result_dir".into(), dir.display().to_string().into());
    if let serde_json::Value::Object(fields) = serde_json::to_value(value)? {
        out.extend(fields);
    }
    Ok(serde_json::to_string_pretty(&out)?)
}

/// Runs `plan`, writes its result folder, prints the summary, and returns it.
pub fn run(plan: &RunPlan, opts: Options, display: &Shown) -> anyhow::Result<RunResult> {
    let nofile = lab::raise_nofile_limit();
    // The folder first, so a bad --out is bad input before anything is built.
    let folder = RunWriter::create(opts.out, &plan.name, opts.force)?;
    crate::topo::require(plan.family).inspect_err(|_| folder.discard_if_unused())?;
    // One storm at a time on the machine (the lab's own calibration included), unless asked.
    // A stop signal while waiting leaves the lock untaken: the storm then ends at once.
    let _storm = match opts.concurrent {
        true => None,
        false => StormLock::acquire().inspect_err(|_| folder.discard_if_unused())?,
    };
    let started_at = humantime::format_rfc3339_seconds(std::time::SystemTime::now()).to_string();
    // The storm's attempts bound the connections (a SYN flood leaves only request sockets,
    // at most the SYN queue); a client program's are unknown.
    let sockets = plan
        .client
        .program
        .is_none()
        .then_some(plan.client.connections);
    let lab =
        Lab::stand_up(plan, folder.dir(), sockets).inspect_err(|_| folder.discard_if_unused())?;
    folder.scenario(&plan.scenario_text)?;
    folder.environment(&lab.environment(plan, started_at, nofile))?;

    let bar = terminal::progress::Bar::new(!display.progress || !std::io::stderr().is_terminal());
    let mut rows = folder.connections_csv()?;
    let m = storm::run(lab, plan, &mut |p| bar.tick(p), &mut rows)?;
    drop(rows);
    bar.finish();

    let pairs = [
        CounterPair {
            namespace: "server",
            before: &m.before.server,
            after: &m.after.server,
        },
        CounterPair {
            namespace: "client",
            before: &m.before.client,
            after: &m.after.client,
        },
    ];
    folder.counters(&pairs)?;
    folder.timeseries(&m.series, &pairs[0], &pairs[1])?;
    if m.drops.recorded {
        folder.drops(&m.drop_rows)?;
    }
    let s = judge::summarize(plan, &m)?;
    folder.summary(&s)?;
    // The rows are on disk; the pictures read them back, so free the tally and the trace first.
    drop(m);
    // Pictures last: the data above is complete, so a drawing failure only warns.
    if !opts.no_pictures {
        super::plot::render_after_run(folder.dir());
    }

    let mut stdout = std::io::stdout().lock();
    match display.print {
        Print::Json => writeln!(stdout, "{}", with_dir(&s, folder.dir())?)?,
        Print::Table => terminal::print(&mut stdout, plan, &s, folder.dir())?,
        Print::Path => writeln!(stdout, "{}", folder.dir().display())?,
        Print::Nothing => {}
    }
    Ok(RunResult {
        dir: folder.dir().to_path_buf(),
        summary: s,
    })
}
