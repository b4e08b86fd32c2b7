//! Scenario files: TOML that describes one run and the outcome it expects.
//!
//! Loading has two stages. First the text (the file, with every `--set KEY=VALUE` merged in) is
//! deserialized into [`ScenarioFile`], which mirrors the TOML one to one and rejects unknown keys
//! and wrong types with the key's name and line. Then [`crate::plan::RunPlan::from_scenario`]
//! checks values and interactions and resolves defaults. Nothing below the plan sees TOML.
//!
//! The schema, with defaults, is documented in `scenarios/README.md`.

mod bundled;
pub mod expect;
pub mod matrix;
mod modes;
mod set;
mod words;

pub use bundled::{server_path, BUNDLED, SERVERS};
pub(crate) use set::set_in;
pub use words::OneOrMany;

use std::collections::BTreeMap;
use std::path::Path;

use serde::Deserialize;

use crate::error::Failure;
pub use matrix::Combination;

/// The bundled scenario `backlog-lab run` uses when given no file.
pub const DEFAULT_SCENARIO: &str = include_str!("../../scenarios/envoy-somaxconn-128.toml");
pub const DEFAULT_SCENARIO_PATH: &str = "scenarios/envoy-somaxconn-128.toml";

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ScenarioFile {
    /// Name of the scenario; results go to `results/<name>/<timestamp>/`.
    pub name: Option<String>,
    /// One paragraph: what this reproduces.
    pub description: Option<String>,
    /// Which incident this reproduces (e.g. `seeds/000`).
    pub incident: Option<String>,
    /// The address family of the lab's hosts: `ipv4` (the default) or `ipv6`.
    pub family: Option<String>,
    /// How often counters and the listen queue are sampled, e.g. `10ms` (the default).
    #[serde(default, deserialize_with = "words::duration")]
    pub sample_interval: Option<String>,
    /// Record the kernel's drop reasons and TCP trace events into `drops.csv` (default true;
    /// needs root and tracefs, and is skipped with a note where they are missing).
    pub trace_drops: Option<bool>,
    /// The longest the lab waits, after the last connection ended, for the emulated link to
    /// deliver what it holds and the answers to come back, e.g. `5s` (default: 2 × link.rtt +
    /// 1 s with an emulated link, 0 on veth).
    #[serde(default, deserialize_with = "words::duration")]
    pub settle: Option<String>,
    #[serde(default)]
    pub server: ServerFile,
    #[serde(default)]
    pub client: ClientFile,
    /// The wire between the two hosts: RTT, jitter, loss.
    #[serde(default)]
    pub link: LinkFile,
    /// Raw SYNs from spoofed sources, alongside the storm.
    pub flood: Option<FloodFile>,
    /// Assertions over `summary.json` values: `"path" = "OP EXPR"`.
    #[serde(default)]
    pub expect: toml::Table,
    /// How `backlog-lab plan` sizes the backlog for this scenario.
    #[serde(default)]
    pub plan: PlanFile,
    /// Comparison axes: `"KEY" = [VALUE, ...]`; every combination runs with the same storm.
    #[serde(default)]
    pub matrix: toml::Table,
    /// Named comparison cases, each a set of overrides with expectations of its own.
    #[serde(default)]
    pub case: Vec<CaseFile>,
}

#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct LinkFile {
    #[serde(default, deserialize_with = "words::duration")]
    pub rtt: Option<String>,
    #[serde(default, deserialize_with = "words::duration")]
    pub jitter: Option<String>,
    /// Loss probability in both directions (0.01 = 1 %).
    pub loss: Option<f64>,
    pub loss_to_server: Option<f64>,
    pub loss_to_client: Option<f64>,
}

#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct FloodFile {
    /// Spoofed SYNs per second.
    pub rate: Option<f64>,
    /// How many SYNs in all.
    pub count: Option<u64>,
    /// When the flood starts, from the storm's time zero.
    #[serde(default, deserialize_with = "words::duration")]
    pub start: Option<String>,
}

/// The `[plan]` table: what `backlog-lab plan` must achieve, where it looks, how often it runs.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PlanFile {
    /// What the backlog must achieve, in the `[expect]` language (`"PATH OP EXPRESSION"`), one
    /// or a list; all must hold. Default: `counters.server.TcpExt.ListenDrops == 0`.
    pub target: Option<OneOrMany>,
    /// The backlogs searched, `[LOW, HIGH]` (default `[1, 65535]`).
    pub range: Option<Vec<i64>>,
    /// Runs per backlog tried; a backlog passes only if every one does (default 3).
    pub repetitions: Option<i64>,
}

