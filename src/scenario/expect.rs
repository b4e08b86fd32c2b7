//! Expectations: the outcome a scenario asserts, checked against `summary.json` after the run.
//!
//! In a scenario, `[expect]` maps a summary path to a comparison:
//!
//! ```toml
//! [expect]
//! "listen.accept_queue_limit" = "== 128"
//! "counters.server.TcpExt.ListenOverflows" = "> 100"
//! "counters.server.TcpExt.ListenDrops" = ">= counters.server.TcpExt.ListenOverflows"
//! "outcomes.ok" = ">= 0.5 * connections"
//! ```
//!
//! The right side is a sum of terms (`+`/`-`), each a number, a path, or `NUMBER * path`.
//! A path walks the summary's JSON objects; keys may contain dots (`TcpExt.ListenOverflows`).
//! A counter that did not move is absent from the summary and reads as 0.

use serde::Serialize;
use serde_json::Value;

use crate::error::Failure;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Op {
    Eq,
    Ne,
    Lt,
    Le,
    Gt,
    Ge,
}

#[derive(Debug, Clone, PartialEq)]
enum Term {
    Num(f64),
    Path(f64, String),
}

/// One assertion, parsed.
#[derive(Debug, Clone)]
pub struct Expectation {
    pub text: String,
    lhs: String,
    op: Op,
    rhs: Vec<Term>,
}

/// The verdict on one expectation.
#[derive(Debug, Clone, Serialize)]
pub struct Verdict {
    /// The assertion as written: `counters.server.TcpExt.ListenOverflows > 100`.
    pub text: String,
    /// The left side's value in this run (null if the path does not exist).
    pub value: Option<f64>,
    /// The right side's value in this run.
    pub expected: Option<f64>,
    pub pass: bool,
}

/// Top-level summary keys an expectation may start with.
const ROOTS: &[&str] = &[
    "connections",
    "outcomes",
    "connect_latency_ms",
    "connect_latency_from_start_ms",
    "response_latency_ms",
    "schedule",
    "counters",
    "sysctl",
    "listen",
    "duration_s",
];

impl Expectation {
    /// Parses `path` and `condition` (`"> 100"`) from an `[expect]` entry.
    pub fn parse(path: &str, condition: &str) -> Result<Expectation, Failure> {
        let bad =
            |why: &str| Failure::bad_input(format!("expect.\"{path}\" = \"{condition}\": {why}"));
        check_root(path).map_err(|w| bad(&w))?;
        let c = condition.trim();
        let (op, rest) = [
            ("==", Op::Eq),
            ("!=", Op::Ne),
            ("<=", Op::Le),
            (">=", Op::Ge),
            ("<", Op::Lt),
            (">", Op::Gt),
        ]
        .iter()
        .find_map(|(s, op)| c.strip_prefix(s).map(|r| (*op, r)))
        .ok_or_else(|| bad("must start with one of == != < <= > >="))?;
        let rhs = parse_sum(rest).map_err(|w| bad(&w))?;
        Ok(Expectation {
            text: format!("{path} {c}"),
            lhs: path.to_string(),
            op,
            rhs,
        })
    }

    /// Evaluates against the summary JSON.
    pub fn check(&self, summary: &Value) -> Verdict {
        let value = lookup(summary, &self.lhs);
        let expected = self.rhs.iter().try_fold(0.0, |acc, t| {
            Some(
                acc + match t {
                    Term::Num(n) => *n,
                    Term::Path(k, p) => k * lookup(summary, p)?,
                },
            )
        });
        let pass = match (value, expected) {
            (Some(v), Some(e)) => match self.op {
                Op::Eq => (v - e).abs() < 1e-9,
                Op::Ne => (v - e).abs() >= 1e-9,
                Op::Lt => v < e,
                Op::Le => v <= e,
                Op::Gt => v > e,
                Op::Ge => v >= e,
            },
            _ => false,
        };
        Verdict {
            text: self.text.clone(),
            value,
            expected,
            pass,
        }
    }
}

fn check_root(path: &str) -> Result<(), String> {
    let root = path.split('.').next().unwrap_or("");
    if ROOTS.contains(&root) {
        Ok(())
    } else {
        Err(format!(
            "`{root}` is not a summary value; use one of: {}",
            ROOTS.join(", ")
        ))
    }
}

