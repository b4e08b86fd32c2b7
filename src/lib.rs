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
//! - [`record`]: per-connection records, outcomes, and the summary.
//! - [`export`]: the result folder (CSV and JSON).
//! - [`report`]: the progress line and the summary table; `report.md` and `report.html`.
//! - [`results`]: a result folder read back from its files.
//! - [`plots`]: the charts of a run or a comparison (PNG and SVG, no system fonts).
//! - [`postmortem`]: plots and reports of a result folder (`backlog-lab plot DIR`, end of `run`).
//! - [`app`]: one run from plan to results.
//! - [`serve`]: the lab and its server without a storm, for clients of your own.

pub mod app;
pub mod cli;
pub mod client;
pub mod counters;
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

/// Loads and validates the scenario named on the command line (a file or a bundled name).
fn load_plan(args: &ScenarioArgs) -> anyhow::Result<RunPlan> {
    let loaded = scenario::load(args.scenario.as_deref(), &args.sets)?;
    Ok(RunPlan::from_scenario(&loaded)?)
}

/// Runs a parsed command line; returns the process exit code.
pub fn run_cli(cli: Cli) -> anyhow::Result<u8> {
    let mut out = std::io::stdout().lock();
    match cli.command {
        Command::Run(args) => {
            let plan = load_plan(&args.scenario)?;
            topo::netns::become_root_in_user_namespace_if_needed()?;
            let display = app::Display {
                quiet: args.quiet,
                json: args.json,
            };
            let result = app::run(&plan, args.out.as_deref(), &display)?;
            Ok(result.exit_code())
        }
        Command::Serve(args) => {
            let plan = load_plan(&args.scenario)?;
            topo::netns::become_root_in_user_namespace_if_needed()?;
            serve::serve(&plan, args.duration, &mut out)
        }
        Command::Check(args) => {
            let plan = load_plan(&args)?;
            writeln!(out, "{}: valid\n{plan:#?}", plan.origin)?;
            Ok(0)
        }
        Command::Plot(args) => {
            let files = postmortem::render(&args.dir)?;
            writeln!(out, "{}", postmortem::describe(&args.dir, &files))?;
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
