//! A plan's own files (`backlog-lab plan`): `plan.json`, the whole [`PlanResult`], and `plan.csv`,
//! one row per run with the model's prediction for the same backlog beside it. Both are
//! rewritten after every run, so a plan stopped early keeps what ran.

use std::path::Path;

use anyhow::Context;

use super::files;
use crate::error::Failure;
use crate::record::outcome::Outcome;
use crate::record::sizing::PlanResult;

/// The columns of `plan.csv` before the outcomes; each outcome then has a column, and the
/// model's columns follow with a `model_` prefix.
const HEAD: &[&str] = &[
    "backlog",
    "limit",
    "repetition",
    "passed",
    "listen_overflows",
    "syn_drops",
    "accept_queue_max_seen",
    "connect_p50_ms",
    "connect_p99_ms",
];
const MODEL_HEAD: &[&str] = &[
    "model_passed",
    "model_listen_overflows",
    "model_syn_drops",
    "model_accept_queue_peak",
    "model_connect_p50_ms",
    "model_connect_p99_ms",
];

fn cell(v: Option<f64>) -> String {
    v.map(|x| format!("{x}")).unwrap_or_default()
}

/// Writes `plan.json` and `plan.csv` into `dir`.
pub fn write(dir: &Path, r: &PlanResult) -> anyhow::Result<()> {
    super::write::write_json(dir, files::PLAN, r)?;
    let path = dir.join(files::PLAN_CSV);
    let mut w = csv::Writer::from_path(&path)
        .with_context(|| format!("cannot write {}", path.display()))?;
    let mut header: Vec<String> = HEAD.iter().map(|s| s.to_string()).collect();
    header.extend(Outcome::ALL.iter().map(|o| o.name().to_string()));
    header.extend(MODEL_HEAD.iter().map(|s| s.to_string()));
    header.extend(Outcome::ALL.iter().map(|o| format!("model_{}", o.name())));
    header.extend(["shortened_to_s".to_string(), "dir".to_string()]);
    w.write_record(&header)?;
    for p in &r.points {
        let m = &p.model;
        let count = |map: &std::collections::BTreeMap<String, u64>, o: Outcome| {
            map.get(o.name()).copied().unwrap_or(0).to_string()
        };
        let mut row = vec![
            p.backlog.to_string(),
            p.limit.map(|l| l.to_string()).unwrap_or_default(),
            p.repetition.to_string(),
            p.passed.to_string(),
            p.listen_overflows.to_string(),
            p.syn_drops.to_string(),
            p.accept_queue_max_seen.to_string(),
            cell(p.connect_p50_ms),
            cell(p.connect_p99_ms),
        ];
        row.extend(Outcome::ALL.iter().map(|o| count(&p.outcomes, *o)));
        row.extend([
            m.passed.to_string(),
            m.listen_overflows.to_string(),
            m.syn_drops.to_string(),
            m.accept_queue_peak.to_string(),
            cell(m.connect_p50_ms),
            cell(m.connect_p99_ms),
        ]);
        row.extend(Outcome::ALL.iter().map(|o| count(&m.outcomes, *o)));
        row.extend([cell(p.shortened_to_s), p.dir.clone()]);
        w.write_record(&row)?;
    }
    w.flush()?;
    Ok(())
}

/// `plan.json` of `dir`, if it is a plan's folder.
pub fn read(dir: &Path) -> Result<Option<PlanResult>, Failure> {
    super::read_json(dir, files::PLAN, false)
}
