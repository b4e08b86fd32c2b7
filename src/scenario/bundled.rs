//! The scenarios shipped in `scenarios/`, compiled into the binary.

use super::DEFAULT_SCENARIO;

/// The scenarios shipped in `scenarios/`, compiled in so `backlog-lab run NAME` works anywhere.
pub const BUNDLED: &[(&str, &str)] = &[
    ("envoy-somaxconn-128", DEFAULT_SCENARIO),
    (
        "netty-backlog-50",
        include_str!("../../scenarios/netty-backlog-50.toml"),
    ),
    (
        "netty-backlog-1024",
        include_str!("../../scenarios/netty-backlog-1024.toml"),
    ),
    (
        "node-backlog-511",
        include_str!("../../scenarios/node-backlog-511.toml"),
    ),
    (
        "node-burst",
        include_str!("../../scenarios/node-burst.toml"),
    ),
    ("gc-pause", include_str!("../../scenarios/gc-pause.toml")),
    ("netty-50", include_str!("../../scenarios/netty-50.toml")),
    (
        "reset-by-peer",
        include_str!("../../scenarios/reset-by-peer.toml"),
    ),
    (
        "abort-on-overflow",
        include_str!("../../scenarios/abort-on-overflow.toml"),
    ),
    (
        "syncookies",
        include_str!("../../scenarios/syncookies.toml"),
    ),
    ("syn-flood", include_str!("../../scenarios/syn-flood.toml")),
];

/// The scenarios with real servers (`scenarios/servers/`): compiled in to be listed and checked,
/// but run from their files, since their programs sit beside them (`{scenario_dir}`).
pub const SERVERS: &[(&str, &str)] = &[
    (
        "node-default-511",
        include_str!("../../scenarios/servers/node-default-511.toml"),
    ),
    (
        "java-serversocket-50",
        include_str!("../../scenarios/servers/java-serversocket-50.toml"),
    ),
    (
        "nginx-default-511",
        include_str!("../../scenarios/servers/nginx-default-511.toml"),
    ),
    (
        "python-http-server-5",
        include_str!("../../scenarios/servers/python-http-server-5.toml"),
    ),
];

/// Where a real-server scenario's file is, from the repository's root.
pub fn server_path(name: &str) -> Option<String> {
    let name = name.trim_end_matches(".toml");
    SERVERS
        .iter()
        .any(|(n, _)| *n == name)
        .then(|| format!("scenarios/servers/{name}.toml"))
}
