//! The `[server]` table: the accept policy (fast, never, a rate, pause windows or a worker pool)
//! and the keys each mode uses, the backlog passed to `listen()`, the port, the response size and
//! the server's sysctls, assembled into a [`ServerPlan`].

use std::time::Duration;

use super::values::{bad, duration, parse_window, positive, sysctls, unused};
use super::{AcceptPolicy, ProgramPlan, ServerPlan, Talk, MAX_RESPONSE_BYTES};
use crate::error::Failure;
use crate::scenario::{AcceptKind, ServerFile};

/// `server.accept` and the keys of its mode; a key that belongs to another mode is rejected
/// (after the mode's own keys are checked).
pub(super) fn accept_policy(s: &ServerFile) -> Result<AcceptPolicy, Failure> {
    let kind = s.accept.unwrap_or(AcceptKind::Fast);
    let accept = policy(kind, s)?;
    reject_other_modes(kind, s)?;
    Ok(accept)
}

fn policy(kind: AcceptKind, s: &ServerFile) -> Result<AcceptPolicy, Failure> {
    Ok(match kind {
        AcceptKind::Fast => AcceptPolicy::Fast,
        AcceptKind::Never => AcceptPolicy::Never,
        AcceptKind::Rate => AcceptPolicy::Rate {
            per_sec: positive("server.accept_rate", s.accept_rate)?,
        },
        AcceptKind::Pause => AcceptPolicy::Pause {
            windows: pause_windows(s)?,
        },
        AcceptKind::Workers => AcceptPolicy::Workers {
            count: workers(s)?,
            service: duration("server.service_time", &s.service_time, Duration::ZERO)?,
        },
    })
}

/// `server.pauses`: required and non-empty with `accept = "pause"`; the first bad window wins.
fn pause_windows(s: &ServerFile) -> Result<Vec<(Duration, Duration)>, Failure> {
    s.pauses
        .as_ref()
        .filter(|p| !p.is_empty())
        .ok_or_else(|| {
            bad("server.pauses is required with accept = \"pause\", e.g. [\"0.5s-0.8s\"]".into())
        })?
        .iter()
        .map(|w| parse_window(w))
        .collect()
}

fn workers(s: &ServerFile) -> Result<u32, Failure> {
    match s.workers {
        Some(n) if n >= 1 => Ok(n),
        _ => Err(bad(
            "server.workers must be at least 1 with accept = \"workers\"".into(),
        )),
    }
}

fn reject_other_modes(kind: AcceptKind, s: &ServerFile) -> Result<(), Failure> {
    if kind != AcceptKind::Rate {
        unused(
            "server.accept_rate",
            &s.accept_rate,
            "with accept = \"rate\"",
        )?;
    }
    if kind != AcceptKind::Pause {
        unused("server.pauses", &s.pauses, "with accept = \"pause\"")?;
    }
    if kind != AcceptKind::Workers {
        unused("server.workers", &s.workers, "with accept = \"workers\"")?;
        unused(
            "server.service_time",
            &s.service_time,
            "with accept = \"workers\"",
        )?;
    }
    Ok(())
}

/// The listening socket: what is passed to `listen()`, where, and how much each answer carries.
pub(super) struct Listen {
    pub backlog: i32,
    pub port: u16,
    pub response_bytes: u32,
}

/// `server.backlog` (any value, -1 included), then `server.response_bytes` and `server.port`,
/// checked in that order.
pub(super) fn listen(s: &ServerFile) -> Result<Listen, Failure> {
    let backlog = s.backlog.unwrap_or(128);
    let response_bytes = s.response_bytes.unwrap_or(128);
    if response_bytes > MAX_RESPONSE_BYTES {
        return Err(bad(format!(
            "server.response_bytes: at most {MAX_RESPONSE_BYTES}"
        )));
    }
    let port = s.port.unwrap_or(8080);
    if port == 0 {
        return Err(bad("server.port: must be 1-65535".into()));
    }
    Ok(Listen {
        backlog,
        port,
        response_bytes,
    })
}

/// The [`ServerPlan`], once everything else is checked; `server.sysctl` is validated here.
pub(super) fn plan(
    s: &ServerFile,
    accept: AcceptPolicy,
    listen: Listen,
    talk: Talk,
) -> Result<ServerPlan, Failure> {
    Ok(ServerPlan {
        backlog: listen.backlog,
        accept,
        port: listen.port,
        response_bytes: listen.response_bytes,
        talk,
        sysctl: sysctls("server", &s.sysctl, &[])?,
        program: None,
    })
}

/// `server.command` and the keys that go with it (`env`, `cwd`, `startup_timeout`); the lab's
/// own server's `backlog` and `accept` are refused beside it, since the program decides both.
pub(super) fn program(s: &ServerFile, origin: &str) -> Result<Option<ProgramPlan>, Failure> {
    let Some(argv) = &s.command else {
        unused("server.env", &s.env, "with server.command")?;
        unused("server.cwd", &s.cwd, "with server.command")?;
        unused(
            "server.startup_timeout",
            &s.startup_timeout,
            "with server.command",
        )?;
        return Ok(None);
    };
    if argv.first().is_none_or(|a| a.trim().is_empty()) {
        return Err(bad(
            "server.command: a program and its arguments, e.g. [\"node\", \"server.js\", \"{port}\"]"
                .into(),
        ));
    }
    if s.backlog.is_some() {
        return Err(bad(
            "server.backlog is what the lab's own server passes to listen(); a program of your own \
             passes its own, and the run reports it (listen.accept_queue_limit): remove \
             server.backlog, or assert what you believe with [expect] \"listen.accept_queue_limit\""
                .into(),
        ));
    }
    if s.accept
        .is_some_and(|a| a != AcceptKind::Fast && a != AcceptKind::Pause)
    {
        return Err(bad(
            "server.accept drives the lab's own server; a program of your own (server.command) \
             accepts as it does: remove server.accept, or pause the program with \
             accept = \"pause\" and server.pauses (SIGSTOP windows)"
                .into(),
        ));
    }
    let startup_timeout = duration(
        "server.startup_timeout",
        &s.startup_timeout,
        Duration::from_secs(10),
    )?;
    if startup_timeout.is_zero() || startup_timeout > Duration::from_secs(120) {
        return Err(bad(
            "server.startup_timeout: above 0 and at most 120s".into()
        ));
    }
    Ok(Some(super::program::assemble(
        argv,
        &s.env,
        &s.cwd,
        origin,
        s.port.unwrap_or(8080),
        startup_timeout,
    )))
}
