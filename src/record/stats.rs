//! What each producer of a run did, as `summary.json` holds it: the sampler, the SYN flood, the
//! server and the delay line. Plain data: the producers fill these types, the summary carries
//! them, and the reports read them back.

use serde::{Deserialize, Serialize};

/// What sampling the counters and the listen queue cost, for the summary: it runs beside the
/// storm on the same cores.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
#[serde(default)]
pub struct SamplingStats {
    pub interval_ms: f64,
    pub samples: u64,
    /// Ticks that came after the next one was already due (the sampler fell behind).
    pub late: u64,
    /// Ticks whose counters could not be read (the point is missing from the series).
    pub failed: u64,
    /// CPU time of the sampler thread (user + system), ms.
    pub cpu_ms: f64,
    /// That CPU time as a share of one core over the sampling span.
    pub cpu_share: f64,
    /// Samples that counted SYN-RECV, and those that skipped the count to keep within its CPU
    /// budget (the count walks every socket of the namespace; see `counters::diag`).
    pub syn_recv_counted: u64,
    pub syn_recv_skipped: u64,
    /// The share of one core the SYN-RECV count may take, which spaces it.
    pub syn_recv_share: f64,
    /// Samples that read the counters, and those that skipped them to keep within their CPU
    /// budget (`counter_share` of one core; the queue is read every sample): a skipped sample's
    /// counter cells in timeseries.csv are empty.
    pub counters_read: u64,
    pub counters_skipped: u64,
    pub counter_share: f64,
    /// Peak memory of the stored series, bytes (estimate).
    pub series_bytes: u64,
}

/// What the SYN flood sent.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
#[serde(default)]
pub struct FloodStats {
    /// SYNs handed to the kernel.
    pub sent: u64,
    /// Sends the kernel refused (e.g. ENOBUFS).
    pub errors: u64,
    /// SYNs per second actually achieved over the flood's span.
    pub achieved_rate: f64,
}

/// What the server did.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
#[serde(default)]
pub struct ServerStats {
    /// Connections taken off the accept queue (the lab's own server only).
    pub accepted: u64,
    /// Connections that got a full response (the lab's own server only).
    pub served: u64,
    /// The program of the user's own that was the server (absent for the lab's own).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub program: Option<ProgramStats>,
}

/// A program of the user's own as the server (`server.command`).
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
#[serde(default)]
pub struct ProgramStats {
    /// The command line, as run.
    pub command: String,
    /// How it ended once the lab stopped it: "exited with 0", "was killed by signal 15 (SIGTERM)".
    pub exit: String,
    /// Its stdout and stderr, in the result folder.
    pub log: String,
}

/// A live listener that `watch` observed (it started nothing, changed nothing).
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
#[serde(default)]
pub struct WatchStats {
    /// The TCP port watched.
    pub port: u16,
    /// Which network namespace: `host` (the watcher's own), or the path given (`--netns`,
    /// `/proc/PID/ns/net` for `--pid`).
    pub namespace: String,
    /// Its inode, as in `ls -l /proc/PID/ns/net`.
    pub inode: u64,
}

/// Counts for one direction of the delay line.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
#[serde(default)]
pub struct DirectionStats {
    /// Packets the pump read from the sending namespace.
    pub packets: u64,
    /// Of those, the ones read once the line was armed, which `link.loss` could take: the
    /// calibration's 120 handshakes before it are not (`lost` / this is the loss's share).
    pub packets_armed: u64,
    /// Dropped on purpose (`link.loss`).
    pub lost: u64,
    /// Written into the receiving namespace.
    pub delivered: u64,
    /// Writes the receiving TUN refused (should stay 0).
    pub write_errors: u64,
    /// Most packets held at once.
    pub max_queued: u64,
    /// Still held when the lab stopped (e.g. the last ACKs of connections in TIME_WAIT):
    /// `packets` = `lost` + `delivered` + `write_errors` + this.
    pub held_at_stop: u64,
}

/// What the delay line did during a run (absent on a plain veth link).
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
#[serde(default)]
pub struct LinkStats {
    pub rtt_ms: f64,
    pub jitter_ms: f64,
    pub loss_to_server: f64,
    pub loss_to_client: f64,
    /// The pump's own overhead per direction, measured before the run and subtracted from each
    /// packet's hold so a handshake takes the configured RTT, not RTT plus overhead.
    pub calibration_us: f64,
    /// The measured overhead was implausibly large (a stalled machine) and was capped.
    pub calibration_capped: bool,
    pub to_server: DirectionStats,
    pub to_client: DirectionStats,
    /// How late packets left the pump against their due time, µs: p50, p99 and max. Large
    /// values mean the machine stalled (the pump could not run), not a wrong delay.
    pub lateness_us_p50: u64,
    pub lateness_us_p99: u64,
    pub lateness_us_max: u64,
    /// Packets the TUN rings dropped during the run (`tx_dropped` of `bl-dl` in the server and
    /// client namespaces): loss nobody asked for. 0 in a trustworthy run.
    pub ring_drops: u64,
    /// The rings' counters could not be read, so `ring_drops` proves nothing.
    pub ring_drops_unknown: bool,
}
