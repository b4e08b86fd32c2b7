//! `backlog-lab plan`: the backlog a scenario's traffic needs. The model answers first (no root,
//! instantly); then, unless `--model-only`, real runs of the same storm search for the smallest
//! backlog at which every repetition meets every target, starting from the model's answer.
//!
//! Folder layout (`results/<scenario>-plan/<timestamp>/`, or `--out DIR`):
//! - `plan.json`, `plan.csv`: the answer, the model, the closed forms, one row per run;
//! - `runs/backlog-<B>-<R>/`: each run's own folder (`backlog-lab plot` draws it);
//! - `plots/sizing.{png,svg}`, `report.{md,html}`.
//!
//! `plan.json` and `plan.csv` are rewritten after every run, so a plan stopped early (Ctrl-C,
//! SIGTERM) keeps every run that ended.

use std::io::Write;
use std::path::{Path, PathBuf};
use std::time::Instant;

use super::run::{self, Print, Shown};
use crate::cli::PlanArgs;
use crate::error::Failure;
use crate::plan::queues::{kernel_release, SOMAXCONN_DEFAULT};
use crate::plan::sizing::{self as plan_sizing, SizingPlan};
use crate::plan::{Arrival, RunPlan};
use crate::record::sizing::{PlanPoint, PlanResult};
use crate::results::{plan as plan_files, write};
use crate::sizing::search::{self, Point};
use crate::sizing::workload::{Workload, SECOND};
use crate::sizing::{self, answer, closed, model};

/// `backlog-lab plan`.
pub fn command(args: &PlanArgs, out: &mut impl Write) -> anyhow::Result<u8> {
    let started = Instant::now();
    let (combo, base) = super::load_one(&args.scenario, "plan")?;
    if base.client.program.is_some() || base.server.program.is_some() {
        return Err(crate::error::Failure::bad_input(
            "plan sizes the lab's own server's backlog against the lab's own storm (its model \
             follows the storm's schedule): remove server.command and client.command, and describe \
             the load with [client] rate/arrival and the server with accept/accept_rate",
        )
        .into());
    }
    let sizing_plan = settings(args, &base)?;
    let release = kernel_release();
    let w = Workload::of(&base, &release);
    let mut r = model_answer(&base, &w, &sizing_plan, &release, args.model_only);
    if args.model_only {
        r.model_curve = curve(&w, &sizing_plan, &r, &[]);
        finish(&base, &w, &mut r, started);
        print(out, args, &r, None)?;
        return Ok(if r.model_backlog.is_some() { 0 } else { 1 });
    }
    super::preflight(&[(combo, base.clone())]);
    crate::netns::become_root_in_user_namespace_if_needed()?;
    let (dir, _) = write::create_dir(
        args.out.as_deref(),
        &format!("{}-plan", base.name),
        args.force,
    )?;
    plan_files::write(&dir, &r)?;
    let cut = shortened(&w, &sizing_plan, r.model_backlog);
    let start = r.model_backlog.unwrap_or(sizing_plan.range.1);
    let mut points: Vec<PlanPoint> = Vec::new();
    let found = search::search(sizing_plan.range, start, |b| {
        probe(args, &w, &sizing_plan, b, cut, &dir, &mut points, &mut r)
    })?;
    r.points = points;
    r.recommended_backlog = found.backlog;
    r.interrupted = found.interrupted || crate::interrupt::requested().is_some();
    let tried: Vec<u32> = found.tried.iter().map(|(b, _)| *b).collect();
    r.model_curve = curve(&w, &sizing_plan, &r, &tried);
    finish(&base, &w, &mut r, started);
    plan_files::write(&dir, &r)?;
    super::plot::render_after_run(&dir);
    print(out, args, &r, Some(&dir))?;
    Ok(if let Some(signal) = crate::interrupt::requested() {
        crate::interrupt::exit_code(signal)
    } else if r.interrupted {
        crate::interrupt::exit_code(libc::SIGINT)
    } else if r.recommended_backlog.is_some() {
        0
    } else {
        1
    })
}

