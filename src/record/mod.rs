//! What a run recorded: one row per connection, the counter and queue series, and the setting it
//! ran in. Everything here is plain data; summaries and exports are computed from it.

pub mod drops;
pub mod environment;
pub mod glossary;
pub mod outcome;
pub mod percentiles;
pub mod sizing;
pub mod stats;
pub mod summary;
pub mod tally;
pub mod verdict;
pub mod warning;

use serde::Serialize;

pub use environment::Environment;
pub use outcome::Outcome;
pub use tally::Tally;
pub use verdict::Verdict;
pub use warning::Warning;

/// One connection attempt. Times are microseconds since the storm's time zero.
#[derive(Debug, Clone, Serialize)]
pub struct ConnRecord {
    pub id: u64,
    /// When the schedule said this attempt should start.
    pub scheduled_us: u64,
    /// When `connect()` was really called (later than scheduled if the client lagged).
    pub started_us: u64,
    /// When the handshake completed, as far as the client knows.
    pub connected_us: Option<u64>,
    /// When the first response byte arrived.
    pub first_byte_us: Option<u64>,
    pub finished_us: u64,
    pub outcome: Outcome,
    /// errno of the failure, where there was one.
    pub errno: Option<i32>,
    /// `tcpi_total_retrans` just before close: SYN retransmissions for a connect that stalled.
    pub retransmits: u32,
    pub local_port: Option<u16>,
    /// Response bytes received.
    pub bytes: u64,
}

impl ConnRecord {
    /// Connect latency from the *scheduled* start, which charges client lag to the latency.
    pub fn connect_latency_us(&self) -> Option<u64> {
        self.brief().connect_latency_us()
    }

    /// What the pictures and the report read of this record.
    pub fn brief(&self) -> Conn {
        Conn {
            scheduled_us: self.scheduled_us,
            started_us: self.started_us,
            connected_us: self.connected_us,
            retransmits: self.retransmits,
            outcome: self.outcome,
        }
    }
}

/// A connection as the pictures and the report read it back from `connections.csv`: the
/// fields of [`ConnRecord`] they use, 40 bytes instead of 96, because a million rows are read
/// back after a run.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Conn {
    pub scheduled_us: u64,
    pub started_us: u64,
    pub connected_us: Option<u64>,
    pub retransmits: u32,
    pub outcome: Outcome,
}

impl Conn {
    /// Connect latency from the *scheduled* start, which charges client lag to the latency.
    pub fn connect_latency_us(&self) -> Option<u64> {
        self.connected_us
            .map(|c| c.saturating_sub(self.scheduled_us))
    }
}

/// Where a storm's records go as its connections finish (`connections.csv`, which the results
/// module owns), so that a run holds no row of its own and a run killed midway keeps the rows
/// it had written.
pub trait RowSink {
    fn push(&mut self, rec: ConnRecord) -> anyhow::Result<()>;
    /// Writes out everything buffered; called about every 100 ms while the storm runs, and
    /// once after its last connection (then every row is out, in id order).
    fn flush(&mut self, last: bool) -> anyhow::Result<()>;
}
