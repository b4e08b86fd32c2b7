//! Bad input is refused before anything is created, with exit code 2 and a message that names
//! the key; `--help` teaches. These tests need no privileges except where noted.

use std::io::Write;

use crate::util::{self, bin, out_dir, run, stderr};

fn scenario_file(text: &str) -> tempfile::NamedTempFile {
    let mut f = tempfile::Builder::new().suffix(".toml").tempfile().unwrap();
    f.write_all(text.as_bytes()).unwrap();
    f
}

/// Runs `check` (no root needed) on a scenario text; returns (exit code, stderr).
fn check(text: &str, sets: &[&str]) -> (i32, String) {
    let f = scenario_file(text);
    let mut c = bin();
    c.arg("check").arg(f.path());
    for s in sets {
        c.args(["--set", s]);
    }
    let o = c.output().unwrap();
    (o.status.code().unwrap(), stderr(&o))
}

#[track_caller]
fn refused(text: &str, sets: &[&str], must_name: &[&str]) {
    let (code, err) = check(text, sets);
    assert_eq!(
        code, 2,
        "expected exit 2 for {text:?} {sets:?}, stderr: {err}"
    );
    assert_eq!(
        err.trim().lines().count(),
        1,
        "error must be one line: {err}"
    );
    for m in must_name {
        assert!(err.contains(m), "error should name `{m}`: {err}");
    }
}

/// `check` asks the kernel, in a scratch namespace, what `run` would: a host-wide key, a key
/// read-only in a namespace and a value out of range are refused by both, naming the key. See:
/// issue #6, item 11.
#[test]
fn check_refuses_the_sysctls_run_refuses() {
    util::require_root();
    for (set, key) in [
        (
            "server.sysctl.net.core.netdev_max_backlog=2000",
            "net.core.netdev_max_backlog",
        ),
        ("client.sysctl.net.ipv4.tcp_mem=1 2 3", "net.ipv4.tcp_mem"),
        (
            "server.sysctl.net.core.somaxconn=99999999999",
            "net.core.somaxconn",
        ),
    ] {
        refused("", &[set], &[key]);
    }
    let f = scenario_file("");
    let o = bin()
        .arg("check")
        .arg(f.path())
        .args(["--set", "server.sysctl.net.ipv4.tcp_syncookies=2"])
        .output()
        .unwrap();
    assert!(o.status.success(), "{}", stderr(&o));
    assert!(
        String::from_utf8_lossy(&o.stdout).contains("set in a scratch namespace"),
        "{}",
        String::from_utf8_lossy(&o.stdout)
    );
}

/// An override from the command line wins: a `--set` that changes a mode drops the file's keys
/// of the replaced mode, with one note line; in a file alone the conflict is an error that names
/// the fix. See: issue #7, item 1.
#[test]
fn an_override_of_a_mode_wins_over_the_files_keys_of_the_old_mode() {
    for (set, dropped) in [
        ("server.accept=never", "server.accept_rate = 1000"),
        ("server.accept=fast", "server.accept_rate = 1000"),
        ("client.arrival=burst", "client.rate = 2500"),
    ] {
        let o = bin().args(["check", "--set", set]).output().unwrap();
        assert_eq!(o.status.code(), Some(0), "{set}: {}", stderr(&o));
        let notes: Vec<String> = stderr(&o)
            .lines()
            .filter(|l| l.starts_with("note:"))
            .map(str::to_string)
            .collect();
        assert_eq!(notes.len(), 1, "{set}: {notes:?}");
        assert!(notes[0].contains(dropped), "{set}: {notes:?}");
    }
    // A burst without a size is one burst of every connection.
    let o = bin()
        .args([
            "check",
            "--set",
            "client.arrival=burst",
            "--set",
            "client.connections=300",
        ])
        .output()
        .unwrap();
    let plan = String::from_utf8_lossy(&o.stdout);
    assert!(plan.contains("one burst of 300"), "{plan}");
    // A key the user gave is never dropped: the conflict is theirs, and named.
    let (code, err) = check("", &["server.accept=never", "server.accept_rate=5"]);
    assert_eq!(code, 2, "{err}");
    // In a file alone it is an error, and it names the fix.
    refused(
        "[server]\naccept = \"never\"\naccept_rate = 5\n",
        &[],
        &["server.accept_rate", "--set server.accept_rate="],
    );
    // And it runs: a server that never accepts, with the file's rate gone.
    let _lab = util::lab();
    let (_tmp, out) = out_dir();
    let o = run(
        "envoy-somaxconn-128",
        &out,
        &[
            "server.accept=never",
            "client.connections=100",
            "client.duration=100ms",
            "client.connect_timeout=300ms",
            "client.response_timeout=300ms",
            "expect=",
        ],
    );
    assert_eq!(o.status.code(), Some(0), "{}", stderr(&o));
    let s = util::summary(&out);
    assert_eq!(s["server"]["accepted"], 0, "{}", s["server"]);
}