/// The scenario's `[plan]` table with the command line's flags over it.
fn settings(args: &PlanArgs, base: &RunPlan) -> Result<SizingPlan, Failure> {
    let mut s = base.sizing.clone();
    if !args.targets.is_empty() {
        s.targets = plan_sizing::targets(&args.targets).map_err(|mut e| {
            e.message = format!("--target: {}", e.message);
            e
        })?;
    }
    if let Some(text) = &args.range {
        let parts: Vec<i64> = text
            .split(['-', ','])
            .map(|p| p.trim().parse::<i64>())
            .collect::<Result<_, _>>()
            .map_err(|_| {
                Failure::bad_input(format!(
                    "--range {text}: write LOW-HIGH, e.g. --range 1-65535"
                ))
            })?;
        s.range = plan_sizing::range("--range", &parts)?;
    }
    if let Some(n) = args.repetitions {
        s.repetitions = plan_sizing::repetitions("--repetitions", n)?;
    }
    Ok(s)
}

/// The plan's result before any run: the model's answer, its rules and the closed forms.
fn model_answer(
    base: &RunPlan,
    w: &Workload,
    s: &SizingPlan,
    release: &str,
    model_only: bool,
) -> PlanResult {
    let predicted = sizing::predicted(&s.targets);
    let model_backlog = if predicted.is_empty() {
        None
    } else {
        sizing::smallest(w, &predicted, s.range)
    };
    let poisson = matches!(base.client.arrival, Arrival::Poisson { .. });
    let target_line = s.targets.first().and_then(|t| {
        let summary = sizing::summary(w, 1, &model::simulate(w, 1));
        let json = serde_json::to_value(&summary).ok()?;
        t.check(&json, &|_| true).expected
    });
    let mut rules = answer::rules(base, w, release);
    for t in &s.targets {
        if let Some(path) = sizing::unpredicted(t) {
            rules.push(format!(
                "the model does not predict {path}: the target \"{}\" is judged by the runs alone",
                t.text
            ));
        }
    }
    PlanResult {
        scenario: base.name.clone(),
        overrides: base.overrides.clone(),
        kernel: release.to_string(),
        model_backlog,
        model_only,
        targets: s.targets.iter().map(|t| t.text.clone()).collect(),
        target_line,
        range: [s.range.0, s.range.1],
        repetitions: s.repetitions,
        rules,
        closed_forms: closed::of(w, poisson),
        ..Default::default()
    }
}

/// The answer, somaxconn and warnings, once the points are in.
fn finish(base: &RunPlan, w: &Workload, r: &mut PlanResult, started: Instant) {
    let answer = r.recommended_backlog.or(r.model_backlog);
    r.somaxconn = answer.map(|b| w.somaxconn_pinned.unwrap_or(b));
    // What fills the queue, as the model sees it at its own answer.
    let at = r.model_backlog.unwrap_or(r.range[1]);
    let peak = model::simulate(w, w.limit(at)).accept_queue_peak;
    let why = answer::why(w, base, &r.closed_forms, peak);
    r.warnings = answer::warnings(base, w, r);
    r.answer = answer::sentence(r, &why);
    r.elapsed_s = started.elapsed().as_secs_f64();
}

/// The model over a spread of backlogs around the answers and every backlog tried.
fn curve(
    w: &Workload,
    s: &SizingPlan,
    r: &PlanResult,
    tried: &[u32],
) -> Vec<crate::record::sizing::ModelPoint> {
    let anchors: Vec<u32> = tried
        .iter()
        .copied()
        .chain(r.model_backlog)
        .chain(r.recommended_backlog)
        .collect();
    let lo = anchors.iter().min().copied().unwrap_or(s.range.0);
    let hi = anchors.iter().max().copied().unwrap_or(s.range.1.min(1024));
    let (from, to) = ((lo / 2).max(s.range.0), (hi + hi / 2 + 2).min(s.range.1));
    let steps = 40u32;
    let mut backlogs: Vec<u32> = (0..=steps)
        .map(|i| from + ((to - from) as u64 * u64::from(i) / u64::from(steps)) as u32)
        .collect();
    backlogs.extend(anchors);
    backlogs.sort_unstable();
    backlogs.dedup();
    let predicted = sizing::predicted(&s.targets);
    backlogs
        .into_iter()
        .map(|b| answer::model_point(w, b, &predicted))
        .collect()
}

/// How much of the storm the runs need: when every target reads only counters and the listen
/// queue, the arrivals up to the model's peak and a margin decide them, as long as the model
/// gives the same answer for that part alone. `None`: run the whole storm.
fn shortened(w: &Workload, s: &SizingPlan, model_backlog: Option<u32>) -> Option<u64> {
    let only_counters = s.targets.iter().all(|t| {
        t.paths()
            .all(|p| p.starts_with("counters.") || p.starts_with("listen."))
    });
    let b = model_backlog?;
    if !only_counters {
        return None;
    }
    let peak_at = model::simulate(w, w.limit(b)).peak_at_ns;
    let cut = peak_at + (2 * w.rtt_ns).max(SECOND / 5);
    let last = *w.starts.last()?;
    if cut >= last {
        return None;
    }
    let short = w.until(cut);
    (sizing::smallest(&short, &s.targets, s.range) == Some(b)).then_some(cut)
}

