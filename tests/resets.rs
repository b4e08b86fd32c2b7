//! Timeouts against resets: what tcp_abort_on_overflow and tcp_syncookies change once a real
//! round-trip time puts handshakes in flight while the accept queue is full (kernel-notes.md,
//! "What happens to the final ACK").

use crate::util::{self, counter, out_dir, outcome, summary};

/// A busy server (1000 accepts/s, somaxconn 128) behind a 20 ms link, 2000 connections/s.
const BUSY: &[&str] = &[
    "link.rtt=20ms",
    "server.backlog=511",
    "client.connections=2000",
    "client.rate=2000",
    "client.duration=1s",
    "expect=",
];

/// With syncookies off, abort_on_overflow=1 turns every final ACK that meets the full accept
/// queue into a RST that the client sees after connect() succeeded (ECONNRESET on read), one per
/// request socket unlinked (EmbryonicRsts); abort_on_overflow=0 resets nothing. Both run as one
/// comparison (`--set KEY=0,1`), so this also checks the comparison's folder layout.
#[test]
fn abort_on_overflow_resets_after_connect_exactly_as_counted() {
    abort_on_overflow_resets_exactly_as_counted("ipv4");
}

/// The same on IPv6: the RST comes from `tcp_v6_send_reset`, the count from the same
/// EmbryonicRsts.
#[test]
fn abort_on_overflow_resets_after_connect_exactly_as_counted_on_ipv6() {
    abort_on_overflow_resets_exactly_as_counted("ipv6");
}

fn abort_on_overflow_resets_exactly_as_counted(family: &str) {
    let _lab = util::lab();
    let (_tmp, out) = out_dir();
    let family_set = format!("family={family}");
    let mut sets = BUSY.to_vec();
    sets.extend([
        family_set.as_str(),
        "server.sysctl.net.ipv4.tcp_syncookies=0",
        "server.sysctl.net.ipv4.tcp_abort_on_overflow=0,1",
    ]);
    let o = util::run("envoy-somaxconn-128", &out, &sets);
    assert_eq!(o.status.code(), Some(0), "{}", util::stderr(&o));
    let cmp = util::comparison(&out).expect("comparison.json");
    let runs = cmp["runs"].as_array().unwrap();
    assert_eq!(runs.len(), 2);
    assert_eq!(
        cmp["axes"][0],
        "server.sysctl.net.ipv4.tcp_abort_on_overflow"
    );
    let csv = std::fs::read_to_string(out.join("comparison.csv")).unwrap();
    assert_eq!(csv.lines().count(), 3, "{csv}");

    let abort0 = summary(&out.join(runs[0]["dir"].as_str().unwrap()));
    let abort1 = summary(&out.join(runs[1]["dir"].as_str().unwrap()));
    assert_eq!(
        (&abort0["family"], &abort1["family"]),
        (&family.into(), &family.into())
    );
    assert_eq!(
        abort0["sysctl"]["server"]["net.ipv4.tcp_abort_on_overflow"],
        "0"
    );
    assert_eq!(
        abort1["sysctl"]["server"]["net.ipv4.tcp_abort_on_overflow"],
        "1"
    );

    assert_eq!(outcome(&abort0, "reset_after_connect"), 0);
    assert_eq!(counter(&abort0, "server", "TcpExt.EmbryonicRsts"), 0);
    assert!(counter(&abort0, "server", "TcpExt.ListenOverflows") > 100);

    // A reset the client saw after connect() returned, or (on a busy machine) before the storm's
    // connect() had returned: both are one request socket unlinked.
    let resets =
        (outcome(&abort1, "reset_after_connect") + outcome(&abort1, "connect_reset")) as f64;
    let embryonic = counter(&abort1, "server", "TcpExt.EmbryonicRsts") as f64;
    assert!(resets > 100.0, "only {resets} resets");
    assert!(
        (resets - embryonic).abs() <= 0.02 * embryonic,
        "reset_after_connect + connect_reset {resets} vs EmbryonicRsts {embryonic}"
    );
    // The client had completed its handshake: its socket was ESTABLISHED when the RST came.
    let estab = counter(&abort1, "client", "Tcp.EstabResets") as f64;
    assert!(
        (estab - resets).abs() <= 0.02 * resets,
        "client EstabResets {estab} vs reset_after_connect + connect_reset {resets}"
    );
}

/// With syncookies=2 no request socket exists, so nothing can be reset: cookie ACKs that meet
/// the full accept queue are validated and dropped silently, whatever abort_on_overflow says.
#[test]
fn syncookies_2_never_resets_even_with_abort_on_overflow() {
    syncookies_2_never_resets("ipv4");
}

/// The same on IPv6, where the cookies are `cookie_v6_check`'s.
#[test]
fn syncookies_2_never_resets_even_with_abort_on_overflow_on_ipv6() {
    syncookies_2_never_resets("ipv6");
}

