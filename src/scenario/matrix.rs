//! Comparisons: one scenario, several settings, the same storm and seed.
//!
//! A comparison has axes. An axis comes from a list value in `--set` (`KEY=0,1`), from a key of
//! the scenario's `[matrix]` table (`"KEY" = [0, 1]`), or from its `[[case]]` entries (each a
//! label, a set of overrides and expectations of its own: the way to compare settings that
//! change together, like seed 004's tuned kernel). Every combination of one value per axis is a
//! run. Each run's scenario is an ordinary single-run scenario (no `[matrix]`, no `[[case]]`),
//! saved with its results, so any one of them can be rerun alone.

use super::{describe, set_in, CaseFile, Loaded, ScenarioFile};
use crate::error::Failure;

/// One axis of a comparison.
#[derive(Debug, Clone)]
enum Axis {
    /// A scenario key and the values it takes.
    Key {
        key: String,
        values: Vec<toml::Value>,
    },
    /// The scenario's `[[case]]` list.
    Cases(Vec<CaseFile>),
}

/// One run of a comparison.
#[derive(Debug, Clone)]
pub struct Combination {
    /// Short and unique, e.g. `tcp_abort_on_overflow=1` or `tuned`.
    pub label: String,
    /// The settings this run differs by: (scenario key, value) in axis order; a case adds
    /// `("case", label)` and then its own overrides.
    pub settings: Vec<(String, String)>,
    /// The single-run scenario.
    pub loaded: Loaded,
}

/// Expands `loaded` (whose text still holds `[matrix]` and `[[case]]`) and the list-valued
/// `--set` axes into its runs. A scenario with no axes is one run, labelled with its name.
/// `plain_sets`: keys given a single value with `--set`; a case may not set one of those, nor an
/// axis key (the case would silently win).
pub fn expand(
    loaded: &Loaded,
    cli_axes: &[(String, Vec<toml::Value>)],
    plain_sets: &[&str],
) -> Result<Vec<Combination>, Failure> {
    let mut doc: toml::Table =
        toml::from_str(&loaded.text).map_err(|e| describe(&loaded.origin, &loaded.text, &e))?;
    let matrix = doc.remove("matrix");
    doc.remove("case");
    let mut axes = matrix_axes(loaded, matrix)?;
    // A `--set` axis replaces the file's axis for the same key.
    for (key, values) in cli_axes {
        axes.retain(|a| !matches!(a, Axis::Key { key: k, .. } if k == key));
        axes.push(Axis::Key {
            key: key.clone(),
            values: values.clone(),
        });
    }
    if !loaded.file.case.is_empty() {
        check_cases(loaded, &axes, plain_sets)?;
        axes.push(Axis::Cases(loaded.file.case.clone()));
    }
    // Counted before anything is built: 5 axes of 30 values are 24 million combinations.
    let count = axes
        .iter()
        .try_fold(1usize, |n, a| n.checked_mul(a.len()))
        .unwrap_or(usize::MAX);
    if count > MAX_RUNS {
        return Err(Failure::bad_input(format!(
            "{}: {count} combinations; at most {MAX_RUNS} per comparison",
            loaded.origin
        )));
    }
    let name = doc
        .get("name")
        .and_then(|v| v.as_str())
        .map(str::to_string)
        .unwrap_or_else(|| loaded.stem.clone());
    combinations(&axes)
        .into_iter()
        .map(|choices| combination(loaded, &doc, &name, &choices, plain_sets))
        .collect()
}

/// The axes of the scenario's own `[matrix]` table, each a key and a non-empty list of values.
fn matrix_axes(loaded: &Loaded, matrix: Option<toml::Value>) -> Result<Vec<Axis>, Failure> {
    let mut axes = Vec::new();
    if let Some(toml::Value::Table(m)) = matrix {
        for (key, values) in m {
            let values = match values {
                toml::Value::Array(a) if !a.is_empty() => a,
                _ => {
                    return Err(Failure::bad_input(format!(
                        "{}: matrix.\"{key}\": give a list of values, e.g. [0, 1]",
                        loaded.origin
                    )))
                }
            };
            axes.push(Axis::Key { key, values });
        }
    }
    Ok(axes)
}

/// Every `[[case]]` has a label of its own, and sets no key that an axis or a `--set` also
/// sets (the case would win unseen).
fn check_cases(loaded: &Loaded, axes: &[Axis], plain_sets: &[&str]) -> Result<(), Failure> {
    let mut seen = std::collections::BTreeSet::new();
    for c in &loaded.file.case {
        if c.label.trim().is_empty() || !seen.insert(c.label.clone()) {
            return Err(Failure::bad_input(format!(
                "{}: every [[case]] needs a label of its own (`{}` is empty or repeated)",
                loaded.origin, c.label
            )));
        }
    }
    for c in &loaded.file.case {
        for (key, _) in flatten(&c.set) {
            let axis = axes
                .iter()
                .any(|a| matches!(a, Axis::Key { key: k, .. } if *k == key));
            if axis || plain_sets.contains(&key.as_str()) {
                return Err(Failure::bad_input(format!(
                    "{}: case `{}` sets `{key}`, which {}; the case would win unseen. Vary \
                     it in the cases themselves, or drop them with --set case=",
                    loaded.origin,
                    c.label,
                    if axis {
                        "is also a comparison axis"
                    } else {
                        "is also given with --set"
                    }
                )));
            }
        }
    }
    Ok(())
}

