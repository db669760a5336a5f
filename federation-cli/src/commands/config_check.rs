//! `federation config check FILE`: validate a configuration and list every problem at once.
//!
//! Fixing a file one error per run is slow and discouraging, so this prints every problem the
//! loader found (syntax, unknown fields, wrong types, bad references), each with its field path,
//! the offending value and what is allowed, and exits 3 if there is any. The JSON form carries
//! the same list for editors and CI annotations.

use std::path::PathBuf;

use clap::Args;
use federation_core::config::{Config, ConfigProblem};
use serde::Serialize;

use crate::cli::GlobalArgs;
use crate::exit::{CliError, Exit};
use crate::output::print_json;

/// Arguments of `federation config check`.
#[derive(Debug, Args)]
pub struct CheckArgs {
    /// The file to check (.yaml, .yml, .toml or .json).
    #[arg(value_name = "FILE")]
    pub file: PathBuf,
}

/// The JSON document printed with `--json`.
#[derive(Debug, Serialize)]
struct Report {
    file: String,
    valid: bool,
    clusters: Vec<String>,
    services: Vec<String>,
    problems: Vec<Problem>,
}

/// One problem in the JSON document.
#[derive(Debug, Serialize)]
struct Problem {
    path: String,
    value: Option<String>,
    message: String,
    line: Option<usize>,
    column: Option<usize>,
}

impl From<&ConfigProblem> for Problem {
    fn from(p: &ConfigProblem) -> Self {
        Self {
            path: p.path().to_owned(),
            value: p.value().map(str::to_owned),
            message: p.message().to_owned(),
            line: p.line(),
            column: p.column(),
        }
    }
}

/// Runs the check: exit 0 when the file is valid, 3 otherwise.
///
/// # Errors
/// Only when the output cannot be written.
pub fn run(global: &GlobalArgs, args: CheckArgs) -> Result<Exit, CliError> {
    let file = args.file.display().to_string();
    let report = match Config::from_file(&args.file) {
        Ok(config) => Report {
            file,
            valid: true,
            clusters: config.clusters.iter().map(|c| c.name.clone()).collect(),
            services: config.services.iter().map(|s| s.name.clone()).collect(),
            problems: Vec::new(),
        },
        Err(error) => Report {
            file,
            valid: false,
            clusters: Vec::new(),
            services: Vec::new(),
            problems: error.problems().iter().map(Problem::from).collect(),
        },
    };
    if global.json {
        print_json(&report)?;
    } else {
        print_human(&report);
    }
    Ok(if report.valid { Exit::Ok } else { Exit::Config })
}

fn print_human(report: &Report) {
    if report.valid {
        println!(
            "{}: ok ({} clusters: {}; {} services: {})",
            report.file,
            report.clusters.len(),
            report.clusters.join(", "),
            report.services.len(),
            report.services.join(", ")
        );
        return;
    }
    let count = report.problems.len();
    let noun = if count == 1 { "problem" } else { "problems" };
    println!("{}: invalid ({count} {noun})", report.file);
    for p in &report.problems {
        let path = if p.path.is_empty() {
            "<document>"
        } else {
            &p.path
        };
        let mut line = format!("  {path}");
        if let Some(value) = &p.value {
            line.push_str(&format!(" = {value}"));
        }
        if let Some(l) = p.line {
            match p.column {
                Some(c) => line.push_str(&format!(" (line {l}, column {c})")),
                None => line.push_str(&format!(" (line {l})")),
            }
        }
        line.push_str(&format!(": {}", p.message));
        println!("{line}");
    }
}
