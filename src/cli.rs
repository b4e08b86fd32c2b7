//! Command-line interface (clap derive). Doc comments here are the `--help` text.

use std::path::PathBuf;

use clap::{Parser, Subcommand};

/// Reproduce Linux TCP listen-queue failures on demand.
///
/// backlog-lab builds two network namespaces (a server and a client host) joined by a veth
/// pair, sets their kernel knobs (somaxconn, tcp_abort_on_overflow, syncookies, ...), runs a
/// deliberately slow-accepting server against an open-loop storm of short connections, and
/// records what every connection and the kernel saw. It never changes the host's own settings,
/// and everything it builds disappears when it exits, however it exits.
///
/// Exit codes: 0 expectations held, 1 an expectation failed, 2 bad input, 3 the environment
/// cannot host the lab (privileges, kernel features), 128 + the signal when a stop
/// signal (Ctrl-C 130, SIGTERM 143, SIGHUP 129) interrupted it.
#[derive(Debug, Parser)]
#[command(name = "backlog-lab", version, propagate_version = true)]
pub struct Cli {
    #[command(subcommand)]
    pub command: Command,
}

#[derive(Debug, Subcommand)]
pub enum Command {
    /// Run a scenario and check its expectations (needs root, or unprivileged user namespaces).
    ///
    /// Examples:
    ///   backlog-lab run                                   # the bundled Envoy somaxconn=128 incident
    ///   backlog-lab run scenarios/netty-backlog-50.toml
    ///   backlog-lab run netty-backlog-50 --set server.backlog=1024
    ///   backlog-lab run --set server.sysctl.net.core.somaxconn=4096 --set client.rate=5000
    ///   backlog-lab run reset-by-peer --set trace_drops=false   # without the tracefs events
    ///
    /// Writes scenario.toml, environment.json, connections.csv, counters.csv, timeseries.csv,
    /// drops.csv (where packets died, from the kernel's trace events; needs root and tracefs),
    /// summary.json, plots/ and report.{md,html} into the result folder (results/README.md).
    /// Exit code: 0 every expectation held, 1 one failed, 2 bad input, 3 the machine cannot
    /// host the lab, 128 + the signal when interrupted (130 Ctrl-C, 143 SIGTERM, 129 SIGHUP; what
    /// was measured is still written, marked partial).
    #[command(verbatim_doc_comment)]
    Run(RunArgs),
    /// Build the lab and run its server without a storm, for a client of your own.
    ///
    /// Prints both namespaces as /proc/PID/fd/N and the server's address; run any client inside
    /// the client namespace with nsenter (PID, N and the address as serve prints them):
    ///   backlog-lab serve --set server.accept=fast --for 1m
    ///   nsenter --net=/proc/PID/fd/N curl -s http://198.18.0.1:8080/
    /// At the end (--for, or Ctrl-C: exit 130) it prints the counters that moved and writes
    /// scenario.toml, environment.json and counters.csv into --out (default
    /// results/serve/<timestamp>/).
    #[command(verbatim_doc_comment)]
    Serve(ServeArgs),
    /// Watch a live listener the lab did not start, read only: its accept queue and limit (every
    /// socket on the port), SYN-RECV, the namespace's counters and the kernel's drop reasons.
    ///
    /// A live line every second; at the end (--for, or Ctrl-C) the same timeseries.csv,
    /// counters.csv, drops.csv, plots and report as a run. It writes no sysctl, builds no link,
    /// and traces through a private tracefs mount and an instance of its own.
    ///   backlog-lab watch --port 443 --for 10m
    ///   backlog-lab watch --port 8080 --pid $(pgrep -o nginx)           # a container's
    ///   backlog-lab watch --port 8080 --netns /proc/PID/fd/N            # a lab (serve prints it)
    ///   backlog-lab watch --port 443 --for 1m --alert 'counters.TcpExt.ListenOverflows > 0'
    /// Exit: 0, 1 when an --alert held, 2 bad input, 3 nothing listens there, 128 + the signal
    /// when stopped by one (what was seen is still written).
    #[command(verbatim_doc_comment)]
    Watch(WatchArgs),
    /// Measure the emulated link on this machine: handshake accuracy per RTT and packet rate,
    /// against a plain veth pair measured in the same run (needs root: TUN devices).
    ///
    /// Examples:
    ///   backlog-lab bench-link
    ///   backlog-lab bench-link --rtt 1ms,20ms --rate 100000 --seconds 3 --json
    #[command(verbatim_doc_comment)]
    BenchLink(BenchLinkArgs),
    /// Parse and validate a scenario without running it (no privileges needed); print the plan.
    ///
    /// Where namespaces can be made (root, or user namespaces), each side's sysctls are also
    /// set in a scratch namespace as the run would set them, so a host-wide key or a value the
    /// kernel refuses fails here as it would in `run`; elsewhere they are checked for shape.
    Check(CheckArgs),
    /// The limits this kernel applies to a scenario's settings (no root): what each queue
    /// holds, the somaxconn clamp, what tcp_max_syn_backlog and syncookies do, when SYNs and
    /// SYN-ACKs are retransmitted and when connect() gives up, each beside the 3.10-era rule the
    /// incident articles give and whether it still holds.
    ///
    /// Examples:
    ///   backlog-lab explain node-backlog-511
    ///   backlog-lab explain --set server.backlog=8 --set server.sysctl.net.ipv4.tcp_syncookies=0 --json
    #[command(verbatim_doc_comment)]
    Explain(CheckArgs),
    /// Size the listen backlog for a scenario's traffic: the model's answer, then a search by
    /// real runs of the same storm for the smallest backlog that meets the target.
    ///
    /// The model (a simulation of both queues with this kernel's rules and retry schedule, with
    /// closed forms beside it) gives the starting point; the runs bracket it and bisect to the
    /// exact number, each backlog run --repetitions times and passing only if every run does.
    /// net.core.somaxconn is raised with the backlog unless the scenario sets it, and then it
    /// clamps the answer. Targets are [expect] assertions; by default nothing is dropped at the
    /// listener (counters.server.TcpExt.ListenDrops == 0).
    ///
    /// Examples:
    ///   backlog-lab plan node-burst
    ///   backlog-lab plan my.toml --target 'connect_latency_ms.p99 <= 200'
    ///   backlog-lab plan my.toml --model-only          # instant, no root: the model alone
    ///
    /// Writes plan.json, plan.csv, plots/sizing.{png,svg}, report.{md,html} and one folder per
    /// run under runs/. Exit code: 0 a backlog met the target, 1 none in the range did, 2 bad
    /// input, 3 the machine cannot host the lab, 128 + the signal when interrupted.
    #[command(verbatim_doc_comment)]
    Plan(PlanArgs),
    /// List the bundled scenarios.
    List,
    /// Remove what labs that were killed outright left behind: trace instances of labs no longer
    /// running, which would otherwise go on tracing the machine (needs root). A run does the
    /// same at its start; this is for when no run comes next.
    Cleanup,
    /// Print a shell completion script for backlog-lab.
    ///
    /// Examples:
    ///   backlog-lab completions bash > /etc/bash_completion.d/backlog-lab
    ///   source <(backlog-lab completions bash)                  # this shell only
    ///   backlog-lab completions zsh > "${fpath[1]}/_backlog-lab"
    ///   backlog-lab completions fish > ~/.config/fish/completions/backlog-lab.fish
    #[command(verbatim_doc_comment)]
    Completions { shell: clap_complete::Shell },
    /// Print the man page (roff), from the same definitions as --help.
    ///
    /// Example: backlog-lab man > /usr/local/share/man/man1/backlog-lab.1 && man backlog-lab
    Man,
    /// Draw the plots and write report.html and report.md of a result folder, from its files.
    ///
    /// Reads connections.csv, timeseries.csv, summary.json (and environment.json and
    /// scenario.toml when present) and writes, without rerunning anything and without
    /// root:
    ///
    ///   plots/connect-latency-cdf.{png,svg}   connect latency CDF per outcome, SYN retry marks
    ///   plots/outcomes-over-time.{png,svg}    outcomes per 100 ms of scheduled start, stacked
    ///   plots/queue-occupancy.{png,svg}       accept queue and SYN_RECV against their capacity
    ///   plots/counter-rates.{png,svg}         ListenOverflows, ListenDrops, ... per second
    ///   report.html                           self-contained (plots inlined), for a postmortem
    ///   report.md                             the same, linking to plots/
    ///
    /// `backlog-lab run` already does this at the end of every run; use `plot` after changing
    /// a file by hand, or for folders from an older version. Given a comparison folder (one with
    /// comparison.json), it draws the comparison charts (outcome shares and latency percentiles
    /// per combination) and report at the top, and every run's own in its subfolder.
    ///
    /// Examples:
    ///   backlog-lab plot results/envoy-somaxconn-128/2026-11-21T21-01-10
    ///   backlog-lab plot /tmp/run && xdg-open /tmp/run/report.html
    #[command(verbatim_doc_comment)]
    Plot(PlotArgs),
}