/// Type errors in the scenario's words, not Rust's; a single pause window is a list of one; an
/// error in a `--set` names the `--set`, not a line of the file. See: issue #7, item 3.
#[test]
fn errors_speak_of_integers_durations_and_windows() {
    for (text, words) in [
        ("[server]\nbacklog = \"lots\"\n", "expected an integer"),
        (
            "[client]\nconnect_timeout = 3\n",
            "expected a duration such as \"3s\"",
        ),
        (
            "[server]\naccept = \"pause\"\npauses = [1]\n",
            "a list of windows such as [\"0.5s-0.8s\"]",
        ),
        ("[client]\nrate = \"fast\"\n", "expected a number"),
        ("[server]\nport = 70000\n", "an integer from 0 to 65,535"),
    ] {
        let (code, err) = check(text, &[]);
        assert_eq!(code, 2, "{text:?}: {err}");
        assert!(err.contains(words), "{text:?}: {err}");
        for rust in [
            "i32",
            "u16",
            "f64",
            "expected a string",
            "sequence",
            "invalid type",
        ] {
            assert!(!err.contains(rust), "{text:?}: Rust's words in {err}");
        }
    }
    let (code, err) = check(
        "[server]\naccept = \"pause\"\npauses = \"0.5s-0.8s\"\n",
        &[],
    );
    assert_eq!(code, 0, "one window alone: {err}");
    let (code, err) = check(
        "name = \"x\"\ndescription = \"y\"\n",
        &["server.backlogg=1"],
    );
    assert_eq!(code, 2, "{err}");
    assert!(
        err.starts_with("error: --set server.backlogg: unknown field"),
        "{err}"
    );
    let (_, err) = check("", &["client.connect_timeout=3"]);
    assert!(err.contains("--set client.connect_timeout:"), "{err}");
    assert!(!err.contains("in quotes"), "{err}");
}

/// A run says what was run and where it went: `--quiet` prints the result folder as its one
/// line, `--json` carries it, a run with overrides is named with them (terminal, summary.json,
/// report), no expectations read "no expectations", and the last line names report.html. See:
/// issue #7, item 4.
#[test]
fn a_run_says_what_was_run_and_where_it_went() {
    let _lab = util::lab();
    let sets = ["client.connections=200", "client.duration=200ms", "expect="];
    let small: Vec<&str> = sets.iter().flat_map(|s| ["--set", s]).collect();
    let (_tmp, out) = out_dir();
    let o = run("envoy-somaxconn-128", &out, &sets);
    assert_eq!(o.status.code(), Some(0), "{}", stderr(&o));
    assert_eq!(
        String::from_utf8_lossy(&o.stdout),
        format!("{}\n", out.display())
    );
    let s = util::summary(&out);
    assert_eq!(s["scenario"], "envoy-somaxconn-128");
    assert_eq!(
        s["overrides"].as_array().unwrap().len(),
        3,
        "{}",
        s["overrides"]
    );
    let report = std::fs::read_to_string(out.join("report.md")).unwrap();
    assert!(
        report.contains("envoy-somaxconn-128 with 3 overrides (client.connections=200"),
        "{}",
        &report[..300]
    );
    assert!(report.contains("Based on:"), "{}", &report[..600]);

    let (_tmp, out) = out_dir();
    let o = bin()
        .args(["run", "--json", "--out"])
        .arg(&out)
        .args(&small)
        .output()
        .unwrap();
    assert_eq!(o.status.code(), Some(0), "{}", stderr(&o));
    let j: serde_json::Value = serde_json::from_slice(&o.stdout).unwrap();
    assert_eq!(j["result_dir"], out.display().to_string());
    assert_eq!(j["connections"], 200);

    let (_tmp, out) = out_dir();
    let o = bin()
        .args(["run", "--out"])
        .arg(&out)
        .args(&small)
        .output()
        .unwrap();
    assert_eq!(o.status.code(), Some(0), "{}", stderr(&o));
    let text = String::from_utf8_lossy(&o.stdout);
    assert!(
        text.contains("envoy-somaxconn-128 with 3 overrides"),
        "{text}"
    );
    assert!(text.contains("based on: Envoy: backlog -1"), "{text}");
    let last = text.trim_end().lines().last().unwrap();
    assert!(last.contains("no expectations"), "{last}");
    assert!(
        last.contains(&format!("(open {}/report.html)", out.display())),
        "{last}"
    );
}

