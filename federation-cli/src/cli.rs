//! The command-line grammar: global flags and one subcommand per file under `commands/` and
//! `demo/`.
//!
//! Keeping the grammar in one place (and the work in the subcommand files) means `--help`,
//! the docs and the tests all see the same shape; flags shared by every subcommand (`--config`,
//! `--json`) are declared once as global flags.

use std::path::PathBuf;

use clap::{Args, Parser, Subcommand};

use crate::commands::{call, config_check, discover, health, sandbox};
use crate::demo;
use crate::exit::EXIT_CODES_HELP;

/// Call services across the zervigo and looma clusters as one system, and watch it work.
#[derive(Debug, Parser)]
#[command(name = "federation", version, after_help = EXIT_CODES_HELP)]
pub struct Cli {
    /// Flags every subcommand accepts.
    #[command(flatten)]
    pub global: GlobalArgs,
    /// The subcommand.
    #[command(subcommand)]
    pub command: Command,
}

/// Flags every subcommand accepts.
#[derive(Debug, Args)]
pub struct GlobalArgs {
    /// Client configuration file (.yaml, .yml, .toml or .json).
    /// Default: ./federation.{yaml,yml,toml,json}.
    #[arg(long, global = true, env = "FEDERATION_CONFIG", value_name = "PATH")]
    pub config: Option<PathBuf>,
    /// Print one machine-readable JSON document on stdout (progress goes to stderr).
    #[arg(long, global = true)]
    pub json: bool,
}

/// The subcommands.
#[derive(Debug, Subcommand)]
pub enum Command {
    /// Run the embedded two-cluster federation through a scripted failure story and report.
    #[command(after_help = EXIT_CODES_HELP)]
    Demo(demo::DemoArgs),
    /// Run the embedded two-cluster sandbox until Ctrl-C and write its client configuration.
    #[command(after_help = EXIT_CODES_HELP)]
    Sandbox(sandbox::SandboxArgs),
    /// Call a logical service once and print the response.
    #[command(after_help = EXIT_CODES_HELP)]
    Call(call::CallArgs),
    /// List the instances of services per cluster.
    #[command(after_help = EXIT_CODES_HELP)]
    Discover(discover::DiscoverArgs),
    /// Show the health of every service in every cluster.
    #[command(after_help = EXIT_CODES_HELP)]
    Health(health::HealthArgs),
    /// Configuration tools.
    #[command(subcommand)]
    Config(ConfigCommand),
    /// Cross-cluster data sync: status of a change, replay of dead letters.
    #[command(subcommand)]
    Sync(crate::commands::sync::SyncCommand),
    /// Benchmark the SDK against plain reqwest, a proxy hop and failure scenarios.
    Bench(crate::bench::BenchArgs),
}

/// `federation config ...`.
#[derive(Debug, Subcommand)]
pub enum ConfigCommand {
    /// Check a configuration file and print every problem with its field path.
    #[command(after_help = EXIT_CODES_HELP)]
    Check(config_check::CheckArgs),
}

#[cfg(test)]
mod tests {
    use clap::CommandFactory;

    use super::*;

    #[test]
    fn grammar_is_consistent() {
        Cli::command().debug_assert();
    }
}