/// Every combination of one choice per axis, in axis order (the last axis varies fastest).
fn combinations(axes: &[Axis]) -> Vec<Vec<Choice>> {
    let mut combos: Vec<Vec<Choice>> = vec![Vec::new()];
    for axis in axes {
        let choices: Vec<Choice> = match axis {
            Axis::Key { key, values } => values
                .iter()
                .map(|v| Choice::Key(key.clone(), v.clone()))
                .collect(),
            Axis::Cases(cases) => cases.iter().cloned().map(Choice::Case).collect(),
        };
        combos = combos
            .into_iter()
            .flat_map(|prefix| {
                choices.iter().map(move |c| {
                    let mut p = prefix.clone();
                    p.push(c.clone());
                    p
                })
            })
            .collect();
    }
    combos
}

impl Axis {
    /// How many values the axis takes.
    fn len(&self) -> usize {
        match self {
            Axis::Key { values, .. } => values.len(),
            Axis::Cases(cases) => cases.len(),
        }
    }
}

/// Most runs one comparison may have: each is a whole storm.
const MAX_RUNS: usize = 64;

#[derive(Debug, Clone)]
enum Choice {
    Key(String, toml::Value),
    Case(CaseFile),
}

fn combination(
    loaded: &Loaded,
    base: &toml::Table,
    name: &str,
    choices: &[Choice],
    plain_sets: &[&str],
) -> Result<Combination, Failure> {
    let mut doc = base.clone();
    let mut labels = Vec::new();
    let mut settings = Vec::new();
    let mut given: Vec<String> = plain_sets.iter().map(|k| k.to_string()).collect();
    for choice in choices {
        match choice {
            Choice::Key(key, value) => {
                set_in(&mut doc, key, Some(value.clone()))?;
                given.push(key.clone());
                let shown = display(value);
                labels.push(format!("{}={shown}", short_key(key)));
                settings.push((key.clone(), shown));
            }
            Choice::Case(case) => {
                settings.push(("case".to_string(), case.label.clone()));
                for (key, value) in flatten(&case.set) {
                    set_in(&mut doc, &key, Some(value.clone()))?;
                    given.push(key.clone());
                    settings.push((key, display(&value)));
                }
                let expect = doc
                    .entry("expect")
                    .or_insert_with(|| toml::Value::Table(toml::Table::new()));
                let expect = expect.as_table_mut().ok_or_else(|| {
                    Failure::bad_input(format!("{}: `expect` must be a table", loaded.origin))
                })?;
                for (path, cond) in &case.expect {
                    merge_condition(expect, path, cond.clone());
                }
                labels.push(case.label.clone());
            }
        }
    }
    let label = if labels.is_empty() {
        name.to_string()
    } else {
        labels.join(" ")
    };
    let mut notes = loaded.notes.clone();
    for note in super::modes::drop_replaced(base, &mut doc, &given) {
        notes.push(format!("run `{label}`: {note}"));
    }
    let text = toml::to_string(&doc).expect("a TOML table always serializes");
    let file: ScenarioFile = toml::from_str(&text)
        .map_err(|e| describe(&format!("{} [{label}]", loaded.origin), &text, &e))?;
    Ok(Combination {
        label,
        settings,
        loaded: Loaded {
            origin: loaded.origin.clone(),
            text,
            file,
            stem: loaded.stem.clone(),
            overrides: loaded.overrides.clone(),
            notes,
        },
    })
}

/// `server.sysctl.net.ipv4.tcp_abort_on_overflow` → `tcp_abort_on_overflow`; `link.rtt` → `rtt`;
/// a client sysctl keeps `client.` so it never reads like the server's.
fn short_key(key: &str) -> String {
    let last = key.rsplit('.').next().unwrap_or(key);
    if key.starts_with("client.sysctl.") {
        format!("client.{last}")
    } else {
        last.to_string()
    }
}

fn display(v: &toml::Value) -> String {
    match v {
        toml::Value::String(s) => s.clone(),
        other => other.to_string(),
    }
}

/// `{ "server.backlog" = 1 }` and `{ server = { backlog = 1 } }` both → `("server.backlog", 1)`.
fn flatten(t: &toml::Table) -> Vec<(String, toml::Value)> {
    let mut out = Vec::new();
    for (k, v) in t {
        match v {
            toml::Value::Table(inner) => out.extend(
                flatten(inner)
                    .into_iter()
                    .map(|(ik, iv)| (format!("{k}.{ik}"), iv)),
            ),
            other => out.push((k.clone(), other.clone())),
        }
    }
    out
}

