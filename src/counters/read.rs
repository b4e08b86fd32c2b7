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
        self.fill()?;
        Snapshot::parse(&self.buf)
            .map_err(|e| Failure::environment(format!("parsing {} counters: {e}", self.label)))
    }

    /// Reads every counter now as bare values, in the order of `layout.names`, which the first
    /// call fills in. The sampler's fast path: no name is allocated, and a kernel whose counter
    /// layout changed under a running lab (it cannot) would be an error, not a silent shift.
    pub fn read_values(&mut self, layout: &mut Layout, out: &mut Vec<i64>) -> Result<(), Failure> {
        self.fill()?;
        let bad = |e: String| Failure::environment(format!("parsing {} counters: {e}", self.label));
        if layout.names.is_empty() {
            // Validate the whole text once, then keep the file's order for positional reads.
            Snapshot::parse(&self.buf).map_err(bad)?;
            layout.headers.clear();
            for (i, line) in self
                .buf
                .lines()
                .filter(|l| !l.trim().is_empty())
                .enumerate()
            {
                if i % 2 == 0 {
                    let (section, names) = line.split_once(':').unwrap_or(("", ""));
                    layout
                        .names
                        .extend(names.split_whitespace().map(|n| format!("{section}.{n}")));
                    layout.headers.push_str(line);
                }
            }
        }
        out.clear();
        let mut headers = String::with_capacity(layout.headers.len());
        for (i, line) in self
            .buf
            .lines()
            .filter(|l| !l.trim().is_empty())
            .enumerate()
        {
            if i % 2 == 0 {
                headers.push_str(line);
                continue;
            }
            let (_, nums) = line.split_once(':').unwrap_or(("", ""));
            for num in nums.split_whitespace() {
                out.push(
                    num.parse()
                        .map_err(|_| bad(format!("`{num}` is not a number")))?,
                );
            }
        }
        if headers != layout.headers || out.len() != layout.names.len() {
            return Err(bad("the counter layout changed during the run".into()));
        }
        Ok(())
    }

    fn fill(&mut self) -> Result<(), Failure> {
        self.buf.clear();
        for f in &mut self.files {
            f.seek(SeekFrom::Start(0))
                .and_then(|_| f.read_to_string(&mut self.buf))
                .map_err(|e| {
                    Failure::environment(format!("reading {} counters: {e}", self.label))
                })?;
        }
        Ok(())
    }
}

/// The names of a namespace's counters in file order (`TcpExt.ListenOverflows`), and the header
/// lines they came from, for [`CounterFiles::read_values`].
#[derive(Debug, Clone, Default)]
pub struct Layout {
    pub names: Vec<String>,
    headers: String,
}
