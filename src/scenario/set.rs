//! `--set KEY=VALUE`: one override of a scenario key by its dotted TOML path, or with a list
//! (`KEY=A,B`) a comparison axis. The last `--set` of a key wins.

use crate::error::Failure;

/// A `--set` axis: a key and the values a comparison gives it.
pub type SetAxis = (String, Vec<toml::Value>);

/// Applies the single-valued `sets` to `doc`; returns the keys they gave and the list-valued
/// ones (`KEY=A,B`) as comparison axes.
pub(super) fn apply(
    doc: &mut toml::Table,
    sets: &[String],
) -> Result<(Vec<String>, Vec<SetAxis>), Failure> {
    let mut given = Vec::new();
    let mut axes: Vec<SetAxis> = Vec::new();
    for set in sets {
        let (key, raw) = set.split_once('=').ok_or_else(|| {
            Failure::bad_input(format!(
                "--set `{set}`: expected KEY=VALUE, e.g. --set server.backlog=511"
            ))
        })?;
        let (key, raw) = (key.trim(), raw.trim());
        // `v = {raw}` is parsed as TOML: a line break would let the rest of the value become
        // more TOML (or be dropped) without a word.
        if raw.contains(['\n', '\r']) {
            return Err(Failure::bad_input(format!(
                "--set `{key}`: the value has a line break; give one line (a list is A,B,C)"
            )));
        }
        // The last `--set` of a key wins, whether it made an axis or a value.
        axes.retain(|(k, _)| k != key);
        if raw.is_empty() {
            set_in(doc, key, None)?; // `--set KEY=` unsets KEY
        } else if let Some(values) = list_value(raw) {
            axes.push((key.to_string(), values));
        } else {
            set_in(doc, key, Some(parse_value(raw)))?;
        }
        given.push(key.to_string());
    }
    Ok((given, axes))
}

/// `0,1` or `1ms, 20ms` → a comparison axis; a value that is valid TOML as a whole (a quoted
/// string or an array) stays one value.
fn list_value(raw: &str) -> Option<Vec<toml::Value>> {
    if !raw.contains(',') || toml::from_str::<toml::Table>(&format!("v = {raw}")).is_ok() {
        return None;
    }
    Some(raw.split(',').map(|v| parse_value(v.trim())).collect())
}

/// Sets (or with `None` removes) the value at a dotted scenario key, creating tables on the way.
pub(crate) fn set_in(
    doc: &mut toml::Table,
    key: &str,
    value: Option<toml::Value>,
) -> Result<(), Failure> {
    let path = split_key(key);
    if path.iter().any(|p| p.is_empty()) {
        return Err(Failure::bad_input(format!("`{key}`: empty key segment")));
    }
    let mut table = doc;
    for seg in &path[..path.len() - 1] {
        let entry = table
            .entry(seg.to_string())
            .or_insert_with(|| toml::Value::Table(toml::Table::new()));
        table = entry.as_table_mut().ok_or_else(|| {
            Failure::bad_input(format!("`{key}`: `{seg}` is a value, not a table"))
        })?;
    }
    let last = path[path.len() - 1].to_string();
    match value {
        None => {
            table.remove(&last);
        }
        Some(v) => {
            table.insert(last, v);
        }
    }
    Ok(())
}

/// `server.sysctl.net.core.somaxconn` → `["server", "sysctl", "net.core.somaxconn"]`; likewise the
/// key of an `expect.<summary path>` keeps its dots.
fn split_key(key: &str) -> Vec<&str> {
    for prefix in ["server.sysctl.", "client.sysctl."] {
        if let Some(rest) = key.strip_prefix(prefix) {
            return vec![&prefix[..6], "sysctl", rest];
        }
    }
    if let Some(rest) = key.strip_prefix("expect.") {
        return vec!["expect", rest];
    }
    key.split('.').collect()
}

/// A `--set` value: a TOML literal if it is one (`-1`, `0.5`, `true`, `"x"`), else a string (`3s`).
fn parse_value(raw: &str) -> toml::Value {
    toml::from_str::<toml::Table>(&format!("v = {raw}"))
        .ok()
        .and_then(|mut t| t.remove("v"))
        .unwrap_or_else(|| toml::Value::String(raw.to_string()))
}