/// Completions for every shell clap knows, none offering the wardens' internal commands; the
/// bash one loads in bash and completes a subcommand; the man page is roff from the same
/// definitions. See: issue #7, item 7.
#[test]
fn completions_for_every_shell_and_a_man_page() {
    for shell in ["bash", "zsh", "fish", "elvish", "powershell"] {
        let o = bin().args(["completions", shell]).output().unwrap();
        assert!(o.status.success(), "{shell}: {}", stderr(&o));
        let script = String::from_utf8_lossy(&o.stdout);
        assert!(script.contains("bench-link"), "{shell}: {script}");
        assert!(
            !script.contains("warden") && !script.contains("janitor"),
            "{shell}"
        );
    }
    let script = format!(
        "source <({bin} completions bash) && COMP_WORDS=(backlog-lab ru) && COMP_CWORD=1 && \
         _backlog__lab backlog-lab ru backlog-lab && echo \"${{COMPREPLY[@]}}\"",
        bin = env!("CARGO_BIN_EXE_backlog-lab")
    );
    let o = std::process::Command::new("bash")
        .args(["-c", &script])
        .output()
        .unwrap();
    assert!(o.status.success(), "{}", stderr(&o));
    assert_eq!(String::from_utf8_lossy(&o.stdout).trim(), "run");
    let o = bin().arg("man").output().unwrap();
    let man = String::from_utf8_lossy(&o.stdout);
    assert!(man.contains(".TH backlog-lab 1"), "{man}");
    assert!(
        man.contains("completions") && man.contains("listen"),
        "{man}"
    );
}

/// `check` shows a run as the report's Settings do, with the queues the kernel will give it, and
/// says before the run what its numbers imply: too many descriptors, a schedule beyond the
/// machine, arrivals no backlog can absorb. See: issue #7, item 2.
#[test]
fn check_reads_like_the_report_and_warns_before_the_run() {
    let o = bin().args(["check", "abort-on-overflow"]).output().unwrap();
    assert!(o.status.success(), "{}", stderr(&o));
    let text = String::from_utf8_lossy(&o.stdout);
    for rust in [
        "RunPlan",
        "Expectation {",
        "Some(",
        "secs:",
        "Duration",
        "{ ",
        "[Num(",
    ] {
        assert!(
            !text.contains(rust),
            "Rust in check's output ({rust}): {text}"
        );
    }
    assert!(text.contains("a comparison of 3 runs"), "{text}");
    assert!(
        text.contains("accept queue limit 128, holds 129; SYN queue holds 129"),
        "{text}"
    );
    assert!(text.contains("expectations ("), "{text}");
    // The same as JSON, for scripts.
    let o = bin()
        .args(["check", "abort-on-overflow", "--json"])
        .output()
        .unwrap();
    let j: serde_json::Value = serde_json::from_slice(&o.stdout).unwrap();
    let runs = j["runs"].as_array().unwrap();
    assert_eq!(runs.len(), 3);
    assert_eq!(runs[0]["accept_queue_capacity"], 129);
    // Pre-flight, in check and at the start of run: a storm beyond the descriptors and the
    // machine...
    let huge = [
        "--set",
        "client.connections=2000000",
        "--set",
        "client.rate=10000000",
        "--set",
        "client.duration=1s",
    ];
    let o = bin().arg("check").args(huge).output().unwrap();
    let text = String::from_utf8_lossy(&o.stdout);
    assert!(
        text.contains("warning: up to 2,000,000 connections may be open at once"),
        "{text}"
    );
    assert!(
        text.contains("warning: the schedule starts 10,000,000/s"),
        "{text}"
    );
    // ... and arrivals the server can never take (a note: the scenario does it on purpose).
    let o = bin().arg("check").output().unwrap();
    let text = String::from_utf8_lossy(&o.stdout);
    assert!(
        text.contains(
            "note: connections arrive at 2,500/s on average and the server accepts 1,000/s: the \
             queue grows by 1,500/s whatever the backlog"
        ),
        "{text}"
    );
    // `run` says it too, on stderr, before it builds anything.
    let _lab = util::lab();
    let (_tmp, out) = out_dir();
    let o = run(
        "envoy-somaxconn-128",
        &out,
        &[
            "client.connections=300",
            "client.rate=100000",
            "client.duration=10ms",
            "expect=",
        ],
    );
    assert_eq!(o.status.code(), Some(0), "{}", stderr(&o));
    assert!(
        stderr(&o).contains("warning: the schedule starts 100,000/s"),
        "{}",
        stderr(&o)
    );
}