#[derive(Debug, clap::Args)]
pub struct PlotArgs {
    /// A result folder written by `backlog-lab run` (results/<scenario>/<timestamp>/ or its
    /// --out DIR), or a comparison folder holding comparison.json.
    #[arg(value_name = "DIR")]
    pub dir: PathBuf,
}

#[derive(Debug, clap::Args)]
pub struct ScenarioArgs {
    /// Scenario file, or the name of a bundled scenario (see `backlog-lab list`).
    /// Default: the bundled envoy-somaxconn-128.
    pub scenario: Option<PathBuf>,

    /// Override a scenario setting: KEY is its TOML path, e.g. server.backlog=511,
    /// server.accept=never, client.rate=5000, client.duration=3s,
    /// server.sysctl.net.core.somaxconn=128, client.sysctl.net.ipv4.tcp_syn_retries=2,
    /// expect.outcomes.ok=">= 100". An empty VALUE (server.accept_rate=) removes the key.
    /// Repeatable.
    #[arg(long = "set", value_name = "KEY=VALUE")]
    pub sets: Vec<String>,
}

#[derive(Debug, clap::Args)]
pub struct CheckArgs {
    #[command(flatten)]
    pub scenario: ScenarioArgs,

    /// Print the runs as JSON (queues, settings, expectations, pre-flight), for scripts.
    #[arg(long)]
    pub json: bool,
}

