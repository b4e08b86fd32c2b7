//! What `backlog-lab plan` found, as `plan.json` holds it: the answer from the runs, the model's
//! answer and its reasons, the closed forms beside it, and one point per run with the model's
//! prediction for the same backlog.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

/// `plan.json`.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
#[serde(default)]
pub struct PlanResult {
    pub scenario: String,
    /// The `--set`s the scenario was given (`key=value`).
    pub overrides: Vec<String>,
    /// `uname -r` of the machine the model's rules and the runs are for.
    pub kernel: String,
    /// The answer in one sentence, as the report and the terminal start with it.
    pub answer: String,
    /// The smallest backlog at which every run met every target (null: none in the range).
    pub recommended_backlog: Option<u32>,
    /// net.core.somaxconn the answer needs (at least the backlog, or the value the scenario
    /// pins, which then clamps it).
    pub somaxconn: Option<u32>,
    /// The smallest backlog the model says meets the targets (null: none in the range, or a
    /// target the model cannot predict).
    pub model_backlog: Option<u32>,
    /// Whether the answer came from the model alone (`--model-only`).
    pub model_only: bool,
    pub targets: Vec<String>,
    /// The first target's right side, when it is a number: the sizing chart's target line.
    pub target_line: Option<f64>,
    pub range: [u32; 2],
    pub repetitions: u32,
    /// What the model assumed, one line each: the kernel's rules, the workload, what it leaves out.
    pub rules: Vec<String>,
    pub closed_forms: ClosedForms,
    /// What may make the answer mislead, each saying what to do instead.
    pub warnings: Vec<String>,
    /// One per run, in the order they ran.
    pub points: Vec<PlanPoint>,
    /// The model's prediction over a spread of backlogs (the sizing chart's curve).
    pub model_curve: Vec<ModelPoint>,
    /// A stop signal ended the search early: the answer is only as good as what ran.
    pub interrupted: bool,
    /// Wall-clock time of the whole plan.
    pub elapsed_s: f64,
}

/// One run at one backlog.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
#[serde(default)]
pub struct PlanPoint {
    pub backlog: u32,
    /// The accept queue's limit the kernel reported (`ss -lnt` Send-Q).
    pub limit: Option<u32>,
    pub repetition: u32,
    pub passed: bool,
    /// The run's own folder, relative to the plan's.
    pub dir: String,
    /// The value each target read (its left side), by target text.
    pub values: BTreeMap<String, Option<f64>>,
    pub listen_overflows: i64,
    /// SYNs the SYN queue dropped (ListenDrops − ListenOverflows).
    pub syn_drops: i64,
    pub accept_queue_max_seen: u32,
    pub connect_p50_ms: Option<f64>,
    pub connect_p99_ms: Option<f64>,
    /// Every outcome with its count.
    pub outcomes: BTreeMap<String, u64>,
    /// A stop signal ended this run early: its numbers are partial.
    pub partial: bool,
    /// The storm was shortened to this many seconds of arrivals (null: the whole storm).
    pub shortened_to_s: Option<f64>,
    /// What the model predicted for this backlog.
    pub model: ModelPoint,
}

/// The model's prediction for one backlog.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
#[serde(default)]
pub struct ModelPoint {
    pub backlog: u32,
    pub passed: bool,
    pub values: BTreeMap<String, Option<f64>>,
    pub listen_overflows: i64,
    pub syn_drops: i64,
    pub accept_queue_peak: u32,
    pub syn_queue_peak: u32,
    pub connect_p50_ms: Option<f64>,
    pub connect_p99_ms: Option<f64>,
    pub outcomes: BTreeMap<String, u64>,
}

/// The closed forms beside the model (see `sizing::closed`).
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
#[serde(default)]
pub struct ClosedForms {
    /// Mean arrivals per second: the rate, or a burst's size over its interval.
    pub arrival_rate: f64,
    /// Accepts per second the server sustains (null: unbounded, a fast or pausing server).
    pub accept_rate: Option<f64>,
    /// ρ = arrivals / accepts (null when accepts are unbounded, or when there are none).
    pub load: Option<f64>,
    /// The fluid bound of the accept queue's peak, and the backlog it needs (peak − 1).
    pub fluid_peak: u64,
    pub fluid_backlog: u64,
    /// M/M/1/K's backlog for steady random (Poisson) load below saturation.
    pub mm1k_backlog: Option<u64>,
    /// μ × client.response_timeout: deeper than this, a queued connection's client has given up.
    pub useful_depth: Option<f64>,
    /// The longest pause window, s.
    pub longest_pause_s: Option<f64>,
    /// Request sockets in the SYN queue at once: SYNs within one RTT.
    pub syn_queue_need: f64,
}
