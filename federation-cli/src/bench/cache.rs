//! G3: what a cache hit costs, against a bare moka get and a loopback call.
//!
//! A result cache is only worth having when a hit is far cheaper than the call it saves and
//! close to the cache library's own cost; key building, policy checks and copying must not eat
//! the gain. The SDK's hit path (service `cached`, GET, primed once) is timed in batches next to
//! a bare `moka::future::Cache` get of a same-sized key and a plain reqwest loopback call.
//! Goal: hit ≤ 1/25 of a loopback call and ≤ 2x a bare moka get (compared on mean per
//! operation, the figure batch timing measures exactly).

use std::sync::Arc;

use bytes::Bytes;
use federation_core::client::{CacheStatus, FederatedServiceClient};

use super::Settings;
use super::fixture;
use super::interleave::interleave;
use super::report::{GoalRow, Report, Verdict, comparison_table, fmt_ratio};
use super::runner::Load;
use super::target::{RoundRobin, Target, plain_reqwest};
use crate::exit::CliError;

/// Operations per timed batch (a clock read costs about as much as a moka hit).
const BATCH: u32 = 100;

#[derive(Clone, Debug)]
enum CacheVariant {
    Hit(FederatedServiceClient),
    Moka(moka::future::Cache<String, Bytes>, Arc<str>),
    Call(RoundRobin),
}

impl Target for CacheVariant {
    async fn call(&self) -> bool {
        match self {
            Self::Hit(client) => client
                .get(fixture::CACHED, fixture::PATH)
                .send()
                .await
                .is_ok_and(|r| r.served().cache() == CacheStatus::Hit),
            Self::Moka(cache, key) => cache.get(&**key).await.is_some(),
            Self::Call(rr) => rr.call().await,
        }
    }
}

/// Runs the cache comparison and adds its table and G3 rows.
///
/// # Errors
/// When the instances or clients cannot be set up, or the SDK never reports a hit.
pub async fn run(settings: &Settings, report: &mut Report) -> Result<(), CliError> {
    let instances = fixture::start_instances(1).await?;
    let client = FederatedServiceClient::from_config(fixture::static_config(&instances)?)?;
    let primed = client.get(fixture::CACHED, fixture::PATH).send().await?;
    let body = primed.body().clone();
    let moka = moka::future::Cache::new(10_000);
    let key = format!("GET {}{}", fixture::CACHED, fixture::PATH);
    moka.insert(key.clone(), body).await;
    let variants = [
        ("sdk hit", CacheVariant::Hit(client)),
        ("moka get", CacheVariant::Moka(moka, Arc::from(key))),
        (
            "loopback call",
            CacheVariant::Call(RoundRobin::new(plain_reqwest()?, fixture::urls(&instances))),
        ),
    ];
    let cmp = interleave(
        "cache",
        &variants,
        Load::Micro { batch: BATCH },
        settings.plan,
    )
    .await;
    if cmp.median_of(0).errors > 0 {
        return Err(CliError::failure(
            "bench: cache: the SDK did not serve the primed GET from its cache",
        ));
    }
    let mut section =
        String::from("### cache (G3): SDK cache hit vs bare moka get vs loopback reqwest call\n\n");
    section.push_str(&comparison_table(
        &format!("per operation, timed in batches of {BATCH}"),
        &cmp,
    ));
    report.section(section);
    let mean = |s: &super::stats::Sample| s.mean.as_secs_f64();
    let (vs_call, call_reps) = cmp.ratio(0, 2, mean);
    report.goal(GoalRow {
        id: "G3",
        what: "Rust cache hit vs one loopback reqwest call (mean)".into(),
        measured: fmt_ratio(vs_call, &call_reps),
        goal: "≤ 0.04x (1/25)".into(),
        verdict: Verdict::of(vs_call <= 1.0 / 25.0),
    });
    let (vs_moka, moka_reps) = cmp.ratio(0, 1, mean);
    report.goal(GoalRow {
        id: "G3",
        what: "Rust cache hit vs a bare moka get (mean)".into(),
        measured: fmt_ratio(vs_moka, &moka_reps),
        goal: "≤ 2x".into(),
        verdict: Verdict::of(vs_moka <= 2.0),
    });
    report.goal(GoalRow {
        id: "G3",
        what: "Python sync cache hit vs cachetools.TTLCache".into(),
        measured: "pending (measured by the Python binding's benchmark)".into(),
        goal: "≤ 1.0x".into(),
        verdict: Verdict::Skipped,
    });
    Ok(())
}
