//! The `[client]` table: when attempts arrive (constant, Poisson or bursts) and the keys each mode
//! uses, how many there are and for how long, the connect and response timeouts, the seed, who
//! talks first (`client.request_bytes`) and the client's sysctls, assembled into a [`ClientPlan`].

use std::time::Duration;

use super::values::{bad, duration, positive, sysctls, unused};
use super::{
    Arrival, ClientPlan, ProgramPlan, Talk, CLIENT_SYSCTL_DEFAULTS, MAX_CONNECTIONS, MAX_DURATION,
    MAX_REQUEST_BYTES,
};
use crate::error::Failure;
use crate::scenario::{ArrivalKind, ClientFile};
use crate::wire::REQUEST;

/// `client.arrival` and the keys of its mode; a burst key without `arrival = "burst"` is rejected
/// (after the mode's own keys are checked).
pub(super) fn arrival(c: &ClientFile) -> Result<Arrival, Failure> {
    let arrival = match c.arrival.unwrap_or(ArrivalKind::Constant) {
        ArrivalKind::Constant => Arrival::Constant {
            rate: positive("client.rate", c.rate.or(Some(1000.0)))?,
        },
        ArrivalKind::Poisson => Arrival::Poisson {
            rate: positive("client.rate", c.rate.or(Some(1000.0)))?,
        },
        ArrivalKind::Burst => burst(c)?,
    };
    if !matches!(arrival, Arrival::Burst { .. }) {
        unused(
            "client.burst_size",
            &c.burst_size,
            "with arrival = \"burst\"",
        )?;
        unused(
            "client.burst_interval",
            &c.burst_interval,
            "with arrival = \"burst\"",
        )?;
    }
    Ok(arrival)
}

/// `arrival = "burst"`: no `client.rate`, a `client.burst_size` of at least 1 (by default
/// `client.connections`: one burst of all), and an optional `client.burst_interval` (zero
/// means a single burst).
fn burst(c: &ClientFile) -> Result<Arrival, Failure> {
    unused(
        "client.rate",
        &c.rate,
        "with arrival = \"constant\" or \"poisson\"",
    )?;
    // Without a size, one burst of every connection (`--set client.arrival=burst` alone).
    let size = match c.burst_size.or(c.connections).or(Some(1000)) {
        Some(n) if n >= 1 => n,
        _ => {
            return Err(bad(
                "client.burst_size must be at least 1 with arrival = \"burst\"".into(),
            ))
        }
    };
    let interval = match &c.burst_interval {
        None => None,
        Some(_) => Some(duration(
            "client.burst_interval",
            &c.burst_interval,
            Duration::ZERO,
        )?)
        .filter(|d| !d.is_zero()),
    };
    Ok(Arrival::Burst { size, interval })
}

/// How much one storm may do: at most `connections` attempts within `duration`, each waiting up
/// to the two timeouts.
pub(super) struct Bounds {
    pub connections: u64,
    pub duration: Duration,
    pub connect_timeout: Duration,
    pub response_timeout: Duration,
}

/// `client.connections`, `client.duration`, then both timeouts (both parsed before either is
/// range-checked).
pub(super) fn bounds(c: &ClientFile) -> Result<Bounds, Failure> {
    let connections = c.connections.unwrap_or(1000);
    if connections == 0 || connections > MAX_CONNECTIONS {
        return Err(bad(format!(
            "client.connections = {connections}: must be between 1 and {MAX_CONNECTIONS}"
        )));
    }
    let dur = duration("client.duration", &c.duration, Duration::from_secs(10))?;
    if dur > MAX_DURATION {
        return Err(bad(format!(
            "client.duration: at most {}s, so every storm stops by itself",
            MAX_DURATION.as_secs()
        )));
    }
    let connect_timeout = duration(
        "client.connect_timeout",
        &c.connect_timeout,
        Duration::from_secs(3),
    )?;
    let response_timeout = duration(
        "client.response_timeout",
        &c.response_timeout,
        Duration::from_secs(3),
    )?;
    for (k, d) in [
        ("client.connect_timeout", connect_timeout),
        ("client.response_timeout", response_timeout),
    ] {
        if d.is_zero() || d > Duration::from_secs(300) {
            return Err(bad(format!("{k}: must be above 0 and at most 300s")));
        }
    }
    Ok(Bounds {
        connections,
        duration: dur,
        connect_timeout,
        response_timeout,
    })
}

