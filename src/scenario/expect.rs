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

use serde_json::Value;

use crate::error::Failure;
use crate::record::Verdict;

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

/// Paths whose last part is a name the kernel defines: counters and sysctls.
const OPEN: &[&str] = &[
    "counters.server.",
    "counters.client.",
    "sysctl.server.",
    "sysctl.client.",
    "drops.by_reason.",
    "drops.by_function.",
    "drops.resets_sent.",
];

impl Expectation {
    /// Parses `path` and `condition` (`"> 100"`) from an `[expect]` entry.
    pub fn parse(path: &str, condition: &str) -> Result<Expectation, Failure> {
        let bad =
            |why: &str| Failure::bad_input(format!("expect.\"{path}\" = \"{condition}\": {why}"));
        check_path(path).map_err(|w| bad(&w))?;
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

    /// Whether this is `path == 0`: the run asserts that the value stays zero (e.g. a fix that
    /// must not overflow).
    pub fn asserts_zero(&self, path: &str) -> bool {
        self.lhs == path && self.op == Op::Eq && self.rhs == [Term::Num(0.0)]
    }

    /// Every summary path the assertion reads, the left side first.
    pub fn paths(&self) -> impl Iterator<Item = &str> {
        std::iter::once(self.lhs.as_str()).chain(self.rhs.iter().filter_map(|t| match t {
            Term::Path(_, p) => Some(p.as_str()),
            Term::Num(_) => None,
        }))
    }

    /// Parses a whole assertion, `path OP expression` (`counters.server.TcpExt.ListenDrops ==
    /// 0`), as `--target` and `[plan] target` write it.
    pub fn parse_line(line: &str) -> Result<Expectation, Failure> {
        let line = line.trim();
        let at = line.find(['=', '!', '<', '>']).ok_or_else(|| {
            Failure::bad_input(format!(
                "target \"{line}\": write PATH OP EXPRESSION, e.g. \
                 \"counters.server.TcpExt.ListenDrops == 0\" or \"connect_latency_ms.p99 <= 200\""
            ))
        })?;
        let (path, condition) = line.split_at(at);
        Expectation::parse(path.trim(), condition).map_err(|mut e| {
            e.message = format!("target \"{line}\": {}", e.message);
            e
        })
    }

    /// Whether the assertion reads any value under `prefix` (e.g. `drops.`), on either side.
    pub fn reads(&self, prefix: &str) -> bool {
        self.lhs.starts_with(prefix)
            || self
                .rhs
                .iter()
                .any(|t| matches!(t, Term::Path(_, p) if p.starts_with(prefix)))
    }

    /// Evaluates against the summary JSON; `known` says whether a counter name
    /// (`TcpExt.ListenDrops`) or a drop-reason path (`drops.by_reason.NO_SOCKET`) exists on this
    /// kernel (so that one that did not move or never happened reads 0).
    pub fn check(&self, summary: &Value, known: &dyn Fn(&str) -> bool) -> Verdict {
        let value = lookup(summary, &self.lhs, known);
        let expected = self.rhs.iter().try_fold(0.0, |acc, t| {
            Some(
                acc + match t {
                    Term::Num(n) => *n,
                    Term::Path(k, p) => k * lookup(summary, p, known)?,
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

/// Checks a path against the summary's structure, so a typo is bad input before the run rather
/// than a failed expectation after it. Counter and sysctl names are checked at the end of the run.
fn check_path(path: &str) -> Result<(), String> {
    if OPEN
        .iter()
        .any(|p| path.len() > p.len() && path.starts_with(p))
    {
        return Ok(());
    }
    let shape = serde_json::to_value(crate::record::summary::Summary::shape())
        .expect("a summary serializes");
    if walk(&shape, path).is_some() {
        return Ok(());
    }
    let roots: Vec<&str> = shape
        .as_object()
        .map(|o| o.keys().map(String::as_str).collect())
        .unwrap_or_default();
    Err(format!(
        "`{path}` is not a summary value (summary.json has: {})",
        roots.join(", ")
    ))
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
            check_path(p)?;
            out.push(Term::Path(sign * k, p.clone()));
            i += 3;
        } else if let Ok(n) = tok.parse::<f64>() {
            out.push(Term::Num(sign * n));
            i += 1;
        } else {
            check_path(tok)?;
            out.push(Term::Path(*sign, tok.clone()));
            i += 1;
        }
    }
    Ok(out)
}

/// Walks `path` through nested objects, matching the longest key at each level, so that
/// `sysctl.server.net.core.somaxconn` finds the key `net.core.somaxconn`.
fn walk<'a>(v: &'a Value, path: &str) -> Option<&'a Value> {
    let mut cur = v;
    let mut rest = path;
    while !rest.is_empty() {
        let obj = cur.as_object()?;
        let key = obj
            .keys()
            .filter(|k| rest == k.as_str() || rest.starts_with(&format!("{k}.")))
            .max_by_key(|k| k.len())?;
        rest = rest[key.len()..].trim_start_matches('.');
        cur = &obj[key];
    }
    Some(cur)
}

/// The number at `path`. A counter absent from the summary did not move and reads 0, but only if
/// the kernel has a counter of that name (`known`): a misspelt counter is missing, not zero. Drop
/// reasons likewise.
fn lookup(v: &Value, path: &str, known: &dyn Fn(&str) -> bool) -> Option<f64> {
    let counter = [
        ("server", "counters.server."),
        ("client", "counters.client."),
    ]
    .iter()
    .find_map(|(ns, prefix)| path.strip_prefix(prefix).map(|name| (*ns, name)));
    if let Some((ns, name)) = counter {
        return match v["counters"][ns].get(name) {
            Some(n) => n.as_f64(),
            None => known(name).then_some(0.0),
        };
    }
    if let Some(reason) = path.strip_prefix("drops.by_reason.") {
        // A reason that never happened is absent and reads 0, if the kernel knows the name.
        return match v["drops"]["by_reason"].get(reason) {
            Some(n) => n.as_f64(),
            None => known(path).then_some(0.0),
        };
    }
    let cur = walk(v, path)?;
    cur.as_f64()
        .or_else(|| cur.as_bool().map(|b| f64::from(u8::from(b))))
        .or_else(|| cur.as_str().and_then(|s| s.parse().ok()))
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
            "sysctl": {"server": {"net.core.somaxconn": "128"}},
            "drops": {"recorded": true, "by_reason": {"TCP_LISTEN_OVERFLOW": 12}}
        })
    }

