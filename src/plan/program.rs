//! What `server.command` and `client.command` share: the placeholders filled in, the
//! environment and the working directory, into a [`ProgramPlan`].

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::time::Duration;

use super::ProgramPlan;

/// `argv` with `{port}` and `{scenario_dir}` filled in (`{addr}` waits for the lab's address);
/// `cwd` is relative to the scenario's folder, which is also the default.
pub(super) fn assemble(
    argv: &[String],
    env: &Option<BTreeMap<String, String>>,
    cwd: &Option<String>,
    origin: &str,
    port: u16,
    startup_timeout: Duration,
) -> ProgramPlan {
    let dir = scenario_dir(origin);
    let port = port.to_string();
    let fill = |a: &str| {
        a.replace("{port}", &port)
            .replace("{scenario_dir}", &dir.display().to_string())
    };
    ProgramPlan {
        argv: argv.iter().map(|a| fill(a)).collect(),
        env: env.clone().unwrap_or_default(),
        cwd: cwd.as_deref().map_or(dir.clone(), |c| dir.join(fill(c))),
        startup_timeout,
    }
}

/// A scenario file's own folder; for a bundled scenario, the working directory. Absolute, since
/// it is also the program's default working directory, where a relative path would be read again.
fn scenario_dir(origin: &str) -> PathBuf {
    let dir = Path::new(origin)
        .parent()
        .filter(|_| !origin.starts_with('<'))
        .map(|p| {
            if p.as_os_str().is_empty() {
                Path::new(".")
            } else {
                p
            }
        })
        .unwrap_or(Path::new("."))
        .to_path_buf();
    std::path::absolute(&dir).unwrap_or(dir)
}