#[test]
fn unknown_keys_and_wrong_types_name_the_key() {
    refused("[server]\nbakclog = 4\n", &[], &["bakclog", ":2"]);
    refused("[server]\nbacklog = \"lots\"\n", &[], &["server.backlog"]);
    refused("[client]\nrate = -5.0\n", &[], &["client.rate"]);
    refused(
        "[client]\nconnect_timeout = \"3 fortnights\"\n",
        &[],
        &["client.connect_timeout"],
    );
    refused(
        "[server]\naccept = \"sometimes\"\n",
        &[],
        &["sometimes", "never"],
    );
    refused(
        "[server]\naccept = \"rate\"\n",
        &[],
        &["server.accept_rate"],
    );
    refused(
        "[server]\naccept_rate = 5.0\n",
        &[],
        &["server.accept_rate", "rate"],
    );
    refused(
        "[expect]\n\"outcomes.ok\" = \"about 5\"\n",
        &[],
        &["outcomes.ok"],
    );
    refused("", &["server.bogus=1"], &["bogus"]);
    refused("", &["client.rate=-1"], &["client.rate"]);
    refused("", &["server.sysctl.kernel.pid_max=5"], &["kernel.pid_max"]);
}

#[test]
fn bad_link_flood_and_comparison_settings_are_refused() {
    refused("[link]\nloss = 1.5\n", &[], &["link.loss"]);
    refused(
        "[link]\nrtt = \"20ms\"\njitter = \"15ms\"\n",
        &[],
        &["link.jitter"],
    );
    refused("", &["link.rtt=1h"], &["link.rtt"]);
    refused("[flood]\nrate = 1000\n", &[], &["flood.count"]);
    refused("", &["client.request_bytes=5"], &["client.request_bytes"]);
    refused(
        "[matrix]\n\"server.backlog\" = 4\n",
        &[],
        &["matrix", "server.backlog"],
    );
    refused(
        "[[case]]\nlabel = \"a\"\n[[case]]\nlabel = \"a\"\n",
        &[],
        &["case", "label"],
    );
    // A bad value in one combination names the combination.
    refused(
        "",
        &["server.backlog=4,lots"],
        &["backlog=lots", "server.backlog"],
    ); // The family names the allowed values, in the file, in a --set and in an axis.
    refused("family = \"ipv5\"\n", &[], &["family", "ipv4 or ipv6"]);
    refused("", &["family=ipv5"], &["family", "ipv4 or ipv6"]);
    refused("", &["family=ipv4,ipv5"], &["family=ipv5", "ipv4 or ipv6"]);
    refused("family = 6\n", &[], &["family"]);
}

#[test]
fn a_comparison_checks_every_combination_and_serve_refuses_it() {
    let f = scenario_file("[[case]]\nlabel = \"small\"\nset = { \"server.backlog\" = 4 }\n");
    let o = bin()
        .arg("check")
        .arg(f.path())
        .args(["--set", "link.rtt=1ms,20ms"])
        .output()
        .unwrap();
    assert!(o.status.success(), "{}", stderr(&o));
    let text = String::from_utf8_lossy(&o.stdout);
    assert!(text.contains("run `rtt=1ms small`: valid"), "{text}");
    assert!(text.contains("run `rtt=20ms small`: valid"), "{text}");
    let o = bin()
        .arg("serve")
        .arg(f.path())
        .args(["--set", "link.rtt=1ms,20ms"])
        .output()
        .unwrap();
    assert_eq!(o.status.code(), Some(2), "{}", stderr(&o));
    assert!(stderr(&o).contains("comparison"), "{}", stderr(&o));
}

