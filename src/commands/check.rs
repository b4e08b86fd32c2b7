//! `backlog-lab check`: parse and validate a scenario without running it (no privileges), and
//! print the plan of each run it makes.

use std::io::Write;

use crate::cli::ScenarioArgs;

pub fn command(args: &ScenarioArgs, out: &mut impl Write) -> anyhow::Result<u8> {
    let plans = super::load_plans(args)?;
    for (combo, plan) in &plans {
        if plans.len() > 1 {
            writeln!(out, "--- run `{}`", combo.label)?;
        }
        writeln!(out, "{}: valid\n{plan:#?}", plan.origin)?;
    }
    Ok(0)
}
