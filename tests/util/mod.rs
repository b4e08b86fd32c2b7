//! Test harness: privilege check, one-storm-at-a-time lock, the CLI runner, host-state snapshots.

#![allow(dead_code)]

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::{Command, Output};
use std::sync::{Mutex, MutexGuard};

use serde_json::Value;

pub mod nswatch;

/// Panics unless the tests can build namespaces. There is deliberately no way to skip: CI runs as
/// root, and a namespace test that passes by not running would hide a broken lab.
pub fn require_root() {
    if !nix::unistd::geteuid().is_root() {
        panic!(
            "backlog-lab's integration tests build network namespaces and need root: \
             run them as root (sudo -E cargo test)"
        );
    }
}

static STORM: Mutex<()> = Mutex::new(());

/// Serializes everything that sends traffic, so that two storms never share the 2 cores and a
/// timing assertion means the same thing on every run. Also checks privileges.
pub fn lab() -> MutexGuard<'static, ()> {
    require_root();
    STORM.lock().unwrap_or_else(|e| e.into_inner())
}

pub fn bin() -> Command {
    let mut c = Command::new(env!("CARGO_BIN_EXE_backlog-lab"));
    c.current_dir(env!("CARGO_MANIFEST_DIR"));
    c
}

/// A fresh result folder name under a temporary directory that lives as long as the guard.
pub fn out_dir() -> (tempfile::TempDir, PathBuf) {
    let tmp = tempfile::tempdir().expect("tempdir");
    let out = tmp.path().join("run");
    (tmp, out)
}

/// Runs `backlog-lab run SCENARIO --out DIR --quiet --set ...` and returns its output.
pub fn run(scenario: &str, out: &Path, sets: &[&str]) -> Output {
    let mut c = bin();
    c.args(["run", scenario, "--quiet", "--out"]).arg(out);
    for s in sets {
        c.args(["--set", s]);
    }
    c.output().expect("run backlog-lab")
}

pub fn summary(out: &Path) -> Value {
    let text = std::fs::read_to_string(out.join("summary.json")).expect("summary.json");
    serde_json::from_str(&text).expect("summary.json is JSON")
}

/// `comparison.json` of a comparison run's folder, if it is one.
pub fn comparison(out: &Path) -> Option<Value> {
    let text = std::fs::read_to_string(out.join("comparison.json")).ok()?;
    Some(serde_json::from_str(&text).expect("comparison.json is JSON"))
}

pub fn connections(out: &Path) -> Vec<BTreeMap<String, String>> {
    let mut r = csv::Reader::from_path(out.join("connections.csv")).expect("connections.csv");
    r.deserialize().map(|row| row.expect("csv row")).collect()
}

/// A counter delta from the summary (absent means it did not move: 0).
/// Checks the fullest accept queue a run saw against a listener of `backlog` under handshakes
/// on every CPU at once (wrk's threads): `backlog + 1` is the kernel's limit, and each other CPU
/// may add one more. The check `sk_ack_backlog > sk_max_ack_backlog` in `tcp_v4_syn_recv_sock`
/// runs without the listener's lock, so two CPUs can both see 16 and both add a child (CI saw 18
/// for a backlog of 16 on 2 CPUs).
pub fn assert_full_queue(s: &Value, backlog: u64) {
    let cpus = std::thread::available_parallelism().map_or(1, |n| n.get()) as u64;
    let max = s["listen"]["accept_queue_max_seen"].as_u64().unwrap();
    assert!(
        (backlog + 1..=backlog + cpus).contains(&max),
        "a full queue of backlog {backlog} holds {} to {} on {cpus} CPUs, not {max}",
        backlog + 1,
        backlog + cpus
    );
}

pub fn counter(s: &Value, ns: &str, name: &str) -> i64 {
    s["counters"][ns][name].as_i64().unwrap_or(0)
}

pub fn outcome(s: &Value, name: &str) -> u64 {
    s["outcomes"][name]
        .as_u64()
        .unwrap_or_else(|| panic!("outcome {name} missing from summary"))
}

/// The sum of all outcome counts: equals `connections` when every connection has one outcome.
pub fn outcomes_total(s: &Value) -> u64 {
    s["outcomes"]
        .as_object()
        .expect("outcomes")
        .values()
        .map(|v| v.as_u64().unwrap())
        .sum()
}

pub fn stderr(o: &Output) -> String {
    String::from_utf8_lossy(&o.stderr).into_owned()
}