#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CaseFile {
    /// Short name shown in the comparison table and used for the case's folder.
    pub label: String,
    /// Overrides, as with `--set`: `"server.backlog" = 32768`.
    #[serde(default)]
    pub set: toml::Table,
    /// Expectations for this case only, added to the scenario's `[expect]`.
    #[serde(default)]
    pub expect: toml::Table,
}

#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ServerFile {
    pub backlog: Option<i32>,
    pub accept: Option<AcceptKind>,
    pub accept_rate: Option<f64>,
    #[serde(default, deserialize_with = "words::windows")]
    pub pauses: Option<Vec<String>>,
    pub workers: Option<u32>,
    #[serde(default, deserialize_with = "words::duration")]
    pub service_time: Option<String>,
    pub port: Option<u16>,
    pub response_bytes: Option<u32>,
    #[serde(default)]
    pub sysctl: BTreeMap<String, SysctlValue>,
    /// A program of your own as the server: argv; `{addr}`, `{port}`, `{scenario_dir}` replaced.
    pub command: Option<Vec<String>>,
    /// Its environment, added to the lab's own.
    pub env: Option<BTreeMap<String, String>>,
    /// Its working directory (default: the scenario's folder).
    pub cwd: Option<String>,
    /// How long it may take to listen on `server.port` (default 10 s).
    #[serde(default, deserialize_with = "words::duration")]
    pub startup_timeout: Option<String>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum AcceptKind {
    Fast,
    Never,
    Rate,
    Pause,
    Workers,
}

#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ClientFile {
    pub arrival: Option<ArrivalKind>,
    pub rate: Option<f64>,
    pub connections: Option<u64>,
    #[serde(default, deserialize_with = "words::duration")]
    pub duration: Option<String>,
    pub burst_size: Option<u64>,
    #[serde(default, deserialize_with = "words::duration")]
    pub burst_interval: Option<String>,
    #[serde(default, deserialize_with = "words::duration")]
    pub connect_timeout: Option<String>,
    #[serde(default, deserialize_with = "words::duration")]
    pub response_timeout: Option<String>,
    pub seed: Option<u64>,
    /// Bytes the client sends after connecting; 0 makes the server speak first.
    pub request_bytes: Option<u32>,
    /// The most connections open at once; an attempt due beyond it is `not_started`.
    pub max_in_flight: Option<u64>,
    /// How each connection ends: `fin` (close) or `rst` (SO_LINGER 0).
    pub close: Option<crate::wire::Close>,
    /// A program of the user's own instead of the lab's storm (`wrk`, `h2load`), with its
    /// environment and working directory, as for `server.command`.
    pub command: Option<Vec<String>>,
    pub env: Option<BTreeMap<String, String>>,
    pub cwd: Option<String>,
    #[serde(default)]
    pub sysctl: BTreeMap<String, SysctlValue>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ArrivalKind {
    Constant,
    Poisson,
    Burst,
}

/// A sysctl value as written in TOML: a number or a string such as `"1024 65535"`.
#[derive(Debug, Clone, Deserialize)]
#[serde(untagged)]
pub enum SysctlValue {
    Int(i64),
    Text(String),
}

impl std::fmt::Display for SysctlValue {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            SysctlValue::Int(i) => write!(f, "{i}"),
            SysctlValue::Text(s) => f.write_str(s),
        }
    }
}

/// A scenario as loaded: the resolved TOML text (file plus overrides) and its parsed form.
#[derive(Debug, Clone)]
pub struct Loaded {
    /// Where it came from, for messages (`scenarios/x.toml` or `<bundled envoy-somaxconn-128>`).
    pub origin: String,
    /// The TOML that was actually run, `--set` values included. Saved as `scenario.toml`.
    pub text: String,
    pub file: ScenarioFile,
    /// File stem, the default scenario name.
    pub stem: String,
    /// The single-valued `--set`s, as given (`server.accept=never`): what makes this run
    /// differ from the scenario as written.
    pub overrides: Vec<String>,
    /// What the overrides changed beyond their own keys (keys of a replaced mode, dropped), for
    /// one `note:` line each.
    pub notes: Vec<String>,
}

/// Loads a scenario file (or a bundled one, or the default), applies `--set KEY=VALUE`
/// overrides, and expands a comparison (`--set KEY=A,B`, `[matrix]`, `[[case]]`) into its runs.
/// An ordinary scenario is one run.
pub fn load(path: Option<&Path>, sets: &[String]) -> Result<Vec<Combination>, Failure> {
    let (origin, text, stem) = source(path)?;
    let (loaded, axes) = load_text(&origin, &text, &stem, sets)?;
    let plain: Vec<&str> = sets
        .iter()
        .filter_map(|s| s.split_once('='))
        .map(|(k, _)| k.trim())
        .filter(|k| !axes.iter().any(|(a, _)| a == k))
        .collect();
    matrix::expand(&loaded, &axes, &plain)
}

