//! The chaos run: a seeded random fault schedule over a long stream of calls, with the
//! invariants checked after every step.
//!
//! Scenarios prove one behaviour at a time; incidents combine them (an agent down while an
//! instance is flapping and another is slow). This run throws a reproducible random mix of
//! faults at a two-cluster topology (zervigo discovered through a Consul double, looma static)
//! and, after every step of calls, checks: **no idempotent call lost while some instance had been
//! reachable long enough for the client to know it** ([`schedule::Model::settled`]); losses the
//! retry budget explains (`budget_exhausted`) are counted and **bounded** (at most
//! [`SHED_MAX_SHARE`] of the calls made while something was reachable); **no request to an
//! instance whose breaker stayed open except the single probe**, unless panic routing may have
//! engaged (no instance admitted throughout the step); **retry load within the
//! budget** over every window; and at the end, **no growth** of open file descriptors, tokio
//! tasks or memory beyond a measured baseline (`resources.rs`). It prints its figures (calls,
//! faults, success share, retries/total, resources).
//!
//! Several seeds per run: `FEDERATION_CHAOS_SEEDS=2026,7` (or one with `FEDERATION_CHAOS_SEED`);
//! `FEDERATION_CHAOS_SECS` is the duration per seed. A violation found by a long run is replayed
//! as a script in `tests/chaos_regressions.rs`.

mod inject;
mod invariants;
mod options;
pub mod resources;
pub mod schedule;

use std::collections::BTreeMap;
use std::time::{Duration, Instant};

use futures_util::future::join_all;
use serde_json::json;

use crate::driver::{CallRecord, Driver, InstanceRef, World};
use crate::schema::{CallSpec, ClusterSpec, DiscoveryKind, ServiceSpec, Topology};
use crate::sdk_driver::SdkDriver;
use crate::testkit_world::TestkitWorld;
use inject::{inject, label};
use resources::{Range, Sample};
use schedule::{Fault, Model, Rng};

pub use options::{ChaosOptions, ChaosReport};
pub use resources::{open_fds, rss_kib};

/// Minimum length of a step, so faults arrive at a steady pace even when calls fail fast.
const STEP: Duration = Duration::from_millis(250);
/// Shortest breaker open period of the run; a step's calls must take less.
const OPEN_FOR: Duration = Duration::from_millis(1000);
/// How long an instance must have been well before a lost call counts against the SDK:
/// the longest open period plus discovery and check latency.
const SETTLE: Duration = Duration::from_millis(4500);
/// Retry budget of the run.
const BUDGET_PERCENT: u32 = 20;
const BUDGET_MIN_PER_SECOND: u32 = 10;
const BUDGET_WINDOW: Duration = Duration::from_secs(10);
/// Largest share of the calls made while an instance was reachable that may be lost to the
/// retry budget (`budget_exhausted`). The budget refuses a retry only when retries exceeded
/// 20 % of the calls plus 10/s over 10 s; with the breakers ejecting a bad instance after at
/// most 5 failures that takes a burst of faults, and the measured runs shed none
/// (docs/conformance.md), so one call in 200 is already far outside normal.
pub const SHED_MAX_SHARE: f64 = 0.005;
/// Steps of the calm phase that measures the resource baseline.
const CALM_STEPS: usize = 20;

/// The chaos topology: zervigo (3 instances, Consul double) and looma (3, static).
pub fn topology() -> Topology {
    let cluster = |name: &str, discovery, service: &str| ClusterSpec {
        name: name.to_owned(),
        discovery,
        load_balancing: None,
        services: BTreeMap::from([(service.to_owned(), ServiceSpec::Count(3))]),
        consul_delay_ms: None,
    };
    Topology {
        clusters: vec![
            cluster("zervigo", DiscoveryKind::Consul, "user-service"),
            cluster("looma", DiscoveryKind::Static, "looma-user-api"),
        ],
    }
}

