//! The `federation` command: parse the arguments, run one subcommand, exit with its code.
//!
//! Every subcommand lives in its own file (`commands/*.rs`, `demo/`); this file only wires them.
//! Exit codes are documented in [`exit`] and in `--help`.

mod bench;
mod cli;
mod commands;
mod config_source;
mod demo;
mod duration;
mod exit;
mod output;

use std::process::ExitCode;

use clap::Parser;

use crate::cli::{Cli, Command, ConfigCommand};
use crate::exit::{CliError, Exit};

fn main() -> ExitCode {
    let cli = Cli::parse();
    let json = cli.global.json;
    let outcome = match tokio::runtime::Runtime::new() {
        Ok(runtime) => runtime.block_on(run(cli)),
        Err(e) => Err(CliError::failure(format!(
            "cannot start the async runtime: {e}"
        ))),
    };
    let exit = outcome.unwrap_or_else(|error| {
        report(&error, json);
        error.exit
    });
    ExitCode::from(exit.code())
}

async fn run(cli: Cli) -> Result<Exit, CliError> {
    let global = &cli.global;
    match cli.command {
        Command::Demo(args) => demo::run(global, args).await,
        Command::Sandbox(args) => commands::sandbox::run(global, args).await,
        Command::Call(args) => commands::call::run(global, args).await,
        Command::Discover(args) => commands::discover::run(global, args).await,
        Command::Health(args) => commands::health::run(global, args).await,
        Command::Config(ConfigCommand::Check(args)) => commands::config_check::run(global, args),
        Command::Sync(command) => commands::sync::run(global, command).await,
        Command::Bench(args) => bench::run(args).await,
    }
}

/// Prints a failure: JSON on stdout with `--json` (so scripts always get a document), else text
/// on stderr.
fn report(error: &CliError, json: bool) {
    if json && output::print_json(&error.to_json()).is_ok() {
        return;
    }
    eprintln!("error: {error}");
}
