//! `backlog-lab check`: parse and validate a scenario without running it (no privileges), and
//! show each run it makes as the report's Settings show a run: the listen queues it will get,
//! its knobs, its expectations, and what its numbers say before it runs (pre-flight).

use std::collections::BTreeSet;
use std::io::Write;

use crate::cli::CheckArgs;
use crate::error::Kind;
use crate::plan::{preflight, queues, RunPlan};
use crate::results::settings;
use crate::scenario::Combination;
use crate::topo::sysctl;

pub fn command(args: &CheckArgs, out: &mut impl Write) -> anyhow::Result<u8> {
    let plans = super::load_plans(&args.scenario)?;
    let sysctls = try_sysctls(&plans)?;
    let release = queues::kernel_release();
    let fd_limit = crate::lab::raise_nofile_limit();
    let cpus = std::thread::available_parallelism().map_or(1, |n| n.get());
    let runs: Vec<Run> = plans
        .iter()
        .map(|(combo, plan)| Run::of(combo, plan, &release, fd_limit, cpus))
        .collect();
    if args.json {
        let json = serde_json::json!({
            "kernel_release": release,
            "sysctls_tried_on_kernel": sysctls.is_none(),
            "sysctls_note": sysctls,
            "runs": runs.iter().map(Run::json).collect::<Vec<_>>(),
        });
        writeln!(out, "{}", serde_json::to_string_pretty(&json)?)?;
        return Ok(0);
    }
    let many = runs.len() > 1;
    if many {
        writeln!(
            out,
            "{}: a comparison of {} runs",
            plans[0].1.origin,
            runs.len()
        )?;
        for r in &runs {
            writeln!(out, "  {}", r.line())?;
        }
    }
    for r in &runs {
        r.print(out, many)?;
    }
    writeln!(
        out,
        "\n{}",
        sysctls.unwrap_or_else(|| {
            "sysctls: each side's set in a scratch namespace of this kernel, as the run will".into()
        })
    )?;
    Ok(0)
}

/// Where the kernel can be asked (root, or an ordinary user with user namespaces), each side's
/// sysctls are set in a scratch namespace, as the run will: what `run` refuses, `check`
/// refuses too. Elsewhere the keys are only checked for shape: `Some(why)`.
fn try_sysctls(plans: &[(Combination, RunPlan)]) -> anyhow::Result<Option<String>> {
    let tried = crate::netns::become_root_in_user_namespace_if_needed().and_then(|()| {
        let mut seen = BTreeSet::new();
        for (combo, plan) in plans {
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
    match tried {
        Ok(()) => Ok(None),
        Err(f) if f.kind == Kind::Environment => Ok(Some(format!(
            "sysctls: checked for shape only; this kernel was not asked ({})",
            f.message
        ))),
        Err(f) => Err(f.into()),
    }
}

/// One run of the scenario as `check` shows it.
struct Run {
    label: String,
    name: String,
    queues: queues::Queues,
    backlog: i32,
    /// A program of the user's own is the server: it passes its own backlog.
    program: bool,
    knobs: Vec<(String, String)>,
    expectations: Vec<String>,
    preflight: Vec<preflight::Preflight>,
}

impl Run {
    fn of(combo: &Combination, plan: &RunPlan, release: &str, fd: u64, cpus: usize) -> Run {
        let mut knobs = settings::plan_knobs(plan);
        knobs.push(("link".into(), settings::describe_link(&plan.link)));
        if let Some(f) = &plan.flood {
            knobs.push((
                "SYN flood".into(),
                format!(
                    "{} spoofed SYNs at {}/s from {}",
                    f.count,
                    f.rate,
                    settings::seconds(f.start)
                ),
            ));
        }
        for (side, values) in [
            ("server", &plan.server.sysctl),
            ("client", &plan.client.sysctl),
        ] {
            if !values.is_empty() {
                let list: Vec<String> = values.iter().map(|(k, v)| format!("{k}={v}")).collect();
                knobs.push((format!("{side} sysctls"), list.join(", ")));
            }
        }
        Run {
            label: combo.label.clone(),
            name: plan.name.clone(),
            queues: plan.queues(release),
            backlog: plan.server.backlog,
            program: plan.server.program.is_some(),
            knobs,
            expectations: plan.expect.iter().map(|e| e.text.clone()).collect(),
            preflight: preflight::check(plan, fd, cpus),
        }
    }

    /// `listen(-1) with somaxconn 128 (set) → accept queue limit 128, holds 129; SYN queue holds 129`.
    fn listen(&self) -> String {
        let q = &self.queues;
        if self.program {
            return format!(
                "the program passes its own backlog to listen(), clamped to somaxconn {}: the run reports the limit it got",
                q.somaxconn
            );
        }
        format!(
            "listen({}) with somaxconn {}{} → accept queue limit {}, holds {}; SYN queue holds {}",
            self.backlog,
            q.somaxconn,
            if q.somaxconn_set {
                ""
            } else {
                " (namespace default)"
            },
            q.limit,
            q.accept_holds,
            q.syn_holds
        )
    }

    /// One line per run of a comparison: its label, its queues and its arrivals.
    fn line(&self) -> String {
        let arrivals = self.knob("arrivals");
        if self.program {
            return format!(
                "{:<28} server: {}; {}",
                self.label,
                self.knob("server"),
                if arrivals.is_empty() {
                    self.knob("client")
                } else {
                    arrivals
                }
            );
        }
        format!(
            "{:<28} accept queue holds {}, SYN queue {}; {}, accept {}",
            self.label,
            self.queues.accept_holds,
            self.queues.syn_holds,
            arrivals,
            self.knob("accept")
        )
    }

    fn knob(&self, name: &str) -> &str {
        self.knobs
            .iter()
            .find(|(k, _)| k == name)
            .map_or("", |(_, v)| v.as_str())
    }

    fn print(&self, out: &mut impl Write, many: bool) -> std::io::Result<()> {
        let title = if many {
            format!("run `{}`", self.label)
        } else {
            self.name.clone()
        };
        writeln!(out, "\n{title}: valid")?;
        writeln!(out, "  {}", self.listen())?;
        for (k, v) in &self.knobs {
            writeln!(out, "  {k:<18} {v}")?;
        }
        if self.expectations.is_empty() {
            writeln!(out, "  no expectations")?;
        } else {
            writeln!(out, "  expectations ({})", self.expectations.len())?;
            for e in &self.expectations {
                writeln!(out, "    {e}")?;
            }
        }
        for p in &self.preflight {
            let kind = p.kind();
            writeln!(out, "  {kind}: {p}")?;
        }
        Ok(())
    }

    fn json(&self) -> serde_json::Value {
        let q = &self.queues;
        serde_json::json!({
            "label": self.label,
            "name": self.name,
            "backlog": self.backlog,
            "somaxconn": q.somaxconn,
            "accept_queue_limit": q.limit,
            "accept_queue_capacity": q.accept_holds,
            "syn_queue_capacity": q.syn_holds,
            "settings": self
                .knobs
                .iter()
                .map(|(k, v)| (k.clone(), serde_json::Value::String(v.clone())))
                .collect::<serde_json::Map<_, _>>(),
            "expectations": self.expectations,
            "preflight": self.preflight.iter().map(|p| serde_json::json!({
                "warning": p.is_warning(),
                "text": p.to_string(),
            })).collect::<Vec<_>>(),
        })
    }
}