/// Adds a case's condition to the scenario's own conditions on the same path (both apply).
fn merge_condition(expect: &mut toml::Table, path: &str, cond: toml::Value) {
    let as_list = |v: toml::Value| match v {
        toml::Value::Array(a) => a,
        one => vec![one],
    };
    let merged = match expect.remove(path) {
        None => cond,
        Some(old) => {
            let mut all = as_list(old);
            all.extend(as_list(cond));
            toml::Value::Array(all)
        }
    };
    expect.insert(path.to_string(), merged);
}

#[cfg(test)]
mod tests {
    use super::super::load_text;
    use super::*;

    fn combos(text: &str, sets: &[&str]) -> Result<Vec<Combination>, Failure> {
        let sets: Vec<String> = sets.iter().map(|s| s.to_string()).collect();
        let (loaded, axes) = load_text("t.toml", text, "t", &sets)?;
        let plain: Vec<&str> = sets
            .iter()
            .filter_map(|s| s.split_once('=').map(|(k, _)| k))
            .filter(|k| !axes.iter().any(|(a, _)| a == k))
            .collect();
        expand(&loaded, &axes, &plain)
    }

    #[test]
    fn no_axes_is_one_run_named_after_the_scenario() {
        let c = combos("name = \"x\"\n[server]\nbacklog = 4\n", &[]).unwrap();
        assert_eq!(c.len(), 1);
        assert_eq!(c[0].label, "x");
        assert!(c[0].settings.is_empty());
    }

    #[test]
    fn list_sets_and_matrix_multiply_and_cases_add_expectations() {
        let text = r#"
[matrix]
"server.sysctl.net.ipv4.tcp_abort_on_overflow" = [0, 1]
[expect]
"outcomes.ok" = "> 0"
[[case]]
label = "small"
set = { "server.backlog" = 4 }
expect = { "outcomes.ok" = "< 100" }
[[case]]
label = "tuned"
[case.set.server]
backlog = 32768
"#;
        let c = combos(text, &["link.rtt=1ms,20ms"]).unwrap();
        assert_eq!(c.len(), 8);
        let labels: Vec<&str> = c.iter().map(|c| c.label.as_str()).collect();
        assert_eq!(labels[0], "tcp_abort_on_overflow=0 rtt=1ms small");
        assert_eq!(labels[7], "tcp_abort_on_overflow=1 rtt=20ms tuned");
        let small = &c[0].loaded.file;
        assert_eq!(small.server.backlog, Some(4));
        assert_eq!(small.link.rtt.as_deref(), Some("1ms"));
        assert!(small.matrix.is_empty() && small.case.is_empty());
        assert_eq!(
            small.expect["outcomes.ok"].as_array().map(|a| a.len()),
            Some(2)
        );
        assert_eq!(c[7].loaded.file.server.backlog, Some(32768));
        assert_eq!(c[7].loaded.file.expect["outcomes.ok"].as_str(), Some("> 0"));
        assert_eq!(
            c[7].loaded.file.server.sysctl["net.ipv4.tcp_abort_on_overflow"].to_string(),
            "1"
        );
    }

    #[test]
    fn a_set_axis_replaces_the_matrix_axis_of_the_same_key() {
        let text = "[matrix]\n\"server.backlog\" = [1, 2, 3]\n";
        let c = combos(text, &["server.backlog=7,8"]).unwrap();
        assert_eq!(c.len(), 2);
        assert_eq!(c[1].loaded.file.server.backlog, Some(8));
    }

    #[test]
    fn a_case_may_not_set_an_axis_or_a_set_key_but_the_last_set_wins() {
        let text = "[[case]]\nlabel = \"a\"\nset = { \"server.backlog\" = 4 }\n";
        let err = combos(text, &["server.backlog=1,2"]).unwrap_err();
        assert!(err.message.contains("comparison axis"), "{}", err.message);
        let err = combos(text, &["server.backlog=8"]).unwrap_err();
        assert!(err.message.contains("--set"), "{}", err.message);
        let c = combos("", &["server.backlog=1,2", "server.backlog=3"]).unwrap();
        assert_eq!(c.len(), 1);
        assert_eq!(c[0].loaded.file.server.backlog, Some(3));
        let c = combos(
            "[server]\nbacklog = 5\n",
            &["server.backlog=1,2", "server.backlog="],
        )
        .unwrap();
        assert_eq!((c.len(), c[0].loaded.file.server.backlog), (1, None));
    }

    #[test]
    fn bad_axes_are_rejected() {
        assert!(combos("[matrix]\n\"server.backlog\" = 4\n", &[]).is_err());
        assert!(combos("[[case]]\nlabel = \"a\"\n[[case]]\nlabel = \"a\"\n", &[]).is_err());
        assert!(combos("[matrix]\n\"server.bakclog\" = [1, 2]\n", &[]).is_err());
    }
}
