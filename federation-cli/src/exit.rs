//! Exit codes and the one error type every subcommand returns.
//!
//! Scripts branch on the exit code, so each code means one thing and never changes: a CI job can
//! tell "the configuration is wrong" (3) from "nothing is up" (4) from "the call failed" (1)
//! without parsing text. Every subcommand returns `Result<Exit, CliError>`; `main` prints the
//! error (as text, or as JSON with `--json`) and exits with its code.

use std::fmt;

use federation_core::error::{Error, ErrorKind};
use serde::Serialize;

/// The process exit code. The table is repeated in `--help` ([`EXIT_CODES_HELP`]) and
/// `docs/cli.md`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Exit {
    /// 0: success.
    Ok,
    /// 1: the work failed (a call failed or answered 4xx/5xx; the demo's success rate fell below
    /// `--min-success`).
    Failure,
    /// 2: bad usage (unknown flag, bad value, unknown service or cluster).
    Usage,
    /// 3: the configuration is invalid or cannot be found.
    Config,
    /// 4: discovery failed or no healthy instance is available.
    Unavailable,
}

impl Exit {
    /// The numeric code.
    pub fn code(self) -> u8 {
        match self {
            Self::Ok => 0,
            Self::Failure => 1,
            Self::Usage => 2,
            Self::Config => 3,
            Self::Unavailable => 4,
        }
    }

    /// The exit code for a failed call of kind `kind`.
    pub fn for_kind(kind: ErrorKind) -> Self {
        match kind {
            ErrorKind::Config => Self::Config,
            ErrorKind::Discovery | ErrorKind::NoHealthyInstance | ErrorKind::CircuitOpen => {
                Self::Unavailable
            }
            ErrorKind::InvalidRequest => Self::Usage,
            _ => Self::Failure,
        }
    }
}

/// The exit-code table shown after `--help`.
pub const EXIT_CODES_HELP: &str = "\
Exit codes:
  0  success
  1  failure: a call failed or answered 4xx/5xx, or the demo's success rate fell below --min-success
  2  usage: unknown flag or bad value, unknown service or cluster
  3  invalid configuration (every problem is printed with its field path), or none found
  4  discovery failed or no healthy instance of the service is available

Configuration: --config PATH, else $FEDERATION_CONFIG, else ./federation.yaml, .yml, .toml or .json";

/// A failure of a subcommand: what to print and which code to exit with.
#[derive(Debug)]
pub struct CliError {
    /// The exit code.
    pub exit: Exit,
    /// A stable label for `--json` output (`config`, `usage`, an error kind, ...).
    pub kind: String,
    /// The human message (may span several lines).
    pub message: String,
}

impl CliError {
    /// An error with an explicit code and label.
    pub fn new(exit: Exit, kind: impl Into<String>, message: impl Into<String>) -> Self {
        Self {
            exit,
            kind: kind.into(),
            message: message.into(),
        }
    }

    /// A usage error (exit 2).
    pub fn usage(message: impl Into<String>) -> Self {
        Self::new(Exit::Usage, "usage", message)
    }

    /// A generic failure (exit 1).
    pub fn failure(message: impl Into<String>) -> Self {
        Self::new(Exit::Failure, "failure", message)
    }

    /// The JSON form printed on stdout with `--json`.
    pub fn to_json(&self) -> serde_json::Value {
        #[derive(Serialize)]
        struct Body<'a> {
            kind: &'a str,
            exit_code: u8,
            message: &'a str,
        }
        serde_json::json!({ "error": Body { kind: &self.kind, exit_code: self.exit.code(), message: &self.message } })
    }
}

impl fmt::Display for CliError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.message)
    }
}

impl From<Error> for CliError {
    fn from(error: Error) -> Self {
        let kind = error.kind();
        Self::new(Exit::for_kind(kind), kind.as_str(), error.to_string())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn codes_are_stable() {
        let codes: Vec<u8> = [
            Exit::Ok,
            Exit::Failure,
            Exit::Usage,
            Exit::Config,
            Exit::Unavailable,
        ]
        .iter()
        .map(|e| e.code())
        .collect();
        assert_eq!(codes, vec![0, 1, 2, 3, 4]);
    }

    #[test]
    fn kinds_map_to_documented_codes() {
        assert_eq!(Exit::for_kind(ErrorKind::Config), Exit::Config);
        assert_eq!(
            Exit::for_kind(ErrorKind::NoHealthyInstance),
            Exit::Unavailable
        );
        assert_eq!(Exit::for_kind(ErrorKind::InvalidRequest), Exit::Usage);
        assert_eq!(Exit::for_kind(ErrorKind::Timeout), Exit::Failure);
    }
}
