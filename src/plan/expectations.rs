//! The `[expect]` table: every key's condition, or list of conditions, parsed into
//! [`Expectation`]s in table order (the first bad one wins).

use super::values::bad;
use crate::error::Failure;
use crate::scenario::expect::Expectation;

pub(super) fn parse(table: &toml::Table) -> Result<Vec<Expectation>, Failure> {
    let mut expect = Vec::new();
    for (path, conds) in table {
        // One condition ("> 0") or several (["> 0", "< 10"]) on the same value.
        let conds: Vec<&toml::Value> = match conds {
            toml::Value::Array(a) => a.iter().collect(),
            one => vec![one],
        };
        for cond in conds {
            let cond = cond.as_str().ok_or_else(|| {
                bad(format!(
                    "expect.\"{path}\": a condition is a string such as \"> 0\", or a list of them"
                ))
            })?;
            expect.push(Expectation::parse(path, cond)?);
        }
    }
    Ok(expect)
}