/// Where the scenario text comes from: `(origin, text, stem)`.
fn source(path: Option<&Path>) -> Result<(String, String, String), Failure> {
    let bundled = path
        .filter(|p| !p.exists())
        .and_then(|p| p.to_str())
        .and_then(|name| {
            BUNDLED
                .iter()
                .find(|(n, _)| *n == name.trim_end_matches(".toml"))
        });
    Ok(match (path, bundled) {
        (_, Some((name, text))) => (
            format!("<bundled {name}>"),
            text.to_string(),
            name.to_string(),
        ),
        (Some(p), None) if !p.exists() && server_path(&p.to_string_lossy()).is_some() => {
            let file = server_path(&p.to_string_lossy()).unwrap_or_default();
            if !Path::new(&file).exists() {
                return Err(Failure::bad_input(format!(
                    "{} runs a real program that sits beside its scenario file: run it from the \
                     repository, as `backlog-lab run {file}`",
                    p.display()
                )));
            }
            return source(Some(Path::new(&file)));
        }
        (Some(p), None) => {
            let text = std::fs::read_to_string(p).map_err(|e| {
                Failure::bad_input(format!(
                    "cannot read scenario {}: {e}. Bundled scenarios are in scenarios/ \
                     (`backlog-lab list` shows them)",
                    p.display()
                ))
            })?;
            let stem = p
                .file_stem()
                .map(|s| s.to_string_lossy().into_owned())
                .unwrap_or_default();
            (p.display().to_string(), text, stem)
        }
        (None, None) => (
            format!("<bundled {DEFAULT_SCENARIO_PATH}>"),
            DEFAULT_SCENARIO.to_string(),
            "envoy-somaxconn-128".to_string(),
        ),
    })
}

pub use set::SetAxis;

/// Applies the single-valued `--set`s to `text` and parses it; returns the list-valued ones
/// (`KEY=A,B`) as comparison axes.
fn load_text(
    origin: &str,
    original: &str,
    stem: &str,
    sets: &[String],
) -> Result<(Loaded, Vec<SetAxis>), Failure> {
    let mut doc: toml::Table =
        toml::from_str(original).map_err(|e| describe(origin, original, &e))?;
    let before = doc.clone();
    let (given, axes) = set::apply(&mut doc, sets)?;
    let notes = modes::drop_replaced(&before, &mut doc, &given);
    let text = if sets.is_empty() {
        original.to_string()
    } else {
        toml::to_string(&doc).expect("a TOML table always serializes")
    };
    let file: ScenarioFile =
        toml::from_str(&text).map_err(|e| blame(origin, original, &text, &e, &given))?;
    Ok((
        Loaded {
            origin: origin.to_string(),
            text,
            file,
            stem: stem.to_string(),
            overrides: sets
                .iter()
                .filter_map(|s| s.split_once('='))
                .map(|(k, v)| (k.trim(), v.trim()))
                .filter(|(k, _)| !axes.iter().any(|(a, _)| a == k))
                .map(|(k, v)| format!("{k}={v}"))
                .collect(),
            notes,
        },
        axes,
    ))
}

/// The error of the scenario with its overrides, blamed on what caused it: a `--set` of the
/// faulty key is named as such (the merged text's line numbers mean nothing to the user); an
/// error of the file itself is given with the file's own line.
fn blame(
    origin: &str,
    original: &str,
    merged: &str,
    e: &toml::de::Error,
    given: &[String],
) -> Failure {
    let key = e.span().and_then(|span| key_at(merged, span.start));
    if let Some(key) = key.filter(|k| given.iter().any(|g| g == k)) {
        // On a command line a duration needs no quotes.
        let msg = words::plain(&e.message().replace('\n', " ")).replace(" (in quotes)", "");
        return Failure::bad_input(format!("--set {key}: {msg}"));
    }
    match toml::from_str::<ScenarioFile>(original) {
        Err(own) => describe(origin, original, &own),
        Ok(_) => describe(origin, merged, e),
    }
}

/// One line: `ORIGIN:LINE: key `server.backlog`: invalid type: ...`.
fn describe(origin: &str, text: &str, e: &toml::de::Error) -> Failure {
    let msg = words::plain(&e.message().replace('\n', " "));
    let Some(span) = e.span() else {
        return Failure::bad_input(format!("{origin}: {msg}"));
    };
    let line_no = text[..span.start.min(text.len())].matches('\n').count() + 1;
    let key = key_at(text, span.start);
    let key = key.map(|k| format!(" key `{k}`:")).unwrap_or_default();
    Failure::bad_input(format!("{origin}:{line_no}:{key} {msg}"))
}