/// A cluster source with the run's pool settings: idle connections close after 1 s, so quiet
/// readings hold no pooled connection (`resources.rs`); steps (250 ms) keep them warm.
fn with_pool(mut source: serde_json::Value) -> serde_json::Value {
    source["connections"] = json!({ "idle_timeout": "1s" });
    source
}

/// The client configuration of the chaos run for `world` (one service `user` preferring zervigo).
pub fn client_config(world: &TestkitWorld) -> Result<serde_json::Value, String> {
    Ok(json!({
        "clusters": {
            "zervigo": with_pool(world.cluster_source("zervigo")?),
            "looma": with_pool(world.cluster_source("looma")?),
        },
        "services": { "user": { "prefer": "zervigo", "names": { "zervigo": "user-service", "looma": "looma-user-api" } } },
        "defaults": {
            "timeout": { "attempt": "250ms", "total": "2s" },
            "retry": { "max_attempts": 3, "budget": { "percent": BUDGET_PERCENT, "min_per_second": BUDGET_MIN_PER_SECOND, "window": "10s" } },
            "breaker": { "consecutive_failures": 5, "open_for": "1s", "max_open_for": "3s" },
            "failover": { "dwell": "1s" },
        }
    }))
}

/// The run's call: `GET /work` on service `user`, pinned to `cluster` when given.
pub fn request(cluster: Option<&str>) -> CallSpec {
    CallSpec {
        service: "user".to_owned(),
        method: "GET".to_owned(),
        path: "/work".to_owned(),
        idempotent: None,
        timeout_ms: None,
        attempt_timeout_ms: None,
        cluster: cluster.map(str::to_owned),
        tags: None,
        body: None,
        headers: BTreeMap::new(),
    }
}

/// One step's calls: `calls_per_step` spread over `concurrency` callers.
async fn step_calls(
    driver: &SdkDriver,
    options: &ChaosOptions,
    request: &CallSpec,
) -> Vec<CallRecord> {
    let callers = options.concurrency.max(1);
    let per = options.calls_per_step / callers;
    let workers = (0..callers).map(|_| async {
        let mut out = Vec::with_capacity(per);
        for _ in 0..per {
            out.push(driver.call(request).await);
        }
        out
    });
    join_all(workers).await.into_iter().flatten().collect()
}

