//! `federation demo`: the whole product on an embedded federation, in about a minute.
//!
//! A new user must see failover, ejection, registry outages and caching work before they trust
//! them, without installing Consul or two clusters. The demo starts the sandbox (two clusters,
//! one Consul double each, three instances per service), drives steady open-loop traffic from
//! one `FederatedServiceClient` through a scripted story ([`story`]), prints progress every
//! second, and ends with a per-phase summary ([`report`]) and a chart of cluster shares over time
//! ([`chart`]). The exit code is 1 when the overall success rate is below `--min-success`, so
//! CI can run the demo as a test.

mod chart;
mod driver;
mod faults;
mod progress;
mod report;
mod stats;
mod story;
mod traffic;

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use clap::Args;
use federation_core::client::FederatedServiceClient;
use federation_testkit::sandbox::{Sandbox, SandboxOptions};
use tokio::time::Instant;

use crate::cli::GlobalArgs;
use crate::commands::snapshot::wait_for_discovery;
use crate::duration::{parse_duration, parse_percent};
use crate::exit::{CliError, Exit};
use crate::output::print_json;

/// Arguments of `federation demo`.
#[derive(Debug, Args)]
pub struct DemoArgs {
    /// Approximate total length; every phase gets its share (with a minimum each, so very
    /// short runs take a little longer).
    #[arg(long, default_value = "60s", value_parser = parse_duration)]
    pub duration: Duration,
    /// Seed for request ids, prompts and the sandbox's randomness (same seed, same traffic).
    #[arg(long, default_value_t = 42)]
    pub seed: u64,
    /// Exit with code 1 when the overall success rate (percent) is below this.
    #[arg(long, default_value = "99.9", value_parser = parse_percent, value_name = "PERCENT")]
    pub min_success: f64,
    /// Calls per second sent to each of the three services.
    #[arg(long, default_value_t = 20, value_parser = clap::value_parser!(u32).range(1..=2000))]
    pub rate: u32,
}

/// The client's ejection counter (see docs/operations.md).
const EJECTIONS_METRIC: &str = "federation_ejections_total";

/// How long the client may take to see every service before the story starts.
const WARM_UP: Duration = Duration::from_secs(15);

/// Runs the demo.
///
/// # Errors
/// Exit 1 when the sandbox cannot start or the story cannot be applied; exit 3/4 when the
/// client cannot be built or never reaches a service.
pub async fn run(global: &GlobalArgs, args: DemoArgs) -> Result<Exit, CliError> {
    eprintln!("starting the sandbox (zervigo + looma, Consul doubles, 3 instances per service)…");
    let sandbox = Sandbox::start(SandboxOptions {
        seed: args.seed,
        ..SandboxOptions::default()
    })
    .await
    .map_err(|e| CliError::failure(format!("cannot start the sandbox: {e}")))?;
    let config = sandbox.config();
    let clusters: Vec<String> = config.clusters.iter().map(|c| c.name.clone()).collect();
    let dwell = config
        .service("user")
        .map(|s| config.policy_for(s).failover.dwell)
        .unwrap_or_default();
    let client = FederatedServiceClient::builder()
        .config(config)
        .seed(args.seed)
        .build()?;
    wait_for_discovery(&client, WARM_UP).await;
    warm_up(&client).await?;

    let phases: Arc<[story::Phase]> = story::plan(args.duration, dwell).into();
    let boundaries = story::boundaries(&phases);
    let total = boundaries.last().copied().unwrap_or_default();
    eprintln!(
        "running {} phases over {:.0} s, {} calls/s per service (seed {})",
        phases.len(),
        total.as_secs_f64(),
        args.rate,
        args.seed
    );
    let start = Instant::now();
    let phase = Arc::new(AtomicUsize::new(0));
    let shared = driver::Shared {
        client,
        log: Arc::default(),
        phase: Arc::clone(&phase),
        phases: Arc::clone(&phases),
        start,
    };
    let log = Arc::clone(&shared.log);
    let observer = shared.client.clone();
    let ejections_now = || stats::counter_total(&observer.metrics_text(), EJECTIONS_METRIC);
    let mut ejection_marks = vec![ejections_now()];
    let traffic = driver::Driver::start(shared, args.rate, args.seed);
    let ticker = progress::spawn(
        Arc::clone(&log),
        Arc::clone(&phase),
        Arc::clone(&phases),
        clusters.clone(),
        start,
    );
    let mut events = Vec::new();
    let mut story_error = None;
    for (i, p) in phases.iter().enumerate() {
        phase.store(i, Ordering::Release);
        eprintln!("── phase {} {}: {}", i + 1, p.name, p.title);
        let result = faults::run_phase(&sandbox, i, p, start, |event| {
            eprintln!("   ! {:.1}s {}", event.at.as_secs_f64(), event.what);
            events.push(event);
        })
        .await;
        ejection_marks.push(ejections_now());
        if let Err(e) = result {
            story_error = Some(e);
            break;
        }
    }
    traffic.stop().await;
    ticker.abort();
    if let Some(e) = story_error {
        return Err(CliError::failure(format!("the demo story failed: {e}")));
    }

    let samples = driver::samples_since(&log, 0);
    let info = report::RunInfo {
        seed: args.seed,
        rate: args.rate,
        clusters,
        phases: &phases,
        boundaries: &boundaries,
        min_success: args.min_success,
        ejections: ejection_marks
            .windows(2)
            .map(|w| w[1].saturating_sub(w[0]))
            .collect(),
    };
    let summary = report::build(&info, &samples, &events);
    if global.json {
        print_json(&summary)?;
        eprintln!("{}", report::verdict(&summary));
    } else {
        print!("{}", report::render(&summary));
        print!("{}", chart::render(&summary));
        println!("\n{}", report::verdict(&summary));
    }
    Ok(if summary.passed {
        Exit::Ok
    } else {
        Exit::Failure
    })
}

/// Calls each service until it answers, so discovery start-up is not counted as failures.
async fn warm_up(client: &FederatedServiceClient) -> Result<(), CliError> {
    let deadline = Instant::now() + WARM_UP;
    let mut rng = traffic::SplitMix64::new(0);
    for target in traffic::Target::ALL {
        loop {
            let request = target.request(&mut rng, story::Prompts::Unique);
            match client.call(target.service(), request).await {
                Ok(response) if response.status().is_success() => break,
                outcome => {
                    if Instant::now() >= deadline {
                        let detail = match outcome {
                            Ok(r) => format!("status {}", r.status()),
                            Err(e) => e.to_string(),
                        };
                        return Err(CliError::new(
                            Exit::Unavailable,
                            "unavailable",
                            format!(
                                "the sandbox's {} service did not answer within {WARM_UP:?}: {detail}",
                                target.service()
                            ),
                        ));
                    }
                    tokio::time::sleep(Duration::from_millis(100)).await;
                }
            }
        }
    }
    Ok(())
}