/// `client.seed`: seeds the arrivals and, through [`super::LinkPlan::seed`], the link.
pub(super) fn seed(c: &ClientFile) -> u64 {
    c.seed.unwrap_or(1)
}

/// `client.request_bytes`: 0 makes the server speak first; unset means the plain HTTP request.
pub(super) fn talk(c: &ClientFile) -> Result<Talk, Failure> {
    let min = REQUEST.len() as u32;
    match c.request_bytes {
        Some(0) => Ok(Talk::ServerFirst),
        None => Ok(Talk::ClientFirst { request_bytes: min }),
        Some(n) if (min..=MAX_REQUEST_BYTES).contains(&n) => {
            Ok(Talk::ClientFirst { request_bytes: n })
        }
        Some(n) => Err(bad(format!(
            "client.request_bytes = {n}: use 0 (the server speaks first) or {} to \
             {MAX_REQUEST_BYTES} (an HTTP request, padded)",
            REQUEST.len()
        ))),
    }
}

/// The [`ClientPlan`], once everything else is checked; `client.sysctl` is validated here, over
/// [`CLIENT_SYSCTL_DEFAULTS`].
pub(super) fn plan(
    c: &ClientFile,
    arrival: Arrival,
    bounds: Bounds,
    talk: Talk,
) -> Result<ClientPlan, Failure> {
    Ok(ClientPlan {
        arrival,
        connections: bounds.connections,
        duration: bounds.duration,
        connect_timeout: bounds.connect_timeout,
        response_timeout: bounds.response_timeout,
        seed: seed(c),
        talk,
        sysctl: sysctls("client", &c.sysctl, CLIENT_SYSCTL_DEFAULTS)?,
        max_in_flight: match c.max_in_flight {
            Some(0) => return Err(bad("client.max_in_flight: at least 1".into())),
            n => n,
        },
        close: c.close.unwrap_or_default(),
        program: None,
    })
}

/// What only the lab's own storm has: per-connection records. An expectation on them cannot be
/// judged with `client.command`.
const RECORD_PATHS: &[&str] = &[
    "connections",
    "planned",
    "abandoned",
    "outcomes.",
    "connect_latency",
    "response_latency",
    "by_outcome.",
    "schedule.",
    "retransmits.",
];

/// `client.command` (with `env` and `cwd`): a program of the user's own runs in the client
/// namespace instead of the storm, for at most `client.duration`. The keys that shape the lab's
/// storm are refused beside it, and so are expectations on per-connection records.
pub(super) fn program(
    c: &ClientFile,
    server: &crate::scenario::ServerFile,
    origin: &str,
    expect: &[crate::scenario::expect::Expectation],
) -> Result<Option<ProgramPlan>, Failure> {
    let Some(argv) = &c.command else {
        unused("client.env", &c.env, "with client.command")?;
        unused("client.cwd", &c.cwd, "with client.command")?;
        return Ok(None);
    };
    if argv.first().is_none_or(|a| a.trim().is_empty()) {
        return Err(bad(
            "client.command: a program and its arguments, e.g. [\"wrk\", \"-c64\", \"-d5s\",              \"http://{addr}:{port}/\"]"
                .into(),
        ));
    }
    let why = "by the lab's own storm, not with client.command (the program decides)";
    unused("client.arrival", &c.arrival, why)?;
    unused("client.rate", &c.rate, why)?;
    unused("client.connections", &c.connections, why)?;
    unused("client.burst_size", &c.burst_size, why)?;
    unused("client.burst_interval", &c.burst_interval, why)?;
    unused("client.connect_timeout", &c.connect_timeout, why)?;
    unused("client.response_timeout", &c.response_timeout, why)?;
    unused("client.request_bytes", &c.request_bytes, why)?;
    unused("client.max_in_flight", &c.max_in_flight, why)?;
    unused("client.close", &c.close, why)?;
    if let Some(e) = expect
        .iter()
        .find(|e| RECORD_PATHS.iter().any(|p| e.reads(p)))
    {
        return Err(bad(format!(
            "[expect] \"{}\" reads the lab's per-connection records, which a client of your own \
             (client.command) does not produce: expect on counters.*, listen.*, drops.* or \
             server.*, or use the lab's storm",
            e.text
        )));
    }
    Ok(Some(super::program::assemble(
        argv,
        &c.env,
        &c.cwd,
        origin,
        server.port.unwrap_or(8080),
        Duration::ZERO,
    )))
}