/// Five axes of 30 values are 24.3 million combinations: counted and refused before any is
/// built, in little memory (the address space is capped at 1 GiB), so it exits 2 at once.
/// See: issue #6, item 10.
#[test]
fn a_comparison_is_counted_before_it_is_built() {
    let values = (1..=30)
        .map(|i| i.to_string())
        .collect::<Vec<_>>()
        .join(",");
    let ports = (8001..=8030)
        .map(|i| i.to_string())
        .collect::<Vec<_>>()
        .join(",");
    let mut c = bin();
    c.arg("check");
    for key in [
        "client.rate",
        "client.connections",
        "server.backlog",
        "client.seed",
    ] {
        c.args(["--set", &format!("{key}={values}")]);
    }
    c.args(["--set", &format!("server.port={ports}")]);
    // SAFETY: setrlimit is async-signal-safe and only touches the child.
    unsafe {
        use std::os::unix::process::CommandExt;
        c.pre_exec(|| {
            let cap = libc::rlimit {
                rlim_cur: 1 << 30,
                rlim_max: 1 << 30,
            };
            if libc::setrlimit(libc::RLIMIT_AS, &cap) != 0 {
                return Err(std::io::Error::last_os_error());
            }
            Ok(())
        });
    }
    let started = std::time::Instant::now();
    let o = c.output().unwrap();
    assert_eq!(o.status.code(), Some(2), "{}", stderr(&o));
    assert!(
        stderr(&o).contains("24300000 combinations; at most 64"),
        "{}",
        stderr(&o)
    );
    assert!(started.elapsed() < std::time::Duration::from_secs(5));
}

#[test]
fn missing_file_is_bad_input() {
    let o = bin()
        .args(["check", "scenarios/no-such-scenario.toml"])
        .output()
        .unwrap();
    assert_eq!(o.status.code(), Some(2));
    assert!(
        stderr(&o).contains("no-such-scenario.toml"),
        "{}",
        stderr(&o)
    );
}

#[test]
fn bundled_scenarios_are_valid() {
    for entry in std::fs::read_dir(concat!(env!("CARGO_MANIFEST_DIR"), "/scenarios")).unwrap() {
        let path = entry.unwrap().path();
        if path.extension().is_some_and(|e| e == "toml") {
            let o = bin().arg("check").arg(&path).output().unwrap();
            assert!(o.status.success(), "{}: {}", path.display(), stderr(&o));
        }
    }
    let o = bin().arg("list").output().unwrap();
    let list = String::from_utf8_lossy(&o.stdout);
    assert!(list.contains("envoy-somaxconn-128"));
    // Every incident names its article's seed and the page that tells it (issue #7, item 8).
    let incidents =
        std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/docs/incidents.md")).unwrap();
    // (The real-server scenarios come after a blank line and a heading.)
    for line in list
        .lines()
        .filter(|l| !l.is_empty() && !l.starts_with("With real servers"))
    {
        assert!(line.contains("docs/incidents.md"), "{line}");
        for seed in line.match_indices("seeds/").map(|(i, _)| &line[i..i + 9]) {
            assert!(
                incidents.contains(&format!("## {seed}:")),
                "{seed} is not in docs/incidents.md"
            );
        }
    }
}

#[test]
fn help_teaches() {
    let o = bin().args(["run", "--help"]).output().unwrap();
    let text = String::from_utf8_lossy(&o.stdout);
    for needle in [
        "--set",
        "server.sysctl.net.core.somaxconn",
        "--out",
        "Examples",
    ] {
        assert!(text.contains(needle), "run --help lacks {needle}");
    }
    let o = bin().arg("--help").output().unwrap();
    assert!(String::from_utf8_lossy(&o.stdout).contains("Exit codes"));
}

/// Sysctls are checked against the kernel inside the namespace: a key that does not exist, or
/// one that is host-wide, is refused with exit 2 and no result folder. Needs root.
#[test]
fn kernel_refused_sysctls_are_bad_input_and_create_nothing() {
    let _lab = crate::util::lab();
    let (_tmp, out) = out_dir();
    let o = run(
        "envoy-somaxconn-128",
        &out,
        &["server.sysctl.net.ipv4.tcp_no_such_knob=1"],
    );
    assert_eq!(o.status.code(), Some(2), "{}", stderr(&o));
    assert!(
        stderr(&o).contains("net.ipv4.tcp_no_such_knob"),
        "{}",
        stderr(&o)
    );
    assert!(stderr(&o).contains("does not exist"), "{}", stderr(&o));
    let o = run(
        "envoy-somaxconn-128",
        &out,
        &["server.sysctl.net.core.netdev_max_backlog=5000"],
    );
    assert_eq!(o.status.code(), Some(2), "{}", stderr(&o));
    assert!(
        stderr(&o).contains("not per network namespace"),
        "{}",
        stderr(&o)
    );
    assert!(
        !out.exists(),
        "a refused run must not create its result folder"
    );
}

