//! The only code that opens `/proc/net/netstat` and `/proc/net/snmp`.
//!
//! `/proc/self/net` follows the *process's* (main thread's) namespace, not the calling thread's,
//! so the files are opened as `/proc/thread-self/net/...` from a thread inside the lab namespace.
//! An open proc-net file stays bound to the namespace it was opened in; re-reading it from offset
//! 0 regenerates its text, so the sampler opens each file once and reads it from any thread.

use std::fs::File;
use std::io::{Read, Seek, SeekFrom};

use super::netstat::Snapshot;
use crate::error::Failure;
use crate::topo::Netns;

/// Open counter files of one namespace.
pub struct CounterFiles {
    pub label: &'static str,
    files: [File; 2],
    buf: String,
}

impl CounterFiles {
    /// Opens the namespace's counter files from a thread inside it.
    pub fn open(ns: &Netns) -> Result<CounterFiles, Failure> {
        let label = ns.label();
        let files = ns.run(|| -> std::io::Result<[File; 2]> {
            Ok([
                File::open("/proc/thread-self/net/netstat")?,
                File::open("/proc/thread-self/net/snmp")?,
            ])
        })?;
        let files = files.map_err(|e| {
            Failure::environment(format!(
                "cannot open /proc/net/netstat in the {label} namespace: {e}"
            ))
        })?;
        Ok(CounterFiles {
            label,
            files,
            buf: String::with_capacity(16 * 1024),
        })
    }

    /// Opens the host namespace's counter files (for tests and sanity checks only).
    pub fn open_host() -> std::io::Result<CounterFiles> {
        Ok(CounterFiles {
            label: "host",
            files: [
                File::open("/proc/self/net/netstat")?,
                File::open("/proc/self/net/snmp")?,
            ],
            buf: String::new(),
        })
    }

    /// Reads every counter now.
    pub fn read(&mut self) -> Result<Snapshot, Failure> {
        self.buf.clear();
        for f in &mut self.files {
            f.seek(SeekFrom::Start(0))
                .and_then(|_| f.read_to_string(&mut self.buf))
                .map_err(|e| {
                    Failure::environment(format!("reading {} counters: {e}", self.label))
                })?;
        }
        Snapshot::parse(&self.buf)
            .map_err(|e| Failure::environment(format!("parsing {} counters: {e}", self.label)))
    }
}
