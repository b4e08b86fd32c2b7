//! backlog-lab: reproduce Linux TCP listen-queue failures (SYN-queue and accept-queue overflows)
//! on demand, inside network namespaces the lab builds and tears down itself.
//!
//! # Layout
//! From the ground floor up; a module imports only from the floors below it (a test,
//! `tests/layers.rs`, keeps it so).
//!
//! - [`record`]: the ground floor, plain result types that import nothing else of the crate:
//!   per-connection records and outcomes, every producer's stats, the summary, verdicts,
//!   warnings, the environment.
//! - [`error`]: the failures the CLI maps to exit codes. [`units`]: numbers for people.
//!   [`wire`]: who talks first, and the request and response bytes client and server share.
//!   [`family`]: the address family and the lab's addresses in it. [`interrupt`]: stop
//!   signals (SIGINT, SIGTERM, SIGHUP) recorded as requests. [`sockdiag`]: the kernel's socket
//!   table (dump, destroy). [`warden`]: processes that clean up after a lab killed outright.
//! - [`scenario`]: TOML scenario files, `--set` overrides, comparisons, and `[expect]`
//!   assertions (the one reader of `summary.json` by path).
//! - [`plan`]: the validated [`plan::RunPlan`] every run is driven by.
//! - [`topo`]: the two hosts: network namespaces held by fd, the link (veth, or TUN and the
//!   delay line), per-namespace sysctls.
//! - [`server`]: the deliberately slow server (listen backlog, one function per accept policy).
//! - [`client`]: the open-loop storm of short connections, its arrival schedules, the SYN flood.
//! - [`counters`]: `/proc/net/netstat` + `/proc/net/snmp` per namespace, and sock_diag queue reads.
//! - [`drops`]: where packets died: the kernel's drop reasons and TCP trace events (tracefs).
//! - [`lab`]: the lab standing, one storm through it, and the summary and verdict of it.
//! - [`results`]: the result folder, both ways: its file names, writing it, reading it back.
//! - [`sizing`]: what backlog a workload needs: the model of both queues, its closed-form
//!   cross-checks, and the search by real runs.
//! - [`plots`]: the charts of a run or a comparison (PNG and SVG, no system fonts).
//! - [`report`]: `report.md` and `report.html`, from a result folder's files.
//! - [`terminal`]: the progress line and the tables printed at the end of a run.
//! - [`commands`]: one file per subcommand; [`cli`]: the command line (clap).

pub mod cli;
pub mod client;
pub mod commands;
pub mod counters;
pub mod drops;
pub mod error;
pub mod family;
pub mod interrupt;
pub mod lab;
pub mod netns;
pub mod plan;
pub mod plots;
pub mod program;
pub mod record;
pub mod report;
pub mod results;
pub mod scenario;
pub mod server;
pub mod sizing;
pub mod sockdiag;
pub mod terminal;
pub mod topo;
pub mod units;
pub mod warden;
pub mod wire;

pub use commands::dispatch as run_cli;
