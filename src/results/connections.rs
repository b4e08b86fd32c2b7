//! `connections.csv`: one row per connection, its columns named once here for the writer
//! ([`super::write::ConnectionsCsv`]) and the reader ([`read`]).

use std::path::Path;

use super::files;
use super::table::Table;
use crate::error::Failure;
use crate::record::{Conn, Outcome};

/// Column names, in the order of [`crate::record::ConnRecord`]'s fields (a test holds them to it).
pub mod col {
    pub const ID: &str = "id";
    pub const SCHEDULED_US: &str = "scheduled_us";
    pub const STARTED_US: &str = "started_us";
    pub const CONNECTED_US: &str = "connected_us";
    pub const FIRST_BYTE_US: &str = "first_byte_us";
    pub const FINISHED_US: &str = "finished_us";
    pub const OUTCOME: &str = "outcome";
    pub const ERRNO: &str = "errno";
    pub const RETRANSMITS: &str = "retransmits";
    pub const LOCAL_PORT: &str = "local_port";
    pub const BYTES: &str = "bytes";
}

/// The header of `connections.csv`.
pub const COLUMNS: &[&str] = &[
    col::ID,
    col::SCHEDULED_US,
    col::STARTED_US,
    col::CONNECTED_US,
    col::FIRST_BYTE_US,
    col::FINISHED_US,
    col::OUTCOME,
    col::ERRNO,
    col::RETRANSMITS,
    col::LOCAL_PORT,
    col::BYTES,
];

/// Reads `connections.csv` as [`Conn`]s, the part of each row the pictures and the report use:
/// the columns a folder cannot do without are required, the others (added by later versions)
/// read as empty where absent.
pub fn read(dir: &Path) -> Result<Vec<Conn>, Failure> {
    // Row by row: a million rows as text would take several times their records' memory.
    let (t, mut reader) = Table::open(dir, files::CONNECTIONS)?;
    t.require(col::ID)?;
    t.require(col::FINISHED_US)?;
    let scheduled = t.require(col::SCHEDULED_US)?;
    let outcome = t.require(col::OUTCOME)?;
    let started = t.column(col::STARTED_US);
    let connected = t.require(col::CONNECTED_US)?;
    let retransmits = t.column(col::RETRANSMITS);
    let mut out = Vec::new();
    t.each(&mut reader, |row| {
        let name = row.text(outcome);
        let o = Outcome::from_name(name)
            .ok_or_else(|| row.invalid(outcome, "an outcome (ok, connect_timeout, ...)"))?;
        let scheduled_us = row.u64(scheduled)?;
        out.push(Conn {
            scheduled_us,
            started_us: row.opt_u64(started)?.unwrap_or(scheduled_us),
            connected_us: row.opt_u64(Some(connected))?,
            outcome: o,
            retransmits: row.opt_int(retransmits, "a count")?.unwrap_or(0),
        });
        Ok(())
    })?;
    Ok(out)
}