/// Runs `backlog` up to `repetitions` times (stopping at the first miss); `None` when a stop
/// signal ended it.
#[allow(clippy::too_many_arguments)]
fn probe(
    args: &PlanArgs,
    w: &Workload,
    s: &SizingPlan,
    backlog: u32,
    cut: Option<u64>,
    dir: &Path,
    points: &mut Vec<PlanPoint>,
    r: &mut PlanResult,
) -> anyhow::Result<Option<Point>> {
    let predicted = sizing::predicted(&s.targets);
    let model = answer::model_point(w, backlog, &predicted);
    for rep in 1..=s.repetitions {
        if crate::interrupt::requested().is_some() {
            return Ok(None);
        }
        let plan = point_plan(args, w, s, backlog, cut)?;
        let sub = format!("runs/backlog-{backlog}-{rep}");
        let sub_dir: PathBuf = dir.join(&sub);
        let opts = run::Options {
            out: Some(&sub_dir),
            force: false,
            concurrent: false,
            no_pictures: true,
        };
        let shown = Shown {
            progress: false,
            print: Print::Nothing,
        };
        let result = run::run(&plan, opts, &shown)?;
        let mut point = answer::run_point(
            backlog,
            rep,
            sub,
            &result.summary,
            &s.targets,
            model.clone(),
        );
        point.shortened_to_s = cut.map(|c| c as f64 / SECOND as f64);
        let passed = point.passed;
        if !args.json {
            eprintln!(
                "backlog {backlog} run {rep}/{}: {} (listen drops {}, accept queue max {})",
                s.repetitions,
                if passed { "met the target" } else { "missed" },
                point.listen_overflows + point.syn_drops,
                point.accept_queue_max_seen
            );
        }
        points.push(point);
        r.points = points.clone();
        plan_files::write(dir, r)?;
        if result.summary.interrupted {
            return Ok(None);
        }
        if !passed {
            return Ok(Some(Point::Failed));
        }
    }
    Ok(Some(Point::Passed))
}

/// The scenario with `backlog`, somaxconn raised with it unless the scenario pins it, the storm
/// cut to `cut`, and the targets as its expectations.
fn point_plan(
    args: &PlanArgs,
    w: &Workload,
    s: &SizingPlan,
    backlog: u32,
    cut: Option<u64>,
) -> anyhow::Result<RunPlan> {
    let mut sets = args.scenario.sets.clone();
    sets.push(format!("server.backlog={backlog}"));
    if w.somaxconn_pinned.is_none() {
        sets.push(format!(
            "server.sysctl.net.core.somaxconn={}",
            backlog.max(SOMAXCONN_DEFAULT)
        ));
    }
    if let Some(c) = cut {
        sets.push(format!("client.duration={}ms", c.div_ceil(1_000_000)));
    }
    let combos = crate::scenario::load(args.scenario.scenario.as_deref(), &sets)?;
    let mut plan = RunPlan::from_scenario(&combos[0].loaded)?;
    plan.expect = s.targets.clone();
    Ok(plan)
}

fn print(
    out: &mut impl Write,
    args: &PlanArgs,
    r: &PlanResult,
    dir: Option<&Path>,
) -> anyhow::Result<()> {
    if args.json {
        match dir {
            Some(d) => writeln!(out, "{}", run::with_dir(r, d)?)?,
            None => writeln!(out, "{}", serde_json::to_string_pretty(r)?)?,
        }
        return Ok(());
    }
    writeln!(out, "{}", r.answer)?;
    for w in &r.warnings {
        writeln!(out, "warning: {w}")?;
    }
    let c = &r.closed_forms;
    writeln!(
        out,
        "model {}; fluid bound {}{}",
        r.model_backlog
            .map_or("none in range".into(), |b| b.to_string()),
        c.fluid_backlog,
        c.mm1k_backlog
            .map_or(String::new(), |k| format!("; M/M/1/K {k}"))
    )?;
    if !r.points.is_empty() {
        writeln!(out, "{} runs in {:.0} s", r.points.len(), r.elapsed_s)?;
    }
    if let Some(d) = dir {
        writeln!(
            out,
            "(open {})",
            d.join(crate::results::files::REPORT_HTML).display()
        )?;
    }
    Ok(())
}