/// What the lab must leave exactly as it found it in the host namespace.
#[derive(Debug, PartialEq, Eq)]
pub struct HostState {
    pub sysctls: BTreeMap<String, String>,
    pub links: Vec<String>,
    pub named_netns: Vec<String>,
    /// The host's mount table (the lab mounts tracefs only in a private one).
    pub mounts: Vec<String>,
    /// tracefs as others see it: the top-level settings and every instance.
    pub tracing: String,
    /// The host's IPv6 addresses and routes (the lab's exist only in its namespaces), without
    /// the routes' use counters.
    pub ipv6: Vec<String>,
}

/// Host IPv6 settings the lab writes in its own namespaces, never in the host's.
const IPV6_SYSCTLS: &[&str] = &[
    "net.ipv6.conf.all.accept_dad",
    "net.ipv6.conf.default.accept_dad",
    "net.ipv6.conf.all.accept_ra",
    "net.ipv6.conf.default.accept_ra",
    "net.ipv6.conf.all.router_solicitations",
    "net.ipv6.conf.default.router_solicitations",
];

pub fn host_state() -> HostState {
    let sysctls = backlog_lab::topo::sysctl::REPORTED
        .iter()
        .chain(IPV6_SYSCTLS)
        .map(|k| {
            let p = format!("/proc/sys/{}", k.replace('.', "/"));
            (
                k.to_string(),
                std::fs::read_to_string(p)
                    .unwrap_or_default()
                    .trim()
                    .to_string(),
            )
        })
        .collect();
    let mut links: Vec<String> = std::fs::read_dir("/sys/class/net")
        .expect("/sys/class/net")
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    links.sort();
    let mut named_netns: Vec<String> = std::fs::read_dir("/run/netns")
        .map(|d| {
            d.map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
                .collect()
        })
        .unwrap_or_default();
    named_netns.sort();
    let mut mounts: Vec<String> = std::fs::read_to_string("/proc/self/mounts")
        .expect("/proc/self/mounts")
        .lines()
        .map(str::to_string)
        .collect();
    mounts.sort();
    let mut ipv6: Vec<String> = std::fs::read_to_string("/proc/self/net/if_inet6")
        .unwrap_or_default()
        .lines()
        .map(str::to_string)
        .collect();
    for route in std::fs::read_to_string("/proc/self/net/ipv6_route")
        .unwrap_or_default()
        .lines()
    {
        // dest len src len next_hop metric refcnt use flags dev: refcnt and use move with traffic.
        let f: Vec<&str> = route.split_whitespace().collect();
        if f.len() == 10 {
            ipv6.push([&f[..6], &f[8..]].concat().join(" "));
        }
    }
    ipv6.sort();
    HostState {
        sysctls,
        links,
        named_netns,
        mounts,
        tracing: tracing_state(),
        ipv6,
    }
}

/// tracefs's top-level switches, enabled events and instances, read through a mount of our own
/// (`unshare -m`, so the host's mount table is untouched by the test too).
pub fn tracing_state() -> String {
    let o = Command::new("unshare")
        .args(["-m", "--propagation", "private", "sh", "-c"])
        .arg(
            "mount -t tracefs nodev /sys/kernel/tracing && cd /sys/kernel/tracing && \
             for f in tracing_on current_tracer trace_clock set_event buffer_size_kb; do \
             echo \"$f: $(cat $f | tr '\\n' ' ')\"; done && ls instances",
        )
        .output()
        .expect("unshare (util-linux)");
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    String::from_utf8_lossy(&o.stdout).into_owned()
}

/// Waits (at most 20 s) until the run writing into `out` has its lab standing: environment.json
/// is written once both namespaces exist.
pub fn wait_until_started(out: &Path) {
    let t = std::time::Instant::now();
    while !out.join("environment.json").exists() {
        assert!(
            t.elapsed() < std::time::Duration::from_secs(20),
            "the run never started"
        );
        std::thread::sleep(std::time::Duration::from_millis(20));
    }
}

/// `backlog-lab run envoy-somaxconn-128 --quiet --out OUT` with a storm long enough (40,000
/// connections over 20 s) to be stopped or killed while it runs.
pub fn long_storm(out: &Path) -> Command {
    let mut c = bin();
    c.args(["run", "envoy-somaxconn-128", "--quiet", "--out"])
        .arg(out)
        .args([
            "--set",
            "client.duration=20s",
            "--set",
            "client.connections=40000",
        ]);
    c
}
