//! G1: what the SDK's pipeline costs per call compared with plain reqwest.
//!
//! An SDK that adds noticeable latency or caps throughput gets bypassed. Both variants call the
//! same 3 loopback instances: the SDK with discovery cached (static instances), P2C over
//! peak-EWMA, breakers closed, retries armed and no cache; the baseline a round-robin over the
//! three URLs with an identically configured `reqwest::Client`. Closed loops at each
//! concurrency level measure throughput, then an open loop at half the baseline's peak measures
//! latency without coordinated omission. Goal: p50 ≤ 1.10x, p99 ≤ 1.25x, throughput ≥ 0.90x.
//! A third variant, raw hyper HTTP/1.1 connections with no SDK logic (`floor.rs`), is the
//! floor: goal SDK / floor p50 ≤ 1.10x, throughput ≥ 0.90x at c = 1 and 64.

use std::sync::Arc;

use federation_core::client::FederatedServiceClient;
use federation_testkit::instance::ServiceInstance;

use super::Settings;
use super::fixture;
use super::floor::RawHyper;
use super::interleave::{Comparison, interleave};
use super::report::{GoalRow, Report, Verdict, comparison_table, fmt_ratio};
use super::runner::Load;
use super::target::{RoundRobin, Sdk, Target, Variant, plain_reqwest};
use crate::exit::CliError;

/// Runs the overhead comparisons and adds their tables and G1 rows.
///
/// # Errors
/// When the instances or clients cannot be set up.
pub async fn run(settings: &Settings, report: &mut Report) -> Result<(), CliError> {
    let instances = fixture::start_instances(3).await?;
    let client = FederatedServiceClient::from_config(fixture::static_config(&instances)?)?;
    let variants = [
        (
            "sdk",
            Variant::Sdk(Sdk {
                client,
                service: Arc::from(fixture::SERVICE),
                path: Arc::from(fixture::PATH),
            }),
        ),
        (
            "reqwest",
            Variant::Reqwest(RoundRobin::new(plain_reqwest()?, fixture::urls(&instances))),
        ),
        (
            "hyper floor",
            Variant::Floor(RawHyper::new(
                &instances
                    .iter()
                    .map(ServiceInstance::port)
                    .collect::<Vec<_>>(),
                fixture::PATH,
            )),
        ),
    ];
    let per_call = upstream_requests_per_call(&variants, &instances).await;
    let mut section = format!(
        "### overhead (G1): SDK vs plain reqwest round-robin and the raw-hyper floor, 3 loopback instances\n\n\
         Sanity check: upstream requests per call (1000 sequential calls): sdk {:.3}, reqwest {:.3}, hyper floor {:.3}.\n\n",
        per_call[0], per_call[1], per_call[2]
    );
    let mut peak: f64 = 0.0;
    for &c in &settings.concurrency {
        let load = Load::Closed { concurrency: c };
        let cmp = interleave("overhead", &variants, load, settings.plan).await;
        // The baseline's throughput at the highest level is its peak under load (c = 1 is
        // latency-bound and can read higher on an idle loopback).
        if settings.concurrency.iter().all(|&other| other <= c) {
            peak = cmp.median_of(1).throughput;
        }
        section.push_str(&comparison_table(&format!("c = {c}"), &cmp));
        section.push('\n');
        report.goal(goal_row(&cmp, &format!("c = {c}, closed loop"), true));
        if c == 1 || c == 64 {
            report.goal(floor_row(&cmp, c));
        }
    }
    if peak > 0.0 {
        let load = Load::Open { rate: peak / 2.0 };
        let cmp = interleave("overhead", &variants, load, settings.plan).await;
        section.push_str(&comparison_table(
            "open loop at half the baseline's peak (latency from the intended send time)",
            &cmp,
        ));
        report.goal(goal_row(&cmp, "open loop, ½ baseline peak", false));
    }
    report.section(section);
    Ok(())
}

/// Requests the instances received per call of each variant (1.0 unless something retries,
/// hedges or probes on the hot path).
async fn upstream_requests_per_call(
    variants: &[(&'static str, Variant)],
    instances: &[ServiceInstance],
) -> Vec<f64> {
    const CALLS: u32 = 1000;
    let mut out = Vec::with_capacity(variants.len());
    for (_, target) in variants {
        let before: u64 = instances.iter().map(ServiceInstance::requests).sum();
        for _ in 0..CALLS {
            target.call().await;
        }
        let after: u64 = instances.iter().map(ServiceInstance::requests).sum();
        out.push(after.saturating_sub(before) as f64 / f64::from(CALLS));
    }
    out
}

/// The floor row of one comparison (variant 0 = SDK, 2 = raw hyper): what the SDK costs over
/// the cheapest HTTP/1.1 call the same hyper can make.
fn floor_row(cmp: &Comparison, c: usize) -> GoalRow {
    let (p50, p50_reps) = cmp.ratio(0, 2, |s| s.p50.as_secs_f64());
    let (thr, thr_reps) = cmp.ratio(0, 2, |s| s.throughput);
    let errors: u64 = [0, 2].iter().map(|&v| cmp.median_of(v).errors).sum();
    GoalRow {
        id: "G1f",
        what: format!("SDK / raw-hyper floor, c = {c}, closed loop"),
        measured: format!(
            "p50 {}; throughput {}{}",
            fmt_ratio(p50, &p50_reps),
            fmt_ratio(thr, &thr_reps),
            if errors > 0 {
                format!("; {errors} errors")
            } else {
                String::new()
            }
        ),
        goal: "p50 ≤ 1.10x, throughput ≥ 0.90x".into(),
        verdict: Verdict::of(p50 <= 1.10 && thr >= 0.90 && errors == 0),
    }
}

/// The G1 row of one comparison (variant 0 = SDK, 1 = reqwest).
fn goal_row(cmp: &Comparison, what: &str, with_throughput: bool) -> GoalRow {
    let (p50, p50_reps) = cmp.ratio(0, 1, |s| s.p50.as_secs_f64());
    let (p99, p99_reps) = cmp.ratio(0, 1, |s| s.p99.as_secs_f64());
    let (thr, thr_reps) = cmp.ratio(0, 1, |s| s.throughput);
    let errors: u64 = (0..2).map(|v| cmp.median_of(v).errors).sum();
    let mut measured = format!(
        "p50 {}; p99 {}",
        fmt_ratio(p50, &p50_reps),
        fmt_ratio(p99, &p99_reps)
    );
    let mut ok = p50 <= 1.10 && p99 <= 1.25 && errors == 0;
    if with_throughput {
        measured.push_str(&format!("; throughput {}", fmt_ratio(thr, &thr_reps)));
        ok &= thr >= 0.90;
    }
    if errors > 0 {
        measured.push_str(&format!("; {errors} errors"));
    }
    GoalRow {
        id: "G1",
        what: format!("call overhead, {what}"),
        measured,
        goal: if with_throughput {
            "p50 ≤ 1.10x, p99 ≤ 1.25x, throughput ≥ 0.90x".into()
        } else {
            "p50 ≤ 1.10x, p99 ≤ 1.25x".into()
        },
        verdict: Verdict::of(ok),
    }
}