#[derive(Debug, clap::Args)]
pub struct ServeArgs {
    #[command(flatten)]
    pub scenario: ScenarioArgs,

    /// How long to serve (at most 1h); Ctrl-C ends it early.
    #[arg(long = "for", value_name = "DURATION", default_value = "60s", value_parser = parse_serve_duration)]
    pub duration: std::time::Duration,

    /// Result folder for scenario.toml, environment.json and counters.csv (default:
    /// results/serve/<timestamp>/). It must be new or empty.
    #[arg(long, value_name = "DIR")]
    pub out: Option<PathBuf>,

    /// Write into a --out folder that is not empty.
    #[arg(long, requires = "out")]
    pub force: bool,
}

#[derive(Debug, clap::Args)]
pub struct WatchArgs {
    /// The TCP port of the listener(s) to watch.
    #[arg(long, value_name = "PORT")]
    pub port: u16,

    /// The network namespace to watch (default: this process's own, the host's): a file such as
    /// /run/netns/NAME, /proc/PID/ns/net, or the /proc/PID/fd/N that `serve` prints.
    #[arg(long, value_name = "PATH", conflicts_with = "pid")]
    pub netns: Option<PathBuf>,

    /// Watch the network namespace of this process (a container's server).
    #[arg(long, value_name = "PID")]
    pub pid: Option<u32>,

    /// How long to watch (at most 24h); Ctrl-C ends it early.
    #[arg(long = "for", value_name = "DURATION", default_value = "60s", value_parser = parse_watch_duration)]
    pub duration: std::time::Duration,

    /// A condition in the [expect] language that makes the exit code 1 when it holds over the
    /// whole watch, e.g. 'counters.TcpExt.ListenOverflows > 0' (counters.X is short for
    /// counters.server.X). Repeatable: any one that holds.
    #[arg(long, value_name = "EXPR")]
    pub alert: Vec<String>,

    /// How often to sample the queue and the counters.
    #[arg(long, value_name = "DURATION", default_value = "10ms", value_parser = parse_interval)]
    pub interval: std::time::Duration,

    /// Do not record drop reasons (no tracefs at all).
    #[arg(long)]
    pub no_trace: bool,

    /// No live line.
    #[arg(long, short)]
    pub quiet: bool,

    /// Result folder (default: results/watch-PORT/<timestamp>/). It must be new or empty.
    #[arg(long, value_name = "DIR")]
    pub out: Option<PathBuf>,

    /// Write into a --out folder that is not empty.
    #[arg(long, requires = "out")]
    pub force: bool,
}

fn parse_watch_duration(s: &str) -> Result<std::time::Duration, String> {
    let d = humantime::parse_duration(s).map_err(|e| format!("{e}; e.g. 30s, 10m"))?;
    if d.is_zero() || d > std::time::Duration::from_secs(24 * 3600) {
        return Err("must be above 0 and at most 24h".into());
    }
    Ok(d)
}

fn parse_interval(s: &str) -> Result<std::time::Duration, String> {
    let d = humantime::parse_duration(s).map_err(|e| format!("{e}; e.g. 10ms, 100ms"))?;
    if d < std::time::Duration::from_millis(1) || d > std::time::Duration::from_secs(10) {
        return Err("from 1ms to 10s".into());
    }
    Ok(d)
}

fn parse_serve_duration(s: &str) -> Result<std::time::Duration, String> {
    let d = humantime::parse_duration(s).map_err(|e| format!("{e}; e.g. 30s, 5m"))?;
    if d.is_zero() || d > std::time::Duration::from_secs(3600) {
        return Err("must be above 0 and at most 1h".into());
    }
    Ok(d)
}

#[derive(Debug, clap::Args)]
pub struct RunArgs {
    #[command(flatten)]
    pub scenario: ScenarioArgs,