fn parse_sum(s: &str) -> Result<Vec<Term>, String> {
    let s = s.trim();
    if s.is_empty() {
        return Err("nothing to compare with".into());
    }
    // Tokens are separated by spaces; a lone `+` or `-` sets the sign of the next term.
    let mut terms = Vec::new();
    let mut sign = 1.0;
    for tok in s.split_whitespace() {
        match tok {
            "+" => sign = 1.0,
            "-" => sign = -1.0,
            _ => {
                terms.push((sign, tok.to_string()));
                sign = 1.0;
            }
        }
    }
    // Re-join `N * path` (three tokens) into one term.
    let mut out = Vec::new();
    let mut i = 0;
    while i < terms.len() {
        let (sign, tok) = &terms[i];
        if i + 2 < terms.len() && terms[i + 1].1 == "*" {
            let k: f64 = tok
                .parse()
                .map_err(|_| format!("`{tok}` before `*` is not a number"))?;
            let p = &terms[i + 2].1;
            check_root(p)?;
            out.push(Term::Path(sign * k, p.clone()));
            i += 3;
        } else if let Ok(n) = tok.parse::<f64>() {
            out.push(Term::Num(sign * n));
            i += 1;
        } else {
            check_root(tok)?;
            out.push(Term::Path(*sign, tok.clone()));
            i += 1;
        }
    }
    Ok(out)
}

/// Walks `path` through nested objects, matching the longest key at each level, so that
/// `counters.server.TcpExt.ListenOverflows` finds the key `TcpExt.ListenOverflows`.
fn lookup(v: &Value, path: &str) -> Option<f64> {
    let mut cur = v;
    let mut rest = path;
    let mut in_counters = false;
    loop {
        if rest.is_empty() {
            return cur
                .as_f64()
                .or_else(|| cur.as_str().and_then(|s| s.parse().ok()));
        }
        let obj = cur.as_object()?;
        let key = obj
            .keys()
            .filter(|k| rest == k.as_str() || rest.starts_with(&format!("{k}.")))
            .max_by_key(|k| k.len());
        match key {
            Some(k) => {
                in_counters |= k == "counters";
                rest = rest[k.len()..].trim_start_matches('.');
                cur = &obj[k];
            }
            // Counters that did not move are left out of the summary: they read as zero.
            None if in_counters && rest.contains('.') => return Some(0.0),
            None => return None,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn summary() -> Value {
        json!({
            "connections": 100,
            "outcomes": {"ok": 60, "connect_timeout": 40},
            "counters": {"server": {"TcpExt.ListenOverflows": 12, "TcpExt.ListenDrops": 12}, "client": {}},
            "listen": {"accept_queue_limit": 128},
            "sysctl": {"server": {"net.core.somaxconn": "128"}}
        })
    }

    fn check(path: &str, cond: &str) -> bool {
        Expectation::parse(path, cond)
            .unwrap()
            .check(&summary())
            .pass
    }

    #[test]
    fn compares_numbers_and_paths() {
        assert!(check("listen.accept_queue_limit", "== 128"));
        assert!(!check("listen.accept_queue_limit", "!= 128"));
        assert!(check(
            "counters.server.TcpExt.ListenDrops",
            ">= counters.server.TcpExt.ListenOverflows"
        ));
        assert!(check("outcomes.ok", ">= 0.5 * connections"));
        assert!(check(
            "outcomes.ok",
            "== connections - outcomes.connect_timeout"
        ));
        assert!(check("sysctl.server.net.core.somaxconn", "== 128"));
        assert!(!check("outcomes.ok", "> 60"));
    }

    #[test]
    fn counters_that_did_not_move_read_zero() {
        assert!(check("counters.server.TcpExt.TCPBacklogDrop", "== 0"));
        assert!(check("counters.client.Tcp.RetransSegs", "== 0"));
    }

    #[test]
    fn missing_values_fail_instead_of_passing() {
        let v = Expectation::parse("listen.nothing", "== 0")
            .unwrap()
            .check(&summary());
        assert!(!v.pass);
        assert_eq!(v.value, None);
    }

    #[test]
    fn bad_expectations_are_bad_input() {
        assert!(Expectation::parse("outcomes.ok", "about 5").is_err());
        assert!(Expectation::parse("bogus.ok", "> 1").is_err());
        assert!(Expectation::parse("outcomes.ok", "> x * connections").is_err());
        assert!(Expectation::parse("outcomes.ok", ">").is_err());
    }
}
