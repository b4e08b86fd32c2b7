//! `connections.csv`: one row per connection, its columns named once here for the writer
//! ([`super::write::RunWriter::connections`]) and the reader ([`read`]).

use std::path::Path;

use super::files;
use super::table::Table;
use crate::error::Failure;
use crate::record::{ConnRecord, Outcome};

/// Column names, in the order of [`ConnRecord`]'s fields (a test holds them to it).
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

/// Reads `connections.csv`: the columns a folder cannot do without are required, the others
/// (added by later versions) read as empty where absent.
pub fn read(dir: &Path) -> Result<Vec<ConnRecord>, Failure> {
    // Row by row: a million rows as text would take several times their records' memory.
    let (t, mut reader) = Table::open(dir, files::CONNECTIONS)?;
    let id = t.require(col::ID)?;
    let scheduled = t.require(col::SCHEDULED_US)?;
    let finished = t.require(col::FINISHED_US)?;
    let outcome = t.require(col::OUTCOME)?;
    let started = t.column(col::STARTED_US);
    let connected = t.require(col::CONNECTED_US)?;
    let first_byte = t.column(col::FIRST_BYTE_US);
    let retransmits = t.column(col::RETRANSMITS);
    let errno = t.column(col::ERRNO);
    let local_port = t.column(col::LOCAL_PORT);
    let bytes = t.column(col::BYTES);
    let mut out = Vec::new();
    t.each(&mut reader, |row| {
        let name = row.text(outcome);
        let o = Outcome::from_name(name)
            .ok_or_else(|| row.invalid(outcome, "an outcome (ok, connect_timeout, ...)"))?;
        let scheduled_us = row.u64(scheduled)?;
        out.push(ConnRecord {
            id: row.u64(id)?,
            scheduled_us,
            started_us: row.opt_u64(started)?.unwrap_or(scheduled_us),
            connected_us: row.opt_u64(Some(connected))?,
            first_byte_us: row.opt_u64(first_byte)?,
            finished_us: row.u64(finished)?,
            outcome: o,
            errno: row.opt_int(errno, "an errno")?,
            retransmits: row.opt_int(retransmits, "a count")?.unwrap_or(0),
            local_port: row.opt_int(local_port, "a port")?,
            bytes: row.opt_u64(bytes)?.unwrap_or(0),
        });
        Ok(())
    })?;
    Ok(out)
}