fn syncookies_2_never_resets(family: &str) {
    let _lab = util::lab();
    let (_tmp, out) = out_dir();
    let family_set = format!("family={family}");
    let o = util::run(
        "envoy-somaxconn-128",
        &out,
        &[
            &family_set,
            "link.rtt=20ms",
            "server.backlog=64",
            "server.accept_rate=200",
            "server.sysctl.net.ipv4.tcp_syncookies=2",
            "server.sysctl.net.ipv4.tcp_abort_on_overflow=1",
            "client.arrival=burst",
            "client.rate=",
            "client.burst_size=400",
            "client.connections=400",
            "client.duration=1s",
            "client.connect_timeout=5s",
            "client.response_timeout=5s",
            "expect=",
        ],
    );
    assert_eq!(o.status.code(), Some(0), "{}", util::stderr(&o));
    let s = summary(&out);
    assert_eq!(s["family"], family);
    assert!(
        counter(&s, "server", "TcpExt.ListenOverflows") > 0,
        "no overflow: {}",
        s["counters"]
    );
    assert!(counter(&s, "server", "TcpExt.SyncookiesRecv") > 0);
    assert_eq!(counter(&s, "server", "TcpExt.SyncookiesSent"), 400);
    assert_eq!(counter(&s, "server", "TcpExt.EmbryonicRsts"), 0);
    assert_eq!(counter(&s, "server", "Tcp.OutRsts"), 0);
    assert_eq!(outcome(&s, "reset_after_connect"), 0);
    assert_eq!(outcome(&s, "connect_reset"), 0);
    // No request sockets. sock_diag's SYN_RECV also lists a child socket in the instant between
    // its creation from a cookie and ESTABLISHED, which a 10 ms sampler can catch.
    assert!(
        s["listen"]["syn_recv_max_seen"].as_u64().unwrap() <= 2,
        "{}",
        s["listen"]
    );
}

/// `client.request_bytes = 0`: the server greets first and the client sends nothing.
#[test]
fn server_speaks_first_when_the_client_sends_nothing() {
    let _lab = util::lab();
    let (_tmp, out) = out_dir();
    let o = util::run(
        "envoy-somaxconn-128",
        &out,
        &[
            "server.accept=fast",
            "server.accept_rate=",
            "server.response_bytes=10",
            "client.request_bytes=0",
            "client.connections=200",
            "client.rate=1000",
            "expect=",
        ],
    );
    assert_eq!(o.status.code(), Some(0), "{}", util::stderr(&o));
    let s = summary(&out);
    assert_eq!(outcome(&s, "ok"), 200);
    assert_eq!(s["server"]["served"], 200);
    let greeting = "HTTP/1.1 200 OK\r\nContent-Length: 10\r\nConnection: close\r\n\r\n".len() + 10;
    for c in util::connections(&out) {
        assert_eq!(c["bytes"], greeting.to_string(), "{c:?}");
    }
    // No request: the client sent only its SYN, ACKs and FIN.
    // TCPOrigDataSent counts the FIN too: one per connection, and nothing else.
    assert_eq!(
        counter(&s, "client", "TcpExt.TCPOrigDataSent"),
        200,
        "{}",
        s["counters"]
    );
    let client_out = counter(&s, "client", "Tcp.OutSegs");
    assert!(
        client_out <= 200 * 5,
        "client sent {client_out} segments for 200 silent connections"
    );
}

/// `client.close = "rst"` (SO_LINGER 0) ends every connection with an RST instead of a FIN, as
/// Envoy and Java clients abort: the client's kernel counts each one as TCPAbortOnData. `fin`
/// aborts none and sends no RST. The trace leaves those RSTs out, and the server's sockets they
/// reset (two events per connection that cost the reader more than a quarter of a core in a fast
/// storm), and says so: a storm the server keeps up with has no event with either close.
#[test]
fn an_rst_close_aborts_every_connection_and_a_fin_close_none() {
    let _lab = util::lab();
    for (close, aborts) in [("rst", 300), ("fin", 0)] {
        let (_tmp, out) = out_dir();
        let close_set = format!("client.close={close}");
        let o = util::run(
            "envoy-somaxconn-128",
            &out,
            &[
                "server.accept=fast",
                "server.accept_rate=",
                "client.connections=300",
                "client.rate=1000",
                close_set.as_str(),
                "expect=",
            ],
        );
        assert_eq!(o.status.code(), Some(0), "{}", util::stderr(&o));
        let s = summary(&out);
        assert_eq!(outcome(&s, "ok"), 300, "{close}");
        assert_eq!(
            counter(&s, "client", "TcpExt.TCPAbortOnData"),
            aborts,
            "{close}: {}",
            s["counters"]
        );
        let rsts = counter(&s, "client", "Tcp.OutRsts");
        if aborts > 0 {
            assert!(
                rsts >= aborts,
                "{close}: {rsts} RSTs sent for {aborts} aborts"
            );
        } else {
            assert_eq!(rsts, 0, "{close}: {}", s["counters"]);
        }
        let d = &s["drops"];
        assert_eq!(d["recorded"], true, "{d}");
        assert_eq!(d["rst_closes_left_out"], close == "rst", "{d}");
        assert_eq!(d["events"], 0, "{close}: {d}");
        let report = std::fs::read_to_string(out.join("report.md")).unwrap();
        assert_eq!(
            report.contains("the trace leaves those RSTs out"),
            close == "rst",
            "{close}"
        );
        assert_eq!(
            report.contains("Not traced: the client's RST closes"),
            close == "rst",
            "{close}"
        );
    }
}
