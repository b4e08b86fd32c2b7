//! The two kinds of failure the CLI maps to exit codes, apart from "an expectation failed" (1).
//!
//! Anything else that goes wrong is an internal error and exits 3 as well, with its cause chain,
//! because it is almost always the environment (a kernel feature, a resource limit).

use std::fmt;

/// Why a run could not happen. Carried inside `anyhow::Error`; `main` finds it in the chain.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Kind {
    /// The scenario, a `--set` or a flag is wrong: exit code 2, nothing was created.
    BadInput,
    /// The machine cannot host the lab (privileges, kernel features, limits): exit code 3.
    Environment,
}

#[derive(Debug, Clone)]
pub struct Failure {
    pub kind: Kind,
    pub message: String,
}

impl Failure {
    pub fn bad_input(message: impl Into<String>) -> Failure {
        Failure {
            kind: Kind::BadInput,
            message: message.into(),
        }
    }
    pub fn environment(message: impl Into<String>) -> Failure {
        Failure {
            kind: Kind::Environment,
            message: message.into(),
        }
    }
    /// Exit code of the process for this failure.
    pub fn exit_code(&self) -> u8 {
        match self.kind {
            Kind::BadInput => 2,
            Kind::Environment => 3,
        }
    }
}

impl fmt::Display for Failure {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.message)
    }
}

impl std::error::Error for Failure {}

/// Exit code for an error that ended a run: the first [`Failure`] in the chain decides.
pub fn exit_code(err: &anyhow::Error) -> u8 {
    err.chain()
        .find_map(|e| e.downcast_ref::<Failure>())
        .map_or(3, Failure::exit_code)
}
