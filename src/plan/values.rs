//! The small parsers every builder shares: durations, rates, probabilities, pause windows and
//! sysctl tables, the check that rejects a key the chosen mode does not use, and [`bad`], the
//! bad-input error they all return.

use std::collections::BTreeMap;
use std::time::Duration;

use super::MAX_DURATION;
use crate::error::Failure;
use crate::scenario::SysctlValue;
use crate::topo::sysctl;

pub(super) fn bad(msg: String) -> Failure {
    Failure::bad_input(msg)
}

pub(super) fn duration(
    key: &str,
    v: &Option<String>,
    default: Duration,
) -> Result<Duration, Failure> {
    match v {
        None => Ok(default),
        Some(s) => humantime::parse_duration(s.trim()).map_err(|e| {
            bad(format!(
                "{key} = \"{s}\": {e}; expected a duration such as 3s, 250ms or 1m"
            ))
        }),
    }
}

/// A rate per second, between one per 1000 s and 10 million.
pub(super) fn positive(key: &str, v: Option<f64>) -> Result<f64, Failure> {
    match v {
        Some(r) if (0.001..=1e7).contains(&r) => Ok(r),
        Some(r) => Err(bad(format!(
            "{key} = {r}: must be a rate per second from 0.001 to 1e7"
        ))),
        None => Err(bad(format!("{key} is required here"))),
    }
}

pub(super) fn unused<T>(key: &str, v: &Option<T>, why: &str) -> Result<(), Failure> {
    match v {
        Some(_) => Err(bad(format!(
            "{key} is only used {why}; remove it from the scenario, or unset it with --set {key}="
        ))),
        None => Ok(()),
    }
}

/// `"0.5s-0.8s"` (or plain seconds, `"0.5-0.8"`) -> a window within the longest possible run.
pub(super) fn parse_window(s: &str) -> Result<(Duration, Duration), Failure> {
    let err = || {
        bad(format!(
            "server.pauses: `{s}`: expected START-END within 0-600s, e.g. \"0.5s-0.8s\""
        ))
    };
    let point = |t: &str| {
        let t = t.trim();
        humantime::parse_duration(t)
            .ok()
            .or_else(|| {
                t.parse::<f64>()
                    .ok()
                    .and_then(|f| Duration::try_from_secs_f64(f).ok())
            })
            .filter(|d| *d <= MAX_DURATION)
    };
    let (a, b) = s.split_once('-').ok_or_else(err)?;
    match (point(a), point(b)) {
        (Some(a), Some(b)) if b > a => Ok((a, b)),
        (Some(_), Some(_)) => Err(bad(format!(
            "server.pauses: `{s}`: the end must come after the start"
        ))),
        _ => Err(err()),
    }
}

pub(super) fn probability(key: &str, v: Option<f64>) -> Result<Option<f64>, Failure> {
    match v {
        Some(p) if !(0.0..1.0).contains(&p) => Err(bad(format!(
            "{key} = {p}: a probability from 0 (no loss) to below 1, e.g. 0.01 for 1 %"
        ))),
        other => Ok(other),
    }
}

pub(super) fn sysctls(
    side: &str,
    values: &BTreeMap<String, SysctlValue>,
    defaults: &[(&str, &str)],
) -> Result<BTreeMap<String, String>, Failure> {
    let mut out: BTreeMap<String, String> = defaults
        .iter()
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect();
    for (k, v) in values {
        sysctl::validate_key(k).map_err(|e| bad(format!("{side}.sysctl: {}", e.message)))?;
        out.insert(k.clone(), v.to_string());
    }
    Ok(out)
}
