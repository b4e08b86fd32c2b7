//! backlog-lab: reproduce Linux TCP listen-queue failures (SYN-queue and accept-queue overflows)
//! on demand, inside network namespaces the lab builds and tears down itself.
//!
//! # Layout
//! - [`cli`]: the command line (clap); nothing below [`plan`] sees it.
//! - [`scenario`]: TOML scenario files, `--set` overrides, and `[expect]` assertions.
//! - [`plan`]: the validated [`plan::RunPlan`] every run is driven by.
//! - [`topo`]: the two hosts: network namespaces held by fd, the veth link, per-namespace sysctls.
//! - [`server`]: the deliberately slow server (listen backlog, accept policies).
//! - [`client`]: the open-loop storm of short connections and its arrival schedules.
//! - [`counters`]: `/proc/net/netstat` + `/proc/net/snmp` per namespace, and sock_diag queue reads.
//! - [`drops`]: where packets died: the kernel's drop reasons and TCP trace events (tracefs).
//! - [`record`]: per-connection records, outcomes, and the summary.
//! - [`export`]: the result folder (CSV and JSON).
//! - [`report`]: the progress line and the summary table; `report.md` and `report.html`.
//! - [`results`]: a result folder read back from its files.
//! - [`plots`]: the charts of a run or a comparison (PNG and SVG, no system fonts).
//! - [`postmortem`]: plots and reports of a result folder (`backlog-lab plot DIR`, end of `run`).
//! - [`app`]: one run from plan to results.
//! - [`compare`]: several runs of one scenario side by side (`[matrix]`, `[[case]]`, `--set K=A,B`).
//! - [`serve`]: the lab and its server without a storm, for clients of your own.
//! - [`bench`]: `bench-link`, the emulated link measured against veth.

pub mod app;
pub mod bench;
pub mod cli;
pub mod client;
pub mod compare;
pub mod counters;
pub mod drops;
pub mod error;
pub mod export;
pub mod plan;
pub mod plots;
pub mod postmortem;
pub mod record;
pub mod report;
pub mod results;
pub mod scenario;
pub mod serve;
pub mod server;
pub mod topo;

use std::io::Write;

use cli::{Cli, Command, ScenarioArgs};
use plan::RunPlan;

/// Loads the scenario named on the command line (a file or a bundled name) and validates the
/// plan of every run it makes (one, or several for a comparison) before anything runs.
fn load_plans(args: &ScenarioArgs) -> anyhow::Result<Vec<(scenario::Combination, RunPlan)>> {
    let combos = scenario::load(args.scenario.as_deref(), &args.sets)?;
    let many = combos.len() > 1;
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

/// The one plan of a scenario that must not be a comparison.
fn load_single(args: &ScenarioArgs, command: &str) -> anyhow::Result<RunPlan> {
    let mut plans = load_plans(args)?;
    if plans.len() != 1 {
        return Err(error::Failure::bad_input(format!(
            "`{command}` takes one scenario, and this is a comparison of {} runs; pick one with \
             --set (e.g. --set case= --set matrix= and the settings of the run you want)",
            plans.len()
        ))
        .into());
    }
    Ok(plans.remove(0).1)
}

/// Runs a parsed command line; returns the process exit code.
pub fn run_cli(cli: Cli) -> anyhow::Result<u8> {
    let mut out = std::io::stdout().lock();
    match cli.command {
        Command::Run(args) => {
            let mut plans = load_plans(&args.scenario)?;
            topo::netns::become_root_in_user_namespace_if_needed()?;
            let display = app::Display {
                progress: !args.quiet && !args.json,
                print: if args.json {
                    app::Print::Json
                } else if args.quiet {
                    app::Print::Nothing
                } else {
                    app::Print::Table
                },
            };
            if plans.len() == 1 {
                let (_, plan) = plans.remove(0);
                let result = app::run(&plan, args.out.as_deref(), &display)?;
                return Ok(result.exit_code());
            }
            let name = plans[0].1.name.clone();
            compare::run(&name, &plans, args.out.as_deref(), &display)
        }
        Command::Serve(args) => {
            let plan = load_single(&args.scenario, "serve")?;
            if plan.flood.is_some() {
                return Err(error::Failure::bad_input(
                    "`serve` sends no traffic of its own, and this scenario has a [flood]: \
                     remove it (--set flood=) or use `run`",
                )
                .into());
            }
            topo::netns::become_root_in_user_namespace_if_needed()?;
            serve::serve(&plan, args.duration, &mut out)
        }
        Command::BenchLink(args) => {
            topo::netns::become_root_in_user_namespace_if_needed()?;
            let bench_args = bench::BenchArgs {
                rtts: args.rtts,
                handshakes: args.handshakes as usize,
                rates: args.rates,
                seconds: args.seconds,
                throughput: !args.accuracy_only,
            };
            bench::run(&bench_args, args.json, &mut out)
        }
        Command::Check(args) => {
            let plans = load_plans(&args)?;
            for (combo, plan) in &plans {
                if plans.len() > 1 {
                    writeln!(out, "--- run `{}`", combo.label)?;
                }
                writeln!(out, "{}: valid\n{plan:#?}", plan.origin)?;
            }
            Ok(0)
        }
        Command::Plot(args) => {
            let files = postmortem::render(&args.dir)?;
            writeln!(out, "{}", postmortem::describe(&args.dir, &files))?;
            Ok(0)
        }
        Command::TraceJanitor { instance } => {
            drops::tracefs::janitor(&instance);
            Ok(0)
        }
        Command::List => {
            for (name, text) in scenario::BUNDLED {
                let file: scenario::ScenarioFile =
                    toml::from_str(text).expect("bundled scenarios parse");
                writeln!(out, "{name:<22} {}", file.incident.unwrap_or_default())?;
            }
            Ok(0)
        }
    }
}