/// Until the client serves (10 s at most), then steps at full concurrency pinned to each
/// cluster, so every pool holds what steady traffic needs before anything is measured.
async fn warm(driver: &SdkDriver, options: &ChaosOptions) -> Result<(), String> {
    let until = Instant::now() + Duration::from_secs(10);
    for cluster in ["zervigo", "looma"] {
        let pinned = request(Some(cluster));
        while !driver.call(&pinned).await.succeeded() {
            if Instant::now() >= until {
                return Err(format!("cluster {cluster} never served within 10 s"));
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        for _ in 0..4 {
            step_calls(driver, options, &pinned).await;
        }
    }
    Ok(())
}

/// [`CALM_STEPS`] steps of the run's pattern without faults, then the quiet reading.
async fn calm(driver: &SdkDriver, options: &ChaosOptions) -> Range {
    for _ in 0..CALM_STEPS {
        let start = Instant::now();
        step_calls(driver, options, &request(None)).await;
        if let Some(rest) = STEP.checked_sub(start.elapsed()) {
            tokio::time::sleep(rest).await;
        }
    }
    quiet().await
}

/// Readings every 250 ms without traffic until four in a row agree on descriptors and tasks
/// (the idle connections have expired and closed), 15 s at most; the range of those four.
async fn quiet() -> Range {
    let until = Instant::now() + Duration::from_secs(15);
    let mut last = std::collections::VecDeque::with_capacity(4);
    loop {
        tokio::time::sleep(Duration::from_millis(250)).await;
        if last.len() == 4 {
            last.pop_front();
        }
        last.push_back(Sample::now());
        let mut range = Range::of(last[0]);
        for s in &last {
            range.add(*s);
        }
        let settled = last.len() == 4 && range.spread().fds == 0 && range.spread().tasks == 0;
        if settled || Instant::now() >= until {
            return range;
        }
    }
}

/// Counters of the fault phase.
#[derive(Default)]
struct Tally {
    steps: usize,
    calls: usize,
    ok: usize,
    attempts: usize,
    retries: usize,
    faults: usize,
    reachable_steps: usize,
    reachable_calls: usize,
    shed: usize,
}

/// The fault phase: a fault drawn before each step, the invariants checked after it.
async fn faults(
    world: &TestkitWorld,
    driver: &SdkDriver,
    options: &ChaosOptions,
    report: &mut ChaosReport,
    during: &mut Range,
) -> Result<Tally, String> {
    let all = world.instances();
    let cluster_of = all
        .iter()
        .map(|r| usize::from(r.cluster != "zervigo"))
        .collect();
    let mut model = Model::new(cluster_of, vec![true, false], Instant::now() - SETTLE);
    let mut rng = Rng::new(options.seed);
    let mut budget =
        invariants::BudgetCheck::new(BUDGET_PERCENT, BUDGET_MIN_PER_SECOND, BUDGET_WINDOW);
    let mut t = Tally::default();
    let started = Instant::now();
    while started.elapsed() < options.duration {
        t.steps += 1;
        let step = t.steps;
        if rng.chance(options.fault_probability) {
            let fault = model.draw(&mut rng);
            inject(world, &all, &fault).await?;
            model.apply(&fault, Instant::now());
            *report.faults.entry(label(&fault)).or_default() += 1;
            t.faults += 1;
        }
        let step_start = Instant::now();
        let reachable = (0..all.len()).any(|i| model.settled(i, step_start, SETTLE));
        let health_before = driver.health();
        let open_before = invariants::open_breakers(&health_before, "user");
        let before: Vec<u64> = all.iter().map(|i| world.requests(i)).collect();
        let records = step_calls(driver, options, &request(None)).await;
        let deltas: Vec<(InstanceRef, u64)> = all
            .iter()
            .zip(&before)
            .map(|(i, b)| (i.clone(), world.requests(i).saturating_sub(*b)))
            .collect();
        let health_after = driver.health();
        let open_after = invariants::open_breakers(&health_after, "user");
        let no_panic = invariants::no_panic(
            &invariants::admitted(&health_before, "user"),
            &invariants::admitted(&health_after, "user"),
        );
        if no_panic && step_start.elapsed() < OPEN_FOR {
            let v = invariants::probe_only(step, &open_before, &open_after, &deltas);
            report.violations.extend(v);
        }
        let step_retries = invariants::retries(&records);
        let span = (step_start, Instant::now());
        if let Some(v) = budget.record(step, span, records.len(), step_retries) {
            report.violations.push(v);
        }
        if reachable {
            t.reachable_steps += 1;
            t.reachable_calls += records.len();
            for (outcome, (n, message)) in invariants::lost(&records) {
                if outcome == "budget_exhausted" {
                    *report.shed.entry(outcome).or_default() += n;
                    t.shed += n;
                } else {
                    report.violations.push(format!(
                        "step {step}: {n} calls lost ({outcome}: {message}) while an instance was reachable; model: alive {:?} normal {:?} consul up {:?}; client after the step: {}",
                        model.alive, model.normal, model.consul_up_since.iter().map(Option::is_some).collect::<Vec<_>>(),
                        invariants::instance_states(&driver.health(), "user")
                    ));
                }
            }
        }
        during.add(Sample::now());
        if let Some(rest) = STEP.checked_sub(step_start.elapsed()) {
            tokio::time::sleep(rest).await;
        }
        t.calls += records.len();
        t.ok += records.iter().filter(|r| r.succeeded()).count();
        t.attempts += records.iter().map(|r| r.attempts.len()).sum::<usize>();
        t.retries += step_retries;
    }
    report
        .figures
        .insert("seconds", started.elapsed().as_secs_f64());
    Ok(t)
}

/// Runs the chaos schedule. `Err` only when the world or client cannot be set up.
pub async fn run(options: &ChaosOptions) -> Result<ChaosReport, String> {
    let start = Sample::now();
    let world = TestkitWorld::start(&topology()).await?;
    let driver = SdkDriver::from_json(&client_config(&world)?)?;
    let mut report = ChaosReport::default();
    warm(&driver, options).await?;
    let base = calm(&driver, options).await;
    let mut during = Range::of(Sample::now());
    let t = faults(&world, &driver, options, &mut report, &mut during).await?;

    // Heal everything, let the client settle (the longest open period), then measure again
    // exactly as the baseline was measured (quiet readings: see `resources.rs`).
    let all = world.instances();
    for c in 0..2 {
        inject(&world, &all, &Fault::ClusterUp(c)).await?;
    }
    inject(&world, &all, &Fault::ConsulUp(0)).await?;
    tokio::time::sleep(Duration::from_secs(4)).await;
    warm(&driver, options).await?;
    let end = calm(&driver, options).await;
    let limit = resources::limit(&base);
    report
        .violations
        .extend(resources::growth(&end.max, &limit, &base));
    drop(driver);
    world.shutdown().await;
    // Everything the run opened is closed again: wait for it (5 s at most).
    let closed_by = Instant::now() + Duration::from_secs(5);
    let mut after = Sample::now();
    while after.fds > start.fds && Instant::now() < closed_by {
        tokio::time::sleep(Duration::from_millis(20)).await;
        after = Sample::now();
    }
    if after.fds > start.fds {
        report.violations.push(format!(
            "{} fds open 5 s after shutdown, {} before the run",
            after.fds, start.fds
        ));
    }
    report.violations.extend(invariants::shed_bound(
        t.shed,
        t.reachable_calls,
        SHED_MAX_SHARE,
    ));
    figures(
        &mut report,
        &t,
        [start, after],
        [&base, &during, &end],
        &limit,
    );
    Ok(report)
}

fn figures(
    report: &mut ChaosReport,
    t: &Tally,
    [start, after]: [Sample; 2],
    [base, during, end]: [&Range; 3],
    limit: &Sample,
) {
    let f = &mut report.figures;
    f.insert("calls", t.calls as f64);
    f.insert("steps", t.steps as f64);
    f.insert(
        "steps with a settled reachable instance",
        t.reachable_steps as f64,
    );
    f.insert("calls in those steps", t.reachable_calls as f64);
    f.insert("shed by the budget in those steps", t.shed as f64);
    f.insert("faults injected", t.faults as f64);
    f.insert("success share", t.ok as f64 / t.calls.max(1) as f64);
    f.insert("attempts", t.attempts as f64);
    f.insert(
        "retries+failovers / total attempts",
        t.retries as f64 / t.attempts.max(1) as f64,
    );
    f.insert("fds quiet base", base.max.fds as f64);
    f.insert("fds faults max", during.max.fds as f64);
    f.insert("fds quiet end", end.max.fds as f64);
    f.insert("tasks quiet base", base.max.tasks as f64);
    f.insert("tasks faults max", during.max.tasks as f64);
    f.insert("tasks quiet end", end.max.tasks as f64);
    f.insert("rss KiB quiet base", base.max.rss_kib as f64);
    f.insert("rss KiB faults max", during.max.rss_kib as f64);
    f.insert("rss KiB quiet end", end.max.rss_kib as f64);
    f.insert("fds base spread", base.spread().fds as f64);
    f.insert("tasks base spread", base.spread().tasks as f64);
    f.insert("rss KiB base spread", base.spread().rss_kib as f64);
    f.insert("fds limit", limit.fds as f64);
    f.insert("tasks limit", limit.tasks as f64);
    f.insert("rss KiB limit", limit.rss_kib as f64);
    f.insert("fds before the run", start.fds as f64);
    f.insert("fds after shutdown", after.fds as f64);
}
