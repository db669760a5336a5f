//! Hedged requests: the tail latency one slow instance adds, with and without hedging.
//!
//! A slow instance sets the p99 of every caller that sends it work; hedging is only worth its
//! extra upstream load if it brings that tail back near a healthy fleet's. Three SDK variants
//! run interleaved under the same open-loop rate: `healthy` (3 instances answering in 10–14 ms,
//! no hedging: the reference), `hedged` (the same fleet shape, one instance 200 ms slower,
//! `hedge: { percentile: p95, delay: 15ms }`) and `no-hedge` (that degraded fleet without
//! hedging). All use the default balancer (P2C over peak-EWMA). Goal: `hedged` p99 ≤ 1.3x the
//! healthy p99, at ≤ 10 % extra upstream requests (hedges / calls of the hedged client).

use std::sync::Arc;
use std::time::Duration;

use federation_core::client::FederatedServiceClient;
use federation_core::config::{HedgePolicy, Policy};
use federation_testkit::instance::{Behavior, Latency, ServiceInstance};

use super::Settings;
use super::fixture;
use super::interleave::{Comparison, interleave};
use super::report::{GoalRow, Report, Verdict, comparison_table, fmt_ratio};
use super::runner::Load;
use super::target::{Sdk, Variant};
use crate::exit::CliError;

/// Calls per second of the open loop (about 2–3 calls in flight at 12 ms each).
const RATE: f64 = 200.0;
/// How much slower the slow instance answers.
const SLOWER: Duration = Duration::from_millis(200);

/// Runs the hedging comparison and adds its table and goal row.
///
/// # Errors
/// When the instances or clients cannot be set up.
pub async fn run(settings: &Settings, report: &mut Report) -> Result<(), CliError> {
    let healthy = fleet(false).await?;
    let degraded = fleet(true).await?;
    let hedge = HedgePolicy {
        delay: Duration::from_millis(15),
        percentile: Some(95.0),
        ..HedgePolicy::default()
    };
    let hedged = client(&degraded, Some(hedge))?;
    let variants = [
        ("healthy", sdk(client(&healthy, None)?)),
        ("hedged", sdk(hedged.clone())),
        ("no-hedge", sdk(client(&degraded, None)?)),
    ];
    let load = Load::Open { rate: RATE };
    let cmp = interleave("hedge", &variants, load, settings.plan).await;
    let extra = extra_share(&hedged);
    let mut section = format!(
        "### hedge: one of 3 instances {} ms slower, hedging vs a healthy fleet\n\n\
         Instances answer in 10–14 ms; the slow one {} ms later. `hedged`: \
         `hedge: {{ percentile: p95, delay: 15ms }}`; default balancer (P2C peak-EWMA) for all. \
         Extra upstream requests of the hedged client (hedges / calls, warm-up included): {:.1} %.\n\n",
        SLOWER.as_millis(),
        SLOWER.as_millis(),
        extra * 100.0
    );
    section.push_str(&comparison_table("open loop", &cmp));
    report.section(section);
    report.goal(goal_row(&cmp, extra));
    Ok(())
}

/// Three instances answering in 10–14 ms; with `slow`, the first one 200 ms later.
async fn fleet(slow: bool) -> Result<Vec<ServiceInstance>, CliError> {
    let instances = fixture::start_instances(3).await?;
    let base = (Duration::from_millis(10), Duration::from_millis(14));
    for (i, instance) in instances.iter().enumerate() {
        let extra = if slow && i == 0 {
            SLOWER
        } else {
            Duration::ZERO
        };
        instance.set_behavior(Behavior {
            latency: Latency::Uniform(base.0 + extra, base.1 + extra),
            ..Behavior::default()
        });
    }
    Ok(instances)
}

/// A client of `instances` whose benchmark service hedges per `hedge`.
fn client(
    instances: &[ServiceInstance],
    hedge: Option<HedgePolicy>,
) -> Result<FederatedServiceClient, CliError> {
    let mut config = fixture::static_config(instances)?;
    let policy = Policy {
        hedge,
        ..config.defaults.clone()
    };
    for service in &mut config.services {
        service.policy = Some(policy.clone());
    }
    Ok(FederatedServiceClient::from_config(config)?)
}

fn sdk(client: FederatedServiceClient) -> Variant {
    Variant::Sdk(Sdk {
        client,
        service: Arc::from(fixture::SERVICE),
        path: Arc::from(fixture::PATH),
    })
}

/// Hedges sent per call of `client`'s benchmark service, from its metrics.
fn extra_share(client: &FederatedServiceClient) -> f64 {
    let text = client.metrics_text();
    let service = format!("service=\"{}\"", fixture::SERVICE);
    let sum = |family: &str| -> f64 {
        text.lines()
            .filter(|l| l.starts_with(family) && l.contains(&service))
            .filter_map(|l| l.rsplit(' ').next()?.parse::<f64>().ok())
            .sum()
    };
    let calls = sum("federation_requests_total{");
    if calls > 0.0 {
        sum("federation_hedges_total{") / calls
    } else {
        0.0
    }
}

/// The goal row (variant 0 = healthy, 1 = hedged, 2 = no-hedge).
fn goal_row(cmp: &Comparison, extra: f64) -> GoalRow {
    let (hedged, hedged_reps) = cmp.ratio(1, 0, |s| s.p99.as_secs_f64());
    let (plain, plain_reps) = cmp.ratio(2, 0, |s| s.p99.as_secs_f64());
    let errors: u64 = (0..3).map(|v| cmp.median_of(v).errors).sum();
    let ok = hedged <= 1.3 && extra <= 0.10 && errors == 0;
    GoalRow {
        id: "H1",
        what: "p99 with 1 of 3 instances 200 ms slower, vs a healthy fleet".into(),
        measured: format!(
            "hedged {}; no hedging {}; extra requests {:.1} %{}",
            fmt_ratio(hedged, &hedged_reps),
            fmt_ratio(plain, &plain_reps),
            extra * 100.0,
            if errors > 0 {
                format!("; {errors} errors")
            } else {
                String::new()
            }
        ),
        goal: "hedged p99 ≤ 1.3x, extra requests ≤ 10 %".into(),
        verdict: Verdict::of(ok),
    }
}
