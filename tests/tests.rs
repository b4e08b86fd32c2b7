//! The integration tests: one binary, modules by theme. Everything that needs namespaces runs for
//! real and requires root (see `util::require_root`); traffic tests take `util::lab()` so that
//! only one storm runs at a time.

mod util;

mod cli;
mod client;
mod drops;
mod explain;
mod host;
mod layers;
mod link;
mod overflow;
mod plan;
mod plots;
mod program;
mod resets;
mod scenarios;
mod schema;
mod storm;
mod watch;
