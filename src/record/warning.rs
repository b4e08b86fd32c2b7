//! Warnings about a run that may not show what the user thinks. Each one's `Display` says what
//! went wrong and what to try next, as hyperfine's do; `summary.json → warnings` holds that text.

use std::fmt;

use serde::{Deserialize, Deserializer, Serialize, Serializer};

/// One reason to doubt a run, with the numbers that show it.
#[derive(Debug, Clone, PartialEq)]
pub enum Warning {
    /// The client started attempts late: it offered less load than planned.
    ScheduleLag { p99_ms: f64 },
    /// The trace ring overwrote events: the drop counts are short.
    TraceEventsLost { events: u64 },
    /// Reading the trace stopped early.
    TraceStoppedEarly { why: String },
    /// EADDRNOTAVAIL: the client ran out of local ports.
    OutOfPorts { connections: usize },
    /// EMFILE/ENFILE: the client ran out of file descriptors.
    OutOfDescriptors { connections: usize },
    /// A storm meant to overflow the accept queue did not (`bursts`: the arrivals were bursts).
    NoOverflow { bursts: bool },
    /// The delay line lost packets nobody asked it to drop.
    LinkLoss { ring_drops: u64, refused: u64 },
    /// The delay line's calibration was capped (the machine stalled).
    CalibrationCapped { used_us: f64 },
    /// The delay line still held packets when the lab stopped: what they would have caused is
    /// missing from the counters.
    LinkNotSettled { packets: u64, settle_ms: u64 },
    /// The TUN rings' drop counters could not be read.
    RingDropsUnknown,
    /// The delay line delivered packets late.
    LinkLate { p99_us: u64 },
    /// Sampler ticks that could not read the counters.
    SamplerFailed { ticks: u64 },
    /// SYNs of the flood the kernel refused to send.
    FloodRefused { syns: u64 },
    /// Ctrl-C ended the storm early.
    Interrupted { attempted: u64, planned: u64 },
    /// Expectations on `drops.*` set aside because nothing was traced.
    DropExpectationsUnchecked { why: String, texts: Vec<String> },
    /// The machine-wide trace evidence does not fit this run's own counters (see
    /// `Summary::trace_doubts`): the report withholds the sentences it would support.
    TraceNotOurs { doubts: Vec<String> },
    /// The machine itself dropped packets during the storm (drop reasons that are the host's
    /// limits, not the listen queue's), largest first.
    MachineDrops { reasons: Vec<(String, u64)> },
    /// Attempts that never started: the client's in-flight budget was spent.
    NotStarted { connections: u64, budget: u64 },
    /// The client was a program of the user's own (`client.command`): no per-connection rows.
    NoConnectionRows { command: String, log: String },
    /// A warning read back from a result folder: its text as written.
    Recorded(String),
}

impl Warning {
    /// The warnings about the client's own limits and kind.
    fn client(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Warning::NotStarted { connections, budget } => write!(
                f,
                "{connections} connections were not started (outcome not_started): when they were \
                 due, the client already had {budget} open, its in-flight budget \
                 (client.max_in_flight, at most what ulimit -n allows), or no descriptor was left. That is a limit of this \
                 client, not a failure of the server: the offered load was lower than the \
                 schedule; raise client.max_in_flight or shorten the timeouts"
            ),
            Warning::NoConnectionRows { command, log } => write!(
                f,
                "the client was a program of your own (`{command}`): there are no per-connection \
                 rows, so connections.csv is empty and outcomes and latencies are absent; its own \
                 account is in {log}, and the kernel's side (counters, queues, drops) is recorded \
                 as for any storm"
            ),
            _ => Ok(()),
        }
    }
}

