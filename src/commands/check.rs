//! `backlog-lab check`: parse and validate a scenario without running it (no privileges), and
//! print the plan of each run it makes.

use std::collections::BTreeSet;
use std::io::Write;

use crate::cli::ScenarioArgs;
use crate::error::Kind;
use crate::topo::sysctl;

pub fn command(args: &ScenarioArgs, out: &mut impl Write) -> anyhow::Result<u8> {
    let plans = super::load_plans(args)?;
    // Where the kernel can be asked (root, or an ordinary user with user namespaces), each
    // side's sysctls are set in a scratch namespace, as the run will: what `run` refuses,
    // `check` refuses too. Elsewhere the keys are only checked for shape, and the output says so.
    let tried = crate::topo::netns::become_root_in_user_namespace_if_needed().and_then(|()| {
        let mut seen = BTreeSet::new();
        for (combo, plan) in &plans {
            for (side, values) in [
                ("server", &plan.server.sysctl),
                ("client", &plan.client.sysctl),
            ] {
                if values.is_empty() || !seen.insert((side, values.clone())) {
                    continue;
                }
                sysctl::try_in_scratch(side, values).map_err(|mut f| {
                    if plans.len() > 1 {
                        f.message = format!("run `{}`: {}", combo.label, f.message);
                    }
                    f
                })?;
            }
        }
        Ok(())
    });
    let note = match tried {
        Ok(()) => {
            "sysctls: each side's set in a scratch namespace of this kernel, as the run will".into()
        }
        Err(f) if f.kind == Kind::Environment => format!(
            "sysctls: checked for shape only; this kernel was not asked ({})",
            f.message
        ),
        Err(f) => return Err(f.into()),
    };
    for (combo, plan) in &plans {
        if plans.len() > 1 {
            writeln!(out, "--- run `{}`", combo.label)?;
        }
        writeln!(out, "{}: valid\n{plan:#?}", plan.origin)?;
    }
    writeln!(out, "{note}")?;
    Ok(0)
}
