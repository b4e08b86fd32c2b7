//! The storm generator at scale: 100,000 short connections at 10,000/s against a fast server,
//! every one accounted for in exactly one outcome, none lost to local ports or TIME_WAIT.

use crate::util::{self, connections, out_dir, outcome, summary};

#[test]
fn storm_of_100k_connections_at_10k_per_second_accounts_for_every_connection() {
    let _lab = util::lab();
    let (_tmp, out) = out_dir();
    let o = util::run(
        "envoy-somaxconn-128",
        &out,
        &[
            "server.accept=fast",
            "server.accept_rate=",
            "server.backlog=4096",
            "server.sysctl.net.core.somaxconn=4096",
            "client.rate=10000",
            "client.connections=100000",
            "client.duration=11s",
            "client.connect_timeout=5s",
            "client.response_timeout=5s",
            // This test judges itself; the scenario's own expectations are about overload.
            "expect={}",
        ],
    );
    assert_eq!(o.status.code(), Some(0), "{}", util::stderr(&o));
    let s = summary(&out);
    assert_eq!(s["connections"], 100_000);
    let total = crate::util::outcomes_total(&s);
    assert_eq!(total, 100_000, "every connection has exactly one outcome");

    let rows = connections(&out);
    assert_eq!(rows.len(), 100_000);
    let mut ids: Vec<u64> = rows.iter().map(|r| r["id"].parse().unwrap()).collect();
    ids.dedup();
    assert_eq!(ids.len(), 100_000, "one row per connection id");
    let port_exhaustion = rows
        .iter()
        .filter(|r| r["errno"] == libc::EADDRNOTAVAIL.to_string())
        .count();
    assert_eq!(
        port_exhaustion, 0,
        "connections lost to local-port exhaustion"
    );
    assert_eq!(
        outcome(&s, "ok"),
        100_000,
        "a fast server answers everyone: {}",
        s["outcomes"]
    );
    // The server's own counters saw every connection (so the zero below is a real reading).
    assert_eq!(s["counters"]["server"]["Tcp.PassiveOpens"], 100_000);
    assert_eq!(util::counter(&s, "server", "TcpExt.ListenOverflows"), 0);
    eprintln!(
        "100k storm: achieved {} /s for a schedule of {} /s, start lag p99 {} ms",
        s["schedule"]["achieved_rate"],
        s["schedule"]["planned_rate"],
        s["schedule"]["lag_ms"]["p99"]
    );
}
