//! A client of the user's own (`client.command`): wrk runs in the client namespace instead of
//! the lab's storm, its output kept in `client.log`, while the lab records counters, queues and
//! drops as for any storm. See: issue #9, part 2.

use std::path::{Path, PathBuf};

use crate::util::{self, out_dir};

/// A scenario whose client is `command` (TOML array items), against the lab's own server with
/// a backlog of 16 accepting 300 connections/s.
fn scenario(dir: &Path, command: &str, extra: &str) -> PathBuf {
    let path = dir.join("client.toml");
    let text = format!(
        "name = \"client\"\n[server]\nbacklog = 16\naccept = \"rate\"\naccept_rate = 300\n\
         [client]\ncommand = [{command}]\nduration = \"6s\"\n{extra}\n"
    );
    std::fs::write(&path, text).unwrap();
    path
}

/// `backlog-lab run FILE` into `out`, as the one storm on the machine.
fn run(file: &Path, out: &Path) -> std::process::Output {
    let _lab = util::lab();
    util::bin()
        .args(["run", "--quiet", "--out"])
        .arg(out)
        .arg(file)
        .output()
        .unwrap()
}

const WRK: &str =
    r#""wrk", "-t2", "-c64", "-d2s", "-H", "Connection: close", "http://{addr}:{port}/""#;

/// 64 wrk connections, each closing after its answer, against a server that accepts 300/s:
/// the accept queue fills to exactly its 17 and overflows. The run keeps wrk's own report,
/// writes no connection rows and says so, and its counters agree with each other and with the
/// trace: every overflow is a listen drop, and the client's SYN retransmissions are the ones
/// traced.
#[test]
fn wrk_as_the_client_records_counters_queues_and_drops() {
    let (tmp, _) = out_dir();
    let file = scenario(tmp.path(), WRK, "");
    let out = tmp.path().join("wrk");
    let o = run(&file, &out);
    assert_eq!(o.status.code(), Some(0), "{}", util::stderr(&o));
    let log = std::fs::read_to_string(out.join("client.log")).unwrap();
    assert!(log.contains("Requests/sec"), "wrk's own report: {log}");
    let s = util::summary(&out);
    let p = &s["client_program"];
    assert_eq!(p["exit"], "exited with 0", "{p}");
    assert!(p["command"].as_str().unwrap().starts_with("wrk -t2 -c64"));
    assert_eq!(s["connections"], 0);
    assert!(util::connections(&out).is_empty());
    let warned = s["warnings"].as_array().unwrap();
    assert!(
        warned
            .iter()
            .any(|w| w.as_str().unwrap().contains("no per-connection rows")),
        "{warned:?}"
    );
    let duration = s["duration_s"].as_f64().unwrap();
    assert!((1.9..4.0).contains(&duration), "wrk ran {duration} s");

    let overflows = util::counter(&s, "server", "TcpExt.ListenOverflows");
    assert!(overflows > 0, "64 connections at 300 accepts/s overflow 17");
    assert_eq!(
        overflows,
        util::counter(&s, "server", "TcpExt.ListenDrops"),
        "every drop at the listener was an overflow"
    );
    assert_eq!(s["listen"]["accept_queue_limit"], 16);
    util::assert_full_queue(&s, 16);
    let opens = util::counter(&s, "server", "Tcp.PassiveOpens");
    let accepted = s["server"]["accepted"].as_i64().unwrap();
    assert!(
        opens >= accepted && opens - accepted <= 17,
        "{opens} {accepted}"
    );
    // The queue was sampled through wrk's run.
    let rows = std::fs::read_to_string(out.join("timeseries.csv"))
        .unwrap()
        .lines()
        .count();
    assert!(rows > 100, "{rows} samples in 2 s at 10 ms");
    // The trace saw this run's events (none is set aside for want of a connection row).
    let d = &s["drops"];
    assert_eq!(d["recorded"], true, "{d}");
    assert_eq!(d["foreign_events"], 0);
    assert_eq!(
        d["syn_retransmits"].as_i64().unwrap(),
        util::counter(&s, "client", "TcpExt.TCPSynRetrans"),
        "traced SYN retransmissions vs the client's counter"
    );
    let traced = d["by_reason"]["TCP_LISTEN_OVERFLOW"].as_i64().unwrap_or(0);
    assert!(traced <= overflows, "{traced} traced of {overflows}");
    let csv = std::fs::read_to_string(out.join("drops.csv")).unwrap();
    assert!(csv.lines().count() > 1, "drops.csv has the events");
}

/// The keys that shape the lab's storm, and expectations on connection records, are refused
/// beside `client.command` (exit 2, naming the key); `plan` refuses it too; and a client that
/// is not installed stops the run with exit 3 before any traffic.
#[test]
fn a_client_command_refuses_what_only_the_storm_has() {
    let (tmp, _) = out_dir();
    let refused = |extra: &str, sub: &str, says: &str| {
        let file = scenario(tmp.path(), WRK, extra);
        let o = util::bin().arg(sub).arg(&file).output().unwrap();
        assert_eq!(o.status.code(), Some(2), "{extra}: {}", util::stderr(&o));
        assert!(util::stderr(&o).contains(says), "{}", util::stderr(&o));
    };
    refused(
        "rate = 500",
        "check",
        "client.rate is only used by the lab's own storm",
    );
    refused(
        "[expect]\n\"outcomes.ok\" = \"> 0\"",
        "check",
        "reads the lab's per-connection records",
    );
    refused("", "plan", "remove server.command and client.command");

    let file = scenario(tmp.path(), r#""/nonexistent/loadgen", "{addr}""#, "");
    let out = tmp.path().join("missing");
    let o = run(&file, &out);
    assert_eq!(o.status.code(), Some(3), "{}", util::stderr(&o));
    assert!(
        util::stderr(&o).contains("client.command: `/nonexistent/loadgen` is not installed here"),
        "{}",
        util::stderr(&o)
    );
}
