//! `federation bench`: the SDK measured side by side with the stacks users would build instead.
//!
//! Users choose this SDK over a sidecar or a hand-assembled reqwest stack only if it is
//! measurably no slower and recovers faster; claims without a reproducible harness rot. On a
//! shared, noisy machine absolute times drift 2–4x, so every goal is a ratio against a baseline
//! measured in the same run: variants run interleaved (A B A B …) after a warm-up, for several
//! repetitions, and each goal is judged on the median of the per-repetition ratios (see
//! `docs/BENCHMARKS.md`). Scenarios, one file each: [`overhead`] (G1), [`proxy`] (G2), [`cache`]
//! (G3), [`failover`] (G7), [`discovery`] (G8), [`sync`] (G9, on a Kafka broker; skipped without
//! Java). The report is Markdown on stdout (and `--out`);
//! progress goes to stderr. `--smoke` runs every scenario for a few seconds without judging the
//! numbers, so CI keeps the harness working.

mod cache;
mod cache_l2;
mod discovery;
mod failover;
mod failover_analysis;
mod fixture;
// Issue 23: the raw-hyper floor of the overhead scenario.
mod floor;
// issue 21: hedged requests.
mod hedge;
mod interleave;
mod overhead;
mod proxy;
mod report;
mod runner;
// Issue 23: the scale scenario.
mod scale;
mod scale_calls;
mod scale_client;
mod scale_doubles;
mod scale_fixture;
mod scale_fleet;
mod scale_storm;
mod stats;
mod sync;
mod sync_cpu;
mod sync_drive;
mod sync_pipes;
mod sync_stats;
mod target;

use std::path::PathBuf;
use std::time::Duration;

use clap::{Args, ValueEnum};

use crate::duration::parse_duration;
use crate::exit::{CliError, Exit};
use interleave::Plan;
use report::Report;

/// Arguments of `federation bench`.
#[derive(Debug, Args)]
pub struct BenchArgs {
    /// Scenarios to run (comma separated or repeated). Default: all.
    #[arg(long, value_enum, value_delimiter = ',')]
    pub scenario: Vec<Scenario>,
    /// Length of one measured run of one variant.
    #[arg(long, default_value = "5s", value_parser = parse_duration)]
    pub duration: Duration,
    /// Repetitions of every comparison (ratios are the median over them).
    #[arg(long, default_value_t = 3, value_parser = clap::value_parser!(u32).range(1..=100))]
    pub reps: u32,
    /// Unmeasured warm-up of every variant before the first repetition.
    #[arg(long, default_value = "1s", value_parser = parse_duration)]
    pub warmup: Duration,
    /// Closed-loop concurrency levels of the overhead scenario.
    #[arg(long, value_delimiter = ',', default_value = "1,64,1000")]
    pub concurrency: Vec<usize>,
    /// A few seconds in total: every scenario exercised, numbers not judged (for CI).
    #[arg(long)]
    pub smoke: bool,
    /// Also write the Markdown report to this file.
    #[arg(long, value_name = "FILE")]
    pub out: Option<PathBuf>,
    /// Variants of the sync scenario (G9) to run: both (the comparison), or one alone, to
    /// profile it (`perf record -p <pid>` during its closed loop); one alone judges no goal.
    #[arg(long, value_enum, default_value = "both")]
    pub variant: SyncVariant,
}

/// The variants `--scenario sync` runs.
#[derive(Clone, Copy, Debug, PartialEq, Eq, ValueEnum)]
pub enum SyncVariant {
    /// The plain rdkafka pair and `FederatedDataSync`, interleaved: the G9 comparison.
    Both,
    /// Only the plain rdkafka pair.
    Plain,
    /// Only `FederatedDataSync`.
    Sdk,
}

/// One benchmark scenario.
#[derive(Clone, Copy, Debug, PartialEq, Eq, ValueEnum)]
pub enum Scenario {
    /// G1: SDK vs plain reqwest round-robin over 3 loopback instances.
    Overhead,
    /// G2: SDK vs reqwest through a local nginx reverse proxy.
    Proxy,
    /// G3: cache hit vs a bare moka get vs a loopback call.
    Cache,
    /// G7: one of three instances killed for a while, and all of them down.
    Failover,
    /// G8: Consul change propagation, idle watch load, Consul outage.
    Discovery,
    /// G9: data sync end to end on a real Kafka broker vs a plain rdkafka pair (needs Java).
    Sync,
    /// S1–S5: 2 × 1,000 services × 20 instances: memory, readiness, idle load, storm, call cost.
    Scale,
    /// Hedged requests: one of three instances 200 ms slower, with and without hedging.
    Hedge,
}