/// A failed expectation is exit code 1, and the verdict is in summary.json with the value seen.
#[test]
fn a_failed_expectation_exits_1() {
    let _lab = crate::util::lab();
    let (_tmp, out) = out_dir();
    let o = run(
        "node-backlog-511",
        &out,
        &[
            "client.burst_size=50",
            "client.connections=50",
            "expect=",
            "expect.outcomes.ok=< 0",
        ],
    );
    assert_eq!(o.status.code(), Some(1), "{}", stderr(&o));
    let s = crate::util::summary(&out);
    let failed: Vec<_> = s["expectations"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|e| e["pass"] == false)
        .collect();
    assert_eq!(failed.len(), 1, "{failed:?}");
    assert_eq!(failed[0]["text"], "outcomes.ok < 0");
    assert_eq!(failed[0]["value"], 50.0);
    // The event loop was blocked for the first 0.5 s: all 50 waited in the accept queue.
    assert_eq!(s["listen"]["accept_queue_max_seen"], 50);
}

/// Ctrl-C stops the schedule, lets the connections in flight finish, writes everything, and
/// exits 130: nothing measured is lost.
#[test]
fn ctrl_c_keeps_every_started_connection_and_exits_130() {
    let _lab = crate::util::lab();
    let (_tmp, out) = out_dir();
    let child = crate::util::long_storm(&out)
        .args([
            "--set",
            "client.connect_timeout=1500ms",
            "--set",
            "client.response_timeout=1s",
        ])
        .spawn()
        .unwrap();
    crate::util::wait_until_started(&out);
    std::thread::sleep(std::time::Duration::from_millis(1500));
    nix::sys::signal::kill(
        nix::unistd::Pid::from_raw(child.id() as i32),
        nix::sys::signal::SIGINT,
    )
    .unwrap();
    let o = child.wait_with_output().unwrap();
    assert_eq!(o.status.code(), Some(130), "{}", stderr(&o));
    let s = crate::util::summary(&out);
    assert_eq!(s["interrupted"], true);
    let n = s["connections"].as_u64().unwrap();
    assert!(n > 1000 && n < 40_000, "attempted {n}");
    assert_eq!(
        crate::util::connections(&out).len() as u64,
        n,
        "one row per attempted connection"
    );
    let total = crate::util::outcomes_total(&s);
    assert_eq!(total, n);
    assert_eq!(s["abandoned"], 0);
}

/// Starts a 40,000-connection storm into `out` and sends `signal` `after` its start (from the
/// process's start when `from_spawn`, else once environment.json shows the lab stands).
fn signal_run(
    out: &std::path::Path,
    signal: nix::sys::signal::Signal,
    after: std::time::Duration,
    from_spawn: bool,
) -> std::process::Output {
    let child = crate::util::long_storm(out)
        .args(["--set", "client.connect_timeout=1500ms"])
        .args(["--set", "client.response_timeout=1s"])
        .spawn()
        .unwrap();
    if !from_spawn {
        crate::util::wait_until_started(out);
    }
    std::thread::sleep(after);
    nix::sys::signal::kill(nix::unistd::Pid::from_raw(child.id() as i32), signal).unwrap();
    child.wait_with_output().unwrap()
}

/// What a stopped run left is complete and marked partial: every file, one row per attempted
/// connection, the outcomes adding up.
fn assert_complete_and_partial(out: &std::path::Path) {
    for f in [
        "summary.json",
        "connections.csv",
        "counters.csv",
        "timeseries.csv",
        "report.md",
    ] {
        assert!(out.join(f).is_file(), "{f} missing in {}", out.display());
    }
    let s = crate::util::summary(out);
    assert_eq!(s["interrupted"], true);
    let n = s["connections"].as_u64().unwrap();
    assert_eq!(crate::util::connections(out).len() as u64, n);
    assert_eq!(crate::util::outcomes_total(&s), n);
}