/// The dotted key whose value sits at byte `pos`: the `[table]` header above it plus the key
/// before `=` on its line.
fn key_at(text: &str, pos: usize) -> Option<String> {
    let upto = &text[..pos.min(text.len())];
    let line_start = upto.rfind('\n').map_or(0, |i| i + 1);
    let line_end = text[line_start..]
        .find('\n')
        .map_or(text.len(), |i| line_start + i);
    let line = &text[line_start..line_end];
    let header = upto[..line_start]
        .lines()
        .rev()
        .find_map(|l| l.trim().strip_prefix('[').and_then(|l| l.strip_suffix(']')))
        .map(|h| h.trim().trim_matches('[').trim_matches(']').to_string());
    let (k, _) = line.split_once('=')?;
    let k = k.trim().trim_matches('"');
    if k.starts_with('[') || k.is_empty() {
        return header;
    }
    Some(match header {
        Some(h) => format!("{h}.{k}"),
        None => k.to_string(),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sets_merge_into_tables_and_keep_sysctl_names_whole() {
        let text = "[server]\nbacklog = 4\n";
        let sets = [
            "server.backlog=-1".to_string(),
            "server.sysctl.net.core.somaxconn=128".to_string(),
            "client.duration=3s".to_string(),
            "client.sysctl.net.ipv4.ip_local_port_range=1024 65535".to_string(),
        ];
        let (loaded, axes) = load_text("t", text, "t", &sets).unwrap();
        assert!(axes.is_empty());
        let f = loaded.file;
        assert_eq!(f.server.backlog, Some(-1));
        let (unset, _) =
            load_text("t", &loaded.text, "t", &["server.backlog=".to_string()]).unwrap();
        assert_eq!(unset.file.server.backlog, None);
        assert_eq!(f.server.sysctl["net.core.somaxconn"].to_string(), "128");
        assert_eq!(f.client.duration.as_deref(), Some("3s"));
        assert_eq!(
            f.client.sysctl["net.ipv4.ip_local_port_range"].to_string(),
            "1024 65535"
        );
    }

    #[test]
    fn unknown_key_error_names_the_key_and_line() {
        let err = toml::from_str::<ScenarioFile>("[server]\nbakclog = 4\n").unwrap_err();
        let f = describe("x.toml", "[server]\nbakclog = 4\n", &err);
        assert!(f.message.contains("x.toml:2"), "{}", f.message);
        assert!(f.message.contains("bakclog"), "{}", f.message);
        assert!(!f.message.contains('\n'));
    }

    #[test]
    fn wrong_type_error_names_the_dotted_key() {
        let text = "name = \"t\"\n[server]\nbacklog = \"lots\"\n";
        let err = toml::from_str::<ScenarioFile>(text).unwrap_err();
        let f = describe("x.toml", text, &err);
        assert!(f.message.contains("server.backlog"), "{}", f.message);
        assert!(f.message.contains(":3:"), "{}", f.message);
    }

    #[test]
    fn a_set_value_with_a_line_break_is_refused() {
        let Err(e) = load_text(
            "t",
            "",
            "t",
            &["server.backlog=5\n[client]\nrate = 9".into()],
        ) else {
            panic!("a line break must be refused");
        };
        assert!(
            e.message.contains("--set `server.backlog`"),
            "{}",
            e.message
        );
        assert!(e.message.contains("line break"), "{}", e.message);
    }

    #[test]
    fn bad_set_syntax_is_rejected() {
        assert!(load_text("t", "", "t", &["server.backlog".into()]).is_err());
        assert!(load_text("t", "", "t", &["server..x=1".into()]).is_err());
    }

    #[test]
    fn a_comma_makes_an_axis_unless_the_value_is_toml() {
        let sets = [
            "server.sysctl.net.ipv4.tcp_abort_on_overflow=0,1".to_string(),
            "server.pauses=[\"0.1s-0.2s\", \"1s-2s\"]".to_string(),
        ];
        let (loaded, axes) = load_text("t", "", "t", &sets).unwrap();
        assert_eq!(axes.len(), 1);
        assert_eq!(axes[0].0, "server.sysctl.net.ipv4.tcp_abort_on_overflow");
        assert_eq!(
            axes[0].1,
            vec![toml::Value::Integer(0), toml::Value::Integer(1)]
        );
        assert_eq!(loaded.file.server.pauses.map(|p| p.len()), Some(2));
    }
}
