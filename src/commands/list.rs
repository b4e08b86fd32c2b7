//! `backlog-lab list`: the bundled scenarios, each with the incident it reproduces, then the
//! ones with real servers.

use std::io::Write;

use crate::scenario;

pub fn command(out: &mut impl Write) -> anyhow::Result<u8> {
    for (name, text) in scenario::BUNDLED {
        let file: scenario::ScenarioFile = toml::from_str(text).expect("bundled scenarios parse");
        writeln!(out, "{name:<22} {}", file.incident.unwrap_or_default())?;
    }
    writeln!(
        out,
        "\nWith real servers (node, java, nginx, python3), run from the repository:"
    )?;
    for (name, text) in scenario::SERVERS {
        let file: scenario::ScenarioFile = toml::from_str(text).expect("bundled scenarios parse");
        writeln!(out, "{name:<22} {}", file.incident.unwrap_or_default())?;
    }
    Ok(0)
}