/// SIGTERM (systemd, `timeout`, `docker stop`, `kubectl`) and SIGHUP stop a run as Ctrl-C does:
/// everything written, marked partial, exit 128 + the signal. See: issue #6, item 6.
#[test]
fn sigterm_and_sighup_stop_a_run_as_ctrl_c_does() {
    use nix::sys::signal::Signal;
    let _lab = crate::util::lab();
    for (signal, code) in [(Signal::SIGTERM, 143), (Signal::SIGHUP, 129)] {
        let (_tmp, out) = out_dir();
        let o = signal_run(&out, signal, std::time::Duration::from_millis(800), false);
        assert_eq!(o.status.code(), Some(code), "{signal}: {}", stderr(&o));
        assert_complete_and_partial(&out);
        let n = crate::util::summary(&out)["connections"].as_u64().unwrap();
        assert!(n > 100 && n < 40_000, "{signal}: attempted {n}");
    }
}

/// A SIGTERM at any instant, from the first milliseconds of the process (before the lab
/// stands, while it is built) to mid-storm, leaves either nothing or a complete result marked
/// partial, and exits 143 whenever the handler was already in place.
#[test]
fn sigterm_at_any_instant_leaves_nothing_or_a_complete_partial_result() {
    use nix::sys::signal::Signal;
    let _lab = crate::util::lab();
    for ms in [0, 5, 40, 150, 400] {
        let (_tmp, out) = out_dir();
        let o = signal_run(
            &out,
            Signal::SIGTERM,
            std::time::Duration::from_millis(ms),
            true,
        );
        use std::os::unix::process::ExitStatusExt;
        if o.status.signal() == Some(libc::SIGTERM) {
            // Killed before main() could install its handler: nothing may be left.
            assert!(
                !out.exists(),
                "{ms} ms: killed, yet {} exists",
                out.display()
            );
            continue;
        }
        assert_eq!(o.status.code(), Some(143), "{ms} ms: {}", stderr(&o));
        if out.join("summary.json").exists() {
            assert_complete_and_partial(&out);
        } else {
            // Stopped before the lab stood up: it says so and leaves no folder behind.
            assert!(!out.exists(), "{ms} ms: a half-written {}", out.display());
        }
    }
}

/// `--out` on a folder that already holds files exits 2 and changes nothing in it; a folder
/// where nothing can be written is bad input too, named, before anything is built.
/// See: issue #6, items 4 and 11.
#[test]
fn out_refuses_a_folder_with_files_and_one_it_cannot_write() {
    let _lab = crate::util::lab();
    let tmp = tempfile::tempdir().unwrap();
    let mine = tmp.path().join("notes.txt");
    std::fs::write(&mine, "the user's own file").unwrap();
    let o = bin()
        .args(["run", "--quiet", "--out"])
        .arg(tmp.path())
        .output()
        .unwrap();
    assert_eq!(o.status.code(), Some(2), "{}", stderr(&o));
    assert!(stderr(&o).contains("is not empty"), "{}", stderr(&o));
    assert!(stderr(&o).contains("--force"), "{}", stderr(&o));
    let left: Vec<_> = std::fs::read_dir(tmp.path()).unwrap().collect();
    assert_eq!(left.len(), 1);
    assert_eq!(
        std::fs::read_to_string(&mine).unwrap(),
        "the user's own file"
    );

    let t = std::time::Instant::now();
    let o = bin()
        .args(["run", "--quiet", "--out", "/proc/sys/net/core"])
        .output()
        .unwrap();
    assert_eq!(o.status.code(), Some(2), "{}", stderr(&o));
    assert!(stderr(&o).contains("/proc/sys/net/core"), "{}", stderr(&o));
    assert!(t.elapsed() < std::time::Duration::from_secs(5));
}

/// The scenario's `name` becomes one path component under results/: `../x` and `/abs` cannot
/// choose where root writes. See: issue #6, item 9.
#[test]
fn a_scenario_name_stays_inside_results() {
    let _lab = crate::util::lab();
    let home = std::path::Path::new(env!("CARGO_MANIFEST_DIR"));
    for (name, folder) in [("../x", "_x"), ("/abs", "_abs")] {
        let f = scenario_file(&format!(
            "name = \"{name}\"\n[server]\naccept = \"fast\"\n[client]\nconnections = 20\nduration = \"100ms\"\n"
        ));
        let o = bin()
            .arg("run")
            .arg(f.path())
            .arg("--quiet")
            .output()
            .unwrap();
        assert_eq!(o.status.code(), Some(0), "{name}: {}", stderr(&o));
        let parent = home.join("results").join(folder);
        let runs: Vec<_> = std::fs::read_dir(&parent)
            .unwrap_or_else(|e| panic!("{name}: no {}: {e}", parent.display()))
            .collect();
        assert_eq!(runs.len(), 1, "{name}");
        std::fs::remove_dir_all(&parent).unwrap();
    }
    assert!(!home.join("x").exists() && !home.join("results/x").exists());
    assert!(!std::path::Path::new("/abs").exists());
}

