//! What the kernel's names mean, in a few words: the drop reasons, trace rows and counters the
//! tables print. A row nobody explains is a row a reader skips or misreads; the terminal and the
//! report print these glosses beside them.

/// A short gloss of a drop reason (`kfree_skb`), a trace row or a counter (`Tcp.EstabResets`,
/// `TcpExt.ListenOverflows`); `None` for a name that explains itself or is not known.
pub fn gloss(name: &str) -> Option<&'static str> {
    Some(match name {
        // kfree_skb drop reasons
        "NOT_SPECIFIED" => "freed with no reason given (ordinary frees, e.g. a closed socket's queue)",
        "NO_SOCKET" => "no socket for it: the connection was already gone (reset, closed, or a cookie ACK at a full queue)",
        "TCP_LISTEN_OVERFLOW" => "a handshake's final ACK at a full accept queue",
        "TCP_OLD_SEQUENCE" => "a segment older than the window, e.g. a retransmission that crossed its ACK",
        "TCP_FLAGS" => "a segment with flags the socket's state does not take (e.g. data after a reset)",
        "TCP_INVALID_SYN" => "a SYN where none belongs (a retransmitted SYN for a known connection)",
        "TCP_RESET" => "an RST, consumed after it reset its socket",
        "TCP_ABORT_ON_DATA" => "data for a socket already closed by its process, answered with an RST",
        "TCP_OFOMERGE" => "an out-of-order segment merged away",
        "TCP_ZEROWINDOW" => "data beyond a zero receive window",
        "TCP_CLOSE" => "a segment for a socket being closed",
        "SOCKET_FILTER" => "dropped by a socket filter",
        "OTHERHOST" => "addressed to another host",
        // RST reasons (tcp_send_reset)
        "INVALID_SYN" => "Linux's name for the reset tcp_abort_on_overflow=1 sends",
        // trace rows
        "other states" => "data or FIN retransmissions, not SYNs",
        // counters
        "Tcp.EstabResets" => "connections reset while established or in CLOSE_WAIT",
        "Tcp.AttemptFails" => "connects that failed (SYN_SENT or SYN_RECV to CLOSED)",
        "Tcp.OutRsts" => "RSTs sent",
        "Tcp.RetransSegs" => "segments retransmitted (SYNs included)",
        "TcpExt.ListenOverflows" => "accept queue full: a SYN or final ACK dropped",
        "TcpExt.ListenDrops" => "every drop at a listener, overflows included",
        "TcpExt.TCPReqQFullDrop" => "SYN queue full, syncookies off: SYN dropped",
        "TcpExt.TCPReqQFullDoCookies" => "SYN queue full (or syncookies=2): a cookie instead",
        "TcpExt.SyncookiesSent" => "cookie SYN-ACKs sent",
        "TcpExt.SyncookiesRecv" => "cookie ACKs validated",
        "TcpExt.SyncookiesFailed" => "ACKs whose cookie did not validate",
        "TcpExt.EmbryonicRsts" => "handshakes ended by an RST, sent (tcp_abort_on_overflow=1) or received",
        "TcpExt.TCPSynRetrans" => "SYNs (client) or SYN-ACKs (server) retransmitted",
        "TcpExt.TCPTimeouts" => "retransmission timer expiries",
        "TcpExt.TCPBacklogDrop" => "a busy socket's backlog full (not the accept queue)",
        "TcpExt.TCPAbortOnData" => "aborts with an RST: an SO_LINGER 0 close, or data after close",
        _ => return None,
    })
}