impl Scenario {
    const ALL: [Scenario; 8] = [
        Self::Overhead,
        Self::Proxy,
        Self::Cache,
        Self::Failover,
        Self::Discovery,
        Self::Sync,
        Self::Scale,
        Self::Hedge,
    ];
}

/// Effective settings of a run (smoke mode shortens everything).
#[derive(Clone, Debug)]
pub struct Settings {
    /// Timing of interleaved comparisons.
    pub plan: Plan,
    /// Closed-loop concurrency levels.
    pub concurrency: Vec<usize>,
    /// Smoke mode.
    pub smoke: bool,
    /// The sync scenario's variants.
    pub variant: SyncVariant,
}

/// Runs the selected scenarios and prints the report.
///
/// # Errors
/// Exit 1 when a scenario cannot set up its upstreams or the report cannot be written.
/// Returns exit 1 (as `Ok`) when a full run misses a goal; a smoke run always returns 0.
pub async fn run(args: BenchArgs) -> Result<Exit, CliError> {
    if let Some(peer) = cache_l2::peer_mode().await {
        return peer;
    }
    if let Some(client) = scale_client::client_mode().await {
        return client;
    }
    if let Some(doubles) = scale_doubles::doubles_mode().await {
        return doubles;
    }
    if args.concurrency.contains(&0) {
        return Err(CliError::usage("--concurrency: levels must be at least 1"));
    }
    let settings = if args.smoke {
        Settings {
            plan: Plan {
                warmup: Duration::from_millis(100),
                duration: Duration::from_millis(300),
                reps: 1,
            },
            concurrency: args.concurrency.clone(),
            smoke: true,
            variant: args.variant,
        }
    } else {
        Settings {
            plan: Plan {
                warmup: args.warmup,
                duration: args.duration,
                reps: args.reps as usize,
            },
            concurrency: args.concurrency.clone(),
            smoke: false,
            variant: args.variant,
        }
    };
    let scenarios: Vec<Scenario> = if args.scenario.is_empty() {
        Scenario::ALL.to_vec()
    } else {
        Scenario::ALL
            .into_iter()
            .filter(|s| args.scenario.contains(s))
            .collect()
    };
    let mut report = Report::new(settings.smoke);
    let started = std::time::Instant::now();
    for scenario in &scenarios {
        eprintln!(
            "── {scenario:?} ({:.0} s elapsed)",
            started.elapsed().as_secs_f64()
        );
        match scenario {
            Scenario::Overhead => overhead::run(&settings, &mut report).await?,
            Scenario::Proxy => proxy::run(&settings, &mut report).await?,
            Scenario::Cache => {
                cache::run(&settings, &mut report).await?;
                cache_l2::run(&settings, &mut report).await?;
            }
            Scenario::Failover => failover::run(&settings, &mut report).await?,
            Scenario::Discovery => discovery::run(&settings, &mut report).await?,
            Scenario::Sync => sync::run(&settings, &mut report).await?,
            Scenario::Scale => scale::run(&settings, &mut report).await?,
            Scenario::Hedge => hedge::run(&settings, &mut report).await?,
        }
    }
    eprintln!("── done in {:.0} s", started.elapsed().as_secs_f64());
    let markdown = report.render(&header(&settings, &scenarios));
    print!("{markdown}");
    if let Some(path) = &args.out {
        std::fs::write(path, &markdown).map_err(|e| {
            CliError::failure(format!("bench: cannot write {}: {e}", path.display()))
        })?;
    }
    Ok(if report.any_failed() {
        Exit::Failure
    } else {
        Exit::Ok
    })
}

fn header(settings: &Settings, scenarios: &[Scenario]) -> String {
    let cpus = std::thread::available_parallelism().map_or(0, usize::from);
    let names: Vec<String> = scenarios
        .iter()
        .map(|s| format!("{s:?}").to_lowercase())
        .collect();
    format!(
        "## federation bench{}\n\nScenarios: {}. Runs of {} after a {} warm-up, {} repetition(s), interleaved; {} CPUs visible; build: {}.\n",
        if settings.smoke {
            " (smoke: numbers not judged)"
        } else {
            ""
        },
        names.join(", "),
        report::fmt_duration(settings.plan.duration),
        report::fmt_duration(settings.plan.warmup),
        settings.plan.reps,
        cpus,
        if cfg!(debug_assertions) {
            "debug (numbers meaningless)"
        } else {
            "release"
        }
    )
}