/// A second Ctrl-C abandons the connections in flight, and each keeps its row, as `abandoned`:
/// one row per started connection, and the printed table says what the CSV says.
/// See: issue #6, item 3.
#[test]
fn a_doubly_interrupted_run_keeps_a_row_for_every_started_connection() {
    let _lab = crate::util::lab();
    let (_tmp, out) = out_dir();
    // A server that never accepts: every connect completes into the queue, or waits on a SYN
    // retry, and then waits for a response that never comes, so all are in flight at the end.
    let child = bin()
        .args(["run", "envoy-somaxconn-128", "--out"])
        .arg(&out)
        .args([
            "--set",
            "server.accept=never",
            "--set",
            "server.accept_rate=",
        ])
        .args([
            "--set",
            "client.duration=10s",
            "--set",
            "client.connections=20000",
        ])
        .args([
            "--set",
            "client.connect_timeout=10s",
            "--set",
            "client.response_timeout=10s",
        ])
        .args(["--set", "expect="])
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    crate::util::wait_until_started(&out);
    let pid = nix::unistd::Pid::from_raw(child.id() as i32);
    std::thread::sleep(std::time::Duration::from_millis(1000));
    nix::sys::signal::kill(pid, nix::sys::signal::SIGINT).unwrap();
    std::thread::sleep(std::time::Duration::from_millis(500));
    nix::sys::signal::kill(pid, nix::sys::signal::SIGINT).unwrap();
    let o = child.wait_with_output().unwrap();
    assert_eq!(o.status.code(), Some(130), "{}", stderr(&o));
    assert_complete_and_partial(&out);
    let s = crate::util::summary(&out);
    let abandoned = s["abandoned"].as_u64().unwrap();
    assert!(abandoned > 100, "abandoned {abandoned}");
    assert_eq!(crate::util::outcome(&s, "abandoned"), abandoned);
    let rows = crate::util::connections(&out);
    let in_csv = rows.iter().filter(|r| r["outcome"] == "abandoned").count() as u64;
    assert_eq!(in_csv, abandoned);
    // The table printed on stdout carries the same counts.
    let table = String::from_utf8_lossy(&o.stdout);
    let printed = |name: &str| -> u64 {
        table
            .lines()
            .find_map(|l| {
                let mut w = l.split_whitespace();
                (w.next() == Some(name)).then(|| w.next()?.parse().ok())?
            })
            .unwrap_or(0)
    };
    assert_eq!(printed("abandoned"), abandoned, "{table}");
    for name in ["ok", "connect_timeout", "response_timeout"] {
        assert_eq!(
            printed(name),
            crate::util::outcome(&s, name),
            "{name}: {table}"
        );
    }
    assert!(table.contains("PARTIAL (interrupted)"), "{table}");
}

/// A kernel without IPv6 (built without it, or booted with `ipv6.disable=1`) has no
/// `/proc/sys/net/ipv6/conf`. This one has IPv6, so the test hides those sysctls in a private
/// mount table (`unshare -m`, tmpfs over them) for one `run`: it exits 3 saying what is missing
/// and what to run instead, before it waits for any other storm, and leaves no folder.
#[test]
fn a_kernel_without_ipv6_is_told_so_with_exit_3() {
    util::require_root();
    let (_tmp, out) = out_dir();
    let o = std::process::Command::new("unshare")
        .args(["-m", "--propagation", "private", "sh", "-c"])
        .arg(r#"mount -t tmpfs none /proc/sys/net/ipv6 && exec "$0" run --set family=ipv6 --quiet --out "$1""#)
        .arg(env!("CARGO_BIN_EXE_backlog-lab"))
        .arg(&out)
        .current_dir(env!("CARGO_MANIFEST_DIR"))
        .output()
        .unwrap();
    let err = stderr(&o);
    assert_eq!(o.status.code(), Some(3), "{err}");
    assert!(err.contains("this kernel has no IPv6"), "{err}");
    assert!(err.contains("family = \"ipv4\""), "{err}");
    assert!(!err.contains("waiting for another"), "{err}");
    assert!(std::fs::read_dir(&out).map_or(true, |mut d| d.next().is_none()));
}
