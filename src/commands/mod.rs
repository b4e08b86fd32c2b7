//! One file per subcommand: what each does with its arguments, from the parsed command line to
//! its exit code. [`dispatch`] picks the one the user named.
//!
//! - [`run`]: one scenario through the lab; [`compare`]: several, side by side;
//! - [`serve`]: the lab's server without a storm; [`bench_link`]: the emulated link measured;
//! - [`plan`]: the backlog a scenario's traffic needs, by the model and by runs;
//! - [`plot`]: plots and reports of a result folder; [`check`] and [`list`]: scenarios, no root;
//!   [`explain`]: the kernel's limits for a scenario, no root.

pub mod bench_link;
pub mod check;
pub mod compare;
pub mod explain;
pub mod list;
pub mod plan;
pub mod plot;
pub mod run;
pub mod serve;
pub mod watch;

use std::io::Write;

use crate::cli::{Cli, Command, RunArgs, ScenarioArgs};
use crate::error::Failure;
use crate::plan::RunPlan;
use crate::scenario::{self, Combination};

/// The [wardens](crate::warden)' own commands, which are not the user's (no `--help`, no
/// completion): `trace-janitor DIR` removes a trace instance once the run that made it is gone,
/// `netns-warden N` ends the sockets of the N namespaces handed over as descriptors 3, 4, ...
/// `None` when the command line is not one of them.
pub fn warden(args: &[std::ffi::OsString]) -> Option<u8> {
    match (args.get(1)?.to_str()?, args.get(2), args.len()) {
        ("trace-janitor", Some(dir), 3) => {
            crate::drops::tracefs::janitor(std::path::Path::new(dir))
        }
        ("netns-warden", Some(n), 3) => crate::netns::warden(n.to_str()?.parse().ok()?),
        _ => return None,
    }
    Some(0)
}

/// Runs a parsed command line; returns the process exit code.
pub fn dispatch(cli: Cli) -> anyhow::Result<u8> {
    let mut out = std::io::stdout().lock();
    match cli.command {
        Command::Run(args) => run_or_compare(&args),
        Command::Serve(args) => serve::command(&args, &mut out),
        Command::Watch(args) => watch::command(&args, &mut out),
        Command::BenchLink(args) => bench_link::command(&args, &mut out),
        Command::Check(args) => check::command(&args, &mut out),
        Command::Explain(args) => explain::command(&args, &mut out),
        Command::Plan(args) => plan::command(&args, &mut out),
        Command::Plot(args) => plot::command(&args, &mut out),
        Command::Completions { shell } => {
            let mut cmd = <Cli as clap::CommandFactory>::command();
            clap_complete::generate(shell, &mut cmd, "backlog-lab", &mut out);
            Ok(0)
        }
        Command::Man => {
            clap_mangen::Man::new(<Cli as clap::CommandFactory>::command()).render(&mut out)?;
            Ok(0)
        }
        Command::List => list::command(&mut out),
        Command::Cleanup => {
            let removed = crate::drops::tracefs::cleanup().map_err(Failure::environment)?;
            writeln!(
                out,
                "removed {} trace instance(s) of labs no longer running{}",
                removed.len(),
                if removed.is_empty() {
                    String::new()
                } else {
                    format!(": {}", removed.join(", "))
                }
            )?;
            Ok(0)
        }
    }
}

/// `backlog-lab run`: one run, or a comparison when the scenario makes several.
fn run_or_compare(args: &RunArgs) -> anyhow::Result<u8> {
    let mut plans = load_plans(&args.scenario)?;
    preflight(&plans);
    crate::netns::become_root_in_user_namespace_if_needed()?;
    let display = run::Shown {
        progress: !args.quiet && !args.json,
        print: if args.json {
            run::Print::Json
        } else if args.quiet {
            run::Print::Path
        } else {
            run::Print::Table
        },
    };
    let opts = run::Options {
        out: args.out.as_deref(),
        force: args.force,
        concurrent: args.concurrent,
        no_pictures: false,
    };
    if plans.len() == 1 {
        let (_, plan) = plans.remove(0);
        let result = run::run(&plan, opts, &display)?;
        return Ok(result.exit_code());
    }
    let name = plans[0].1.name.clone();
    compare::run(&name, &plans, opts, &display)
}

/// Loads the scenario named on the command line (a file or a bundled name) and validates the
/// plan of every run it makes (one, or several for a comparison) before anything runs.
pub fn load_plans(args: &ScenarioArgs) -> anyhow::Result<Vec<(Combination, RunPlan)>> {
    let combos = scenario::load(args.scenario.as_deref(), &args.sets)?;
    let many = combos.len() > 1;
    let mut noted = std::collections::BTreeSet::new();
    for note in combos.iter().flat_map(|c| &c.loaded.notes) {
        if noted.insert(note) {
            eprintln!("note: {note}");
        }
    }
    combos
        .into_iter()
        .map(|c| {
            let plan = RunPlan::from_scenario(&c.loaded).map_err(|mut e| {
                if many {
                    e.message = format!("[{}] {}", c.label, e.message);
                }
                e
            })?;
            Ok((c, plan))
        })
        .collect()
}

/// What the plans' numbers say before anything is built, on stderr: a warning where the run
/// would measure the machine rather than the queue, a note where it only works as designed.
pub(crate) fn preflight(plans: &[(Combination, RunPlan)]) {
    let fd_limit = crate::lab::raise_nofile_limit();
    let cpus = std::thread::available_parallelism().map_or(1, |n| n.get());
    for (combo, plan) in plans {
        for p in crate::plan::preflight::check(plan, fd_limit, cpus) {
            let kind = p.kind();
            let run = if plans.len() > 1 {
                format!("run `{}`: ", combo.label)
            } else {
                String::new()
            };
            eprintln!("{kind}: {run}{p}");
        }
    }
}

/// The one plan of a scenario that must not be a comparison.
pub fn load_single(args: &ScenarioArgs, command: &str) -> anyhow::Result<RunPlan> {
    Ok(load_one(args, command)?.1)
}

/// [`load_single`], with the combination it is.
pub fn load_one(args: &ScenarioArgs, command: &str) -> anyhow::Result<(Combination, RunPlan)> {
    let mut plans = load_plans(args)?;
    if plans.len() != 1 {
        return Err(Failure::bad_input(format!(
            "`{command}` takes one scenario, and this is a comparison of {} runs; pick one with \
             --set (e.g. --set case= --set matrix= and the settings of the run you want)",
            plans.len()
        ))
        .into());
    }
    Ok(plans.remove(0))
}