    /// Result folder (default: results/<scenario>/<timestamp>/). It must be new or empty.
    #[arg(long, value_name = "DIR")]
    pub out: Option<PathBuf>,

    /// Write into a --out folder that is not empty: files of the same names are replaced,
    /// others stay.
    #[arg(long, requires = "out")]
    pub force: bool,

    /// Storm while another backlog-lab storms on this machine, instead of waiting for it (the
    /// two share the cores, so their timings distort each other; each lab has addresses of its
    /// own either way).
    #[arg(long)]
    pub concurrent: bool,

    /// No progress line and no summary table: only the result folder, one line (for scripts:
    /// `dir=$(backlog-lab run -q ...)`). Everything is still written.
    #[arg(long, short)]
    pub quiet: bool,

    /// Print summary.json on stdout instead of the table, with the result folder as
    /// `result_dir`.
    #[arg(long)]
    pub json: bool,
}

#[derive(Debug, clap::Args)]
pub struct PlanArgs {
    #[command(flatten)]
    pub scenario: ScenarioArgs,

    /// What the backlog must achieve, in the [expect] language: PATH OP EXPRESSION, e.g.
    /// 'connect_latency_ms.p99 <= 200' or 'outcomes.ok == connections'. Repeatable (all must
    /// hold); replaces the scenario's [plan] target.
    #[arg(long = "target", value_name = "ASSERTION")]
    pub targets: Vec<String>,

    /// The backlogs to search, LOW-HIGH (default: [plan] range, else 1-65535).
    #[arg(long, value_name = "LOW-HIGH")]
    pub range: Option<String>,

    /// Runs per backlog tried; a backlog passes only if every run does (default: [plan]
    /// repetitions, else 3).
    #[arg(long, value_name = "N")]
    pub repetitions: Option<i64>,

    /// The model's answer and its reasons only: no runs, no root, in well under a second.
    #[arg(long)]
    pub model_only: bool,

    /// Result folder (default: results/<scenario>/plan-<timestamp>/). It must be new or empty.
    #[arg(long, value_name = "DIR")]
    pub out: Option<PathBuf>,

    /// Write into a --out folder that is not empty.
    #[arg(long, requires = "out")]
    pub force: bool,

    /// Print plan.json on stdout instead of the answer, with the folder as `result_dir`.
    #[arg(long)]
    pub json: bool,
}

#[derive(Debug, clap::Args)]
pub struct BenchLinkArgs {
    /// RTTs to check handshake accuracy at (comma-separated).
    #[arg(long = "rtt", value_name = "DURATIONS", value_delimiter = ',',
          default_value = "1ms,2ms,10ms,20ms,50ms,200ms", value_parser = parse_rtt)]
    pub rtts: Vec<std::time::Duration>,

    /// Handshakes timed per RTT.
    #[arg(long, default_value_t = 200, value_parser = clap::value_parser!(u32).range(10..=10_000))]
    pub handshakes: u32,

    /// Paced packet rates to try, packets per second (comma-separated); an unpaced run follows.
    #[arg(long = "rate", value_name = "PPS", value_delimiter = ',', default_value = "50000,100000,200000",
          value_parser = clap::value_parser!(u64).range(1000..=2_000_000))]
    pub rates: Vec<u64>,

    /// Only the handshake accuracy; skip the packet-rate measurements.
    #[arg(long)]
    pub accuracy_only: bool,

    /// Seconds per packet-rate measurement.
    #[arg(long, default_value_t = 3.0, value_parser = parse_seconds)]
    pub seconds: f64,

    /// The address family of the lab's hosts and packets: ipv4 or ipv6.
    #[arg(long, default_value = "ipv4", value_parser = parse_family)]
    pub family: crate::family::Family,

    /// Print the report as JSON.
    #[arg(long)]
    pub json: bool,
}

fn parse_rtt(s: &str) -> Result<std::time::Duration, String> {
    let d = humantime::parse_duration(s.trim()).map_err(|e| format!("{e}; e.g. 20ms"))?;
    if d.is_zero() || d > std::time::Duration::from_secs(2) {
        return Err("an RTT above 0 and at most 2s".into());
    }
    Ok(d)
}

fn parse_family(s: &str) -> Result<crate::family::Family, String> {
    crate::family::Family::parse(s).ok_or_else(|| {
        format!(
            "the lab speaks {}",
            crate::family::FAMILY_NAMES.join(" or ")
        )
    })
}

fn parse_seconds(s: &str) -> Result<f64, String> {
    match s.parse::<f64>() {
        Ok(v) if (0.5..=60.0).contains(&v) => Ok(v),
        _ => Err("seconds from 0.5 to 60".into()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use clap::CommandFactory;

    #[test]
    fn verify_cli() {
        Cli::command().debug_assert();
    }
}
