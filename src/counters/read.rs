//! The only code that opens `/proc/net/netstat`, `/proc/net/snmp` and `/proc/net/snmp6`.
//!
//! `/proc/self/net` follows the *process's* (main thread's) namespace, not the calling thread's,
//! so the files are opened as `/proc/thread-self/net/...` from a thread inside the lab namespace.
//! An open proc-net file stays bound to the namespace it was opened in; re-reading it from offset
//! 0 regenerates its text, so the sampler opens each file once and reads it from any thread.

use std::fs::File;
use std::io::{Read, Seek, SeekFrom};

use super::netstat::Snapshot;
use crate::error::Failure;
use crate::family::Family;
use crate::netns::Netns;

/// Open counter files of one namespace.
pub struct CounterFiles {
    pub label: &'static str,
    files: [File; 2],
    /// `/proc/net/snmp6`, in a lab that speaks IPv6: read into snapshots (`counters.csv`, the
    /// summary) but not by the sampler's fast path, which keeps to the TCP counters.
    snmp6: Option<File>,
    buf: String,
}

impl CounterFiles {
    /// Opens the namespace's counter files from a thread inside it (with `/proc/net/snmp6` on
    /// IPv6).
    pub fn open(ns: &Netns, family: Family) -> Result<CounterFiles, Failure> {
        let label = ns.label();
        let files = ns.run(|| -> std::io::Result<([File; 2], Option<File>)> {
            let snmp6 = match family {
                Family::Ipv4 => None,
                Family::Ipv6 => Some(File::open("/proc/thread-self/net/snmp6")?),
            };
            Ok((
                [
                    File::open("/proc/thread-self/net/netstat")?,
                    File::open("/proc/thread-self/net/snmp")?,
                ],
                snmp6,
            ))
        })?;
        let files = files.map_err(|e| {
            Failure::environment(format!(
                "cannot open /proc/net/netstat in the {label} namespace: {e}"
            ))
        })?;
        let (files, snmp6) = files;
        Ok(CounterFiles {
            label,
            files,
            snmp6,
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
            snmp6: None,
            buf: String::new(),
        })
    }

    /// Reads every counter now.
    pub fn read(&mut self) -> Result<Snapshot, Failure> {
        self.fill()?;
        let bad = |e: String| Failure::environment(format!("parsing {} counters: {e}", self.label));
        let mut snapshot = Snapshot::parse(&self.buf).map_err(bad)?;
        if let Some(f) = &mut self.snmp6 {
            self.buf.clear();
            f.seek(SeekFrom::Start(0))
                .and_then(|_| f.read_to_string(&mut self.buf))
                .map_err(|e| {
                    Failure::environment(format!("reading {} snmp6 counters: {e}", self.label))
                })?;
            snapshot.add_snmp6(&self.buf).map_err(bad)?;
        }
        Ok(snapshot)
    }

    /// Reads every counter now into `values`, indexed like `layout.names` (which grows as
    /// counters appear). The sampler's fast path: while the files' header lines stay the same,
    /// no name is parsed or allocated. They can change during a run: `/proc/net/snmp` prints its
    /// `IcmpMsg:` lines only once a message type has been counted, so the first ICMP message in
    /// a namespace adds counters; the layout then learns them, and old indices stay valid.
    pub fn read_values(
        &mut self,
        layout: &mut Layout,
        values: &mut Vec<i64>,
    ) -> Result<(), Failure> {
        self.fill()?;
        let bad = |e: String| Failure::environment(format!("parsing {} counters: {e}", self.label));
        let mut headers = String::with_capacity(layout.headers.len());
        for (header, _) in line_pairs(&self.buf) {
            headers.push_str(header);
            headers.push('\n');
        }
        if headers != layout.headers {
            // New or first layout: validate the text, then map each position to a name's index.
            Snapshot::parse(&self.buf).map_err(bad)?;
            layout.order.clear();
            for line in headers.lines() {
                let (section, names) = line.split_once(':').unwrap_or(("", ""));
                for n in names.split_whitespace() {
                    let name = format!("{section}.{n}");
                    let next = layout.names.len();
                    let idx = *layout.index.entry(name.clone()).or_insert(next);
                    if idx == next {
                        layout.names.push(name);
                    }
                    layout.order.push(idx);
                }
            }
            layout.headers = headers;
        }
        values.resize(layout.names.len(), 0);
        let mut pos = 0;
        for (_, line) in line_pairs(&self.buf) {
            let (_, nums) = line.split_once(':').unwrap_or(("", ""));
            for num in nums.split_whitespace() {
                let idx = *layout
                    .order
                    .get(pos)
                    .ok_or_else(|| bad("more values than names".into()))?;
                values[idx] = num
                    .parse()
                    .map_err(|_| bad(format!("`{num}` is not a number")))?;
                pos += 1;
            }
        }
        if pos != layout.order.len() {
            return Err(bad("fewer values than names".into()));
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

/// The (header, values) line pairs of `/proc/net/netstat` + `/proc/net/snmp` text.
fn line_pairs(text: &str) -> impl Iterator<Item = (&str, &str)> {
    let mut lines = text.lines().filter(|l| !l.trim().is_empty());
    std::iter::from_fn(move || Some((lines.next()?, lines.next()?)))
}

/// The names of a namespace's counters (`TcpExt.ListenOverflows`), append-only, and where each
/// value of the current file layout goes, for [`CounterFiles::read_values`].
#[derive(Debug, Clone, Default)]
pub struct Layout {
    pub names: Vec<String>,
    index: std::collections::HashMap<String, usize>,
    /// For each value in file order, its index in `names`.
    order: Vec<usize>,
    /// The header lines the order was computed from.
    headers: String,
}