impl fmt::Display for Warning {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Warning::NotStarted { .. } | Warning::NoConnectionRows { .. } => self.client(f),
            Warning::ScheduleLag { p99_ms } => write!(
                f,
                "the storm fell behind its schedule (start lag p99 {p99_ms:.1} ms): the client was \
                 CPU-bound, so it offered less load than planned; lower client.rate or run on an idle machine"
            ),
            Warning::TraceEventsLost { events } => write!(
                f,
                "{events} trace events were lost in the kernel's buffer: the counts in drops are short \
                 (drops.csv misses them too); a slower storm or fewer events (trace_drops = false) helps"
            ),
            Warning::TraceStoppedEarly { why } => {
                write!(f, "the trace stopped early ({why}): the counts in drops are short")
            }
            Warning::OutOfPorts { connections } => write!(
                f,
                "{connections} connections failed with EADDRNOTAVAIL: the client ran out of local ports; widen \
                 client.sysctl.\"net.ipv4.ip_local_port_range\" or lower client.rate"
            ),
            Warning::OutOfDescriptors { connections } => write!(
                f,
                "{connections} connections failed for lack of file descriptors (EMFILE): too many connections in \
                 flight; shorten client.connect_timeout/response_timeout or lower client.rate"
            ),
            Warning::NoOverflow { bursts } => write!(
                f,
                "TcpExt.ListenOverflows did not move: the accept queue never overflowed, so this run does \
                 not reproduce a listen-queue incident; raise {} or lower server.backlog",
                if *bursts {
                    "client.burst_size"
                } else {
                    "client.rate"
                }
            ),
            Warning::LinkLoss { ring_drops, refused } => write!(
                f,
                "the emulated link lost {} packets nobody asked it to drop ({ring_drops} in the TUN rings, \
                 {refused} refused writes): results include loss that was not configured; lower \
                 client.rate or run on an idle machine",
                ring_drops + refused
            ),
            Warning::CalibrationCapped { used_us } => write!(
                f,
                "the delay line's calibration measured an implausible overhead (the machine \
                 stalled) and used {used_us:.0} µs per direction instead; RTTs may be slightly long"
            ),
            Warning::LinkNotSettled { packets, settle_ms } => write!(
                f,
                "the emulated link still held {packets} packets when the lab stopped (it waited \
                 {settle_ms} ms after the last connection): what they would have caused in the \
                 kernel is missing from the counters; raise settle"
            ),
            Warning::RingDropsUnknown => f.write_str(
                "the TUN rings' drop counters could not be read: link.ring_drops proves nothing \
                 in this run",
            ),
            Warning::LinkLate { p99_us } => write!(
                f,
                "the delay line delivered 1 % of packets more than {:.1} ms late (p99): the machine \
                 stalled or was CPU-bound, so some RTTs were longer than link.rtt",
                *p99_us as f64 / 1000.0
            ),
            Warning::SamplerFailed { ticks } => write!(
                f,
                "{ticks} of the sampler's ticks could not read the counters; timeseries.csv has gaps there"
            ),
            Warning::FloodRefused { syns } => write!(
                f,
                "the SYN flood could not send {syns} of its SYNs (the kernel refused them)"
            ),
            Warning::Interrupted { attempted, planned } => write!(
                f,
                "interrupted: {attempted} of {planned} planned connections were attempted"
            ),
            Warning::DropExpectationsUnchecked { why, texts } => write!(
                f,
                "{} expectation(s) on drops.* not checked, because drop reasons were not recorded ({why}): {}",
                texts.len(),
                texts.join("; ")
            ),
            Warning::TraceNotOurs { doubts } => write!(
                f,
                "the kernel's drop reasons are not this run's alone: {}; the report does not split \
                 the overflows by drop reason (the tcp_* events, filtered by this lab's own \
                 addresses, are exact); run alone (without --concurrent, on an idle machine) for \
                 an exact split",
                doubts.join("; ")
            ),
            Warning::MachineDrops { reasons } => machine_drops(f, reasons),
            Warning::Recorded(text) => f.write_str(text),
        }
    }
}

/// Written as its text, so `summary.json` reads as plain sentences.
impl Serialize for Warning {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.collect_str(self)
    }
}

fn machine_drops(f: &mut fmt::Formatter<'_>, reasons: &[(String, u64)]) -> fmt::Result {
    let list: Vec<String> = reasons.iter().map(|(r, n)| format!("{n} {r}")).collect();
    let meanings: Vec<String> = reasons
        .iter()
        .filter_map(|(r, _)| super::drops::machine_reason(r).map(|m| format!("{r}: {m}")))
        .collect();
    write!(
        f,
        "the machine itself dropped packets during the storm ({}): {}. These are the host's \
         limits, not the listen queue's, and some may be the storm's own packets; a slower storm \
         (client.rate) or an idle machine avoids them",
        list.join(", "),
        meanings.join("; ")
    )
}

/// Read back as [`Warning::Recorded`]: the text is what matters once the run is over.
impl<'de> Deserialize<'de> for Warning {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Warning, D::Error> {
        String::deserialize(d).map(Warning::Recorded)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_warning_is_its_text_both_ways() {
        let w = Warning::Interrupted {
            attempted: 3,
            planned: 10,
        };
        let json = serde_json::to_string(&w).unwrap();
        assert_eq!(
            json,
            "\"interrupted: 3 of 10 planned connections were attempted\""
        );
        let back: Warning = serde_json::from_str(&json).unwrap();
        assert_eq!(back.to_string(), w.to_string());
    }
}