    fn known(name: &str) -> bool {
        [
            "TcpExt.ListenOverflows",
            "TcpExt.TCPBacklogDrop",
            "Tcp.RetransSegs",
            "drops.by_reason.TCP_LISTEN_OVERFLOW",
            "drops.by_reason.NO_SOCKET",
        ]
        .contains(&name)
    }

    fn check(path: &str, cond: &str) -> bool {
        Expectation::parse(path, cond)
            .unwrap()
            .check(&summary(), &known)
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
    fn drop_reasons_that_never_happened_read_zero_and_misspelt_ones_fail() {
        assert!(check(
            "drops.by_reason.TCP_LISTEN_OVERFLOW",
            "== counters.server.TcpExt.ListenOverflows"
        ));
        assert!(check("drops.by_reason.NO_SOCKET", "== 0"));
        assert!(!check("drops.by_reason.NO_SOKET", "== 0"));
        assert!(Expectation::parse("drops.by_reason.NO_SOCKET", "== 0").is_ok());
    }

    #[test]
    fn a_zero_assertion_is_recognized() {
        let e = Expectation::parse("counters.server.TcpExt.ListenOverflows", "== 0").unwrap();
        assert!(e.asserts_zero("counters.server.TcpExt.ListenOverflows"));
        let e = Expectation::parse("counters.server.TcpExt.ListenOverflows", "> 0").unwrap();
        assert!(!e.asserts_zero("counters.server.TcpExt.ListenOverflows"));
    }

    #[test]
    fn counters_that_did_not_move_read_zero() {
        assert!(check("counters.server.TcpExt.TCPBacklogDrop", "== 0"));
        assert!(check("counters.client.Tcp.RetransSegs", "== 0"));
    }

    #[test]
    fn misspelt_counters_fail_instead_of_reading_zero() {
        let v = Expectation::parse("counters.server.TcpExt.ListenOverflow", "== 0")
            .unwrap()
            .check(&summary(), &known);
        assert!(
            !v.pass,
            "a counter the kernel does not have must not read 0"
        );
        assert_eq!(v.value, None);
    }

    #[test]
    fn paths_are_checked_against_the_summary_shape() {
        assert!(Expectation::parse("listen.nothing", "== 0").is_err());
        assert!(Expectation::parse("outcomes.okay", "> 0").is_err());
        assert!(Expectation::parse("connect_latency_ms.p95", "> 0").is_err());
        assert!(Expectation::parse("retransmits.total", "> 0").is_ok());
        assert!(Expectation::parse("schedule.lag_ms.p99", "< 5").is_ok());
        assert!(Expectation::parse("outcomes.ok", "> listen.nothing").is_err());
    }

    #[test]
    fn bad_expectations_are_bad_input() {
        assert!(Expectation::parse("outcomes.ok", "about 5").is_err());
        assert!(Expectation::parse("bogus.ok", "> 1").is_err());
        assert!(Expectation::parse("outcomes.ok", "> x * connections").is_err());
        assert!(Expectation::parse("outcomes.ok", ">").is_err());
    }
}
