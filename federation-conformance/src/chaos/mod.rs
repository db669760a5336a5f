//! The chaos run: a seeded random fault schedule over a long stream of calls, with the
//! invariants checked after every step.
//!
//! Scenarios prove one behaviour at a time; incidents combine them (an agent down while an
//! instance is flapping and another is slow). This run throws a reproducible random mix of
//! faults at a two-cluster topology (zervigo discovered through a Consul double, looma static)
//! and, after every step of calls, checks: **no idempotent call lost while some instance had been
//! reachable long enough for the client to know it** ([`schedule::Model::settled`]); **no
//! request to an instance whose breaker stayed open except the single probe**; **retry load
//! within the budget** over every window; and at the end, **no growth** of open file
//! descriptors, tokio tasks or memory once the faults are cleared. It prints its figures
//! (calls, faults, success share, retries/total).
//!
//! `FEDERATION_CHAOS_SECS` sets the duration (CI: 60), `FEDERATION_CHAOS_SEED` the seed.

mod invariants;
pub mod schedule;

use std::collections::BTreeMap;
use std::time::{Duration, Instant};

use futures_util::future::join_all;
use serde_json::json;

use crate::driver::{Driver, InstanceRef, World};
use crate::schema::{
    BehaviorSpec, CallSpec, ClusterSpec, ConsulFaultSpec, DiscoveryKind, ServiceSpec, Topology,
};
use crate::sdk_driver::SdkDriver;
use crate::testkit_world::TestkitWorld;
use schedule::{Fault, Model, Rng};

pub use invariants::{open_fds, rss_kib};

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

/// Knobs of a chaos run.
#[derive(Clone, Debug)]
pub struct ChaosOptions {
    /// Seed of the fault schedule.
    pub seed: u64,
    /// How long faults are injected.
    pub duration: Duration,
    /// Calls per step.
    pub calls_per_step: usize,
    /// Concurrent callers.
    pub concurrency: usize,
    /// Probability of a fault before a step.
    pub fault_probability: f64,
}

impl ChaosOptions {
    /// The CI run (60 s unless `FEDERATION_CHAOS_SECS` says otherwise; seed from
    /// `FEDERATION_CHAOS_SEED`, default 2026).
    pub fn from_env() -> Self {
        let secs = std::env::var("FEDERATION_CHAOS_SECS")
            .ok()
            .and_then(|s| s.parse().ok());
        let seed = std::env::var("FEDERATION_CHAOS_SEED")
            .ok()
            .and_then(|s| s.parse().ok());
        Self {
            seed: seed.unwrap_or(2026),
            duration: Duration::from_secs(secs.unwrap_or(60)),
            calls_per_step: 24,
            concurrency: 4,
            fault_probability: 0.35,
        }
    }
}

/// What a chaos run did and found.
#[derive(Clone, Debug, Default)]
pub struct ChaosReport {
    /// Figures keyed by name (calls, faults, succeeded, attempts, retries, fds, tasks, RSS ...).
    pub figures: BTreeMap<&'static str, f64>,
    /// Faults injected, by kind.
    pub faults: BTreeMap<&'static str, usize>,
    /// Failed calls while something was reachable, by outcome, that the budget explains
    /// (`budget_exhausted`), reported but allowed.
    pub shed: BTreeMap<String, usize>,
    /// Broken invariants.
    pub violations: Vec<String>,
}

impl ChaosReport {
    /// The figures as printable lines.
    pub fn render(&self) -> String {
        let mut out = String::from("chaos run figures:\n");
        for (k, v) in &self.figures {
            out.push_str(&format!("  {k}: {v:.3}\n"));
        }
        out.push_str(&format!("  faults injected: {:?}\n", self.faults));
        out.push_str(&format!(
            "  shed by the retry budget while reachable: {:?}\n",
            self.shed
        ));
        out.push_str(&format!("  violations: {}\n", self.violations.len()));
        for v in self.violations.iter().take(30) {
            out.push_str(&format!("    {v}\n"));
        }
        out
    }
}

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

/// The client configuration of the chaos run for `world` (one service `user` preferring zervigo).
pub fn client_config(world: &TestkitWorld) -> Result<serde_json::Value, String> {
    Ok(json!({
        "clusters": {
            "zervigo": world.cluster_source("zervigo")?,
            "looma": world.cluster_source("looma")?,
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

fn label(fault: &Fault) -> &'static str {
    match fault {
        Fault::Kill(_) => "kill",
        Fault::Revive(_) => "revive",
        Fault::Unavailable(_) => "status_503",
        Fault::Slow(_) => "slow",
        Fault::Heal(_) => "heal",
        Fault::ConsulDown(_) => "consul_down",
        Fault::ConsulUp(_) => "consul_up",
        Fault::ClusterDown(_) => "cluster_down",
        Fault::ClusterUp(_) => "cluster_up",
    }
}

async fn inject(world: &TestkitWorld, all: &[InstanceRef], fault: &Fault) -> Result<(), String> {
    let clusters = ["zervigo", "looma"];
    let behave = |i: usize, spec: BehaviorSpec| {
        world.set_behavior(
            &all[i],
            &BehaviorSpec {
                target: String::new(),
                ..spec
            },
        )
    };
    match fault {
        Fault::Kill(i) => world.kill(&all[*i]).await,
        Fault::Revive(i) => world.revive(&all[*i]).await,
        Fault::Unavailable(i) => behave(
            *i,
            BehaviorSpec {
                status: Some(503),
                ..BehaviorSpec::default()
            },
        ),
        Fault::Slow(i) => behave(
            *i,
            BehaviorSpec {
                latency_ms: Some(600),
                ..BehaviorSpec::default()
            },
        ),
        Fault::Heal(i) => behave(*i, BehaviorSpec::default()),
        Fault::ConsulDown(c) | Fault::ConsulUp(c) => world.consul_fault(&ConsulFaultSpec {
            cluster: clusters[*c].to_owned(),
            fault: if matches!(fault, Fault::ConsulDown(_)) {
                "down"
            } else {
                "clear"
            }
            .to_owned(),
            delay_ms: None,
        }),
        Fault::ClusterDown(c) | Fault::ClusterUp(c) => {
            for (i, r) in all
                .iter()
                .enumerate()
                .filter(|(_, r)| r.cluster == clusters[*c])
            {
                if matches!(fault, Fault::ClusterDown(_)) {
                    world.kill(r).await?;
                } else {
                    if !world.instance(r)?.is_running() {
                        world.revive(r).await?;
                    }
                    behave(i, BehaviorSpec::default())?;
                }
            }
            Ok(())
        }
    }
}

fn tasks() -> usize {
    tokio::runtime::Handle::current()
        .metrics()
        .num_alive_tasks()
}

/// Runs the chaos schedule. `Err` only when the world or client cannot be set up.
pub async fn run(options: &ChaosOptions) -> Result<ChaosReport, String> {
    let fds_start = open_fds().unwrap_or(0);
    let rss_start = rss_kib().unwrap_or(0);
    let world = TestkitWorld::start(&topology()).await?;
    let all = world.instances();
    let driver = SdkDriver::from_json(&client_config(&world)?)?;
    let mut report = ChaosReport::default();
    let request = CallSpec {
        service: "user".to_owned(),
        method: "GET".to_owned(),
        path: "/work".to_owned(),
        idempotent: None,
        timeout_ms: None,
        attempt_timeout_ms: None,
        cluster: None,
        tags: None,
        body: None,
        headers: BTreeMap::new(),
    };
    // Warm-up: discovery answered, connections pooled; the baseline is taken after it.
    let warm_until = Instant::now() + Duration::from_secs(5);
    while Instant::now() < warm_until && !driver.call(&request).await.succeeded() {
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    for _ in 0..50 {
        driver.call(&request).await;
    }
    let (fds_base, tasks_base, rss_base) =
        (open_fds().unwrap_or(0), tasks(), rss_kib().unwrap_or(0));

    let cluster_of = all
        .iter()
        .map(|r| usize::from(r.cluster != "zervigo"))
        .collect();
    let mut model = Model::new(cluster_of, vec![true, false], Instant::now() - SETTLE);
    let mut rng = Rng::new(options.seed);
    let mut budget =
        invariants::BudgetCheck::new(BUDGET_PERCENT, BUDGET_MIN_PER_SECOND, BUDGET_WINDOW);
    let (mut calls, mut ok, mut attempts, mut retries, mut faults) =
        (0usize, 0usize, 0usize, 0usize, 0usize);
    let started = Instant::now();
    let mut step = 0usize;
    let mut reachable_steps = 0usize;
    while started.elapsed() < options.duration {
        step += 1;
        if rng.chance(options.fault_probability) {
            let fault = model.draw(&mut rng);
            inject(&world, &all, &fault).await?;
            model.apply(&fault, Instant::now());
            *report.faults.entry(label(&fault)).or_default() += 1;
            faults += 1;
        }
        let step_start = Instant::now();
        let reachable = (0..all.len()).any(|i| model.settled(i, step_start, SETTLE));
        let open_before = invariants::open_breakers(&driver.health(), "user");
        let before: Vec<u64> = all.iter().map(|i| world.requests(i)).collect();
        let per = options.calls_per_step / options.concurrency.max(1);
        let workers = (0..options.concurrency.max(1)).map(|_| async {
            let mut out = Vec::with_capacity(per);
            for _ in 0..per {
                out.push(driver.call(&request).await);
            }
            out
        });
        let records: Vec<_> = join_all(workers).await.into_iter().flatten().collect();
        let deltas: Vec<(InstanceRef, u64)> = all
            .iter()
            .zip(&before)
            .map(|(i, b)| (i.clone(), world.requests(i).saturating_sub(*b)))
            .collect();
        let open_after = invariants::open_breakers(&driver.health(), "user");
        if step_start.elapsed() < OPEN_FOR {
            report.violations.extend(invariants::probe_only(
                step,
                &open_before,
                &open_after,
                &deltas,
            ));
        }
        let step_retries = invariants::retries(&records);
        if let Some(v) = budget.record(step, Instant::now(), records.len(), step_retries) {
            report.violations.push(v);
        }
        if reachable {
            reachable_steps += 1;
            for (outcome, (n, message)) in invariants::lost(&records) {
                if outcome == "budget_exhausted" {
                    *report.shed.entry(outcome).or_default() += n;
                } else {
                    report.violations.push(format!(
                        "step {step}: {n} calls lost ({outcome}: {message}) while an instance was reachable; model: alive {:?} normal {:?} consul up {:?}; client after the step: {}",
                        model.alive, model.normal, model.consul_up_since.iter().map(Option::is_some).collect::<Vec<_>>(),
                        invariants::instance_states(&driver.health(), "user")
                    ));
                }
            }
        }
        if let Some(rest) = STEP.checked_sub(step_start.elapsed()) {
            tokio::time::sleep(rest).await;
        }
        calls += records.len();
        ok += records.iter().filter(|r| r.succeeded()).count();
        attempts += records.iter().map(|r| r.attempts.len()).sum::<usize>();
        retries += step_retries;
    }
    let elapsed = started.elapsed();

    // Heal everything, let the client settle, then compare resources with the baseline.
    for c in 0..2 {
        inject(&world, &all, &Fault::ClusterUp(c)).await?;
    }
    inject(&world, &all, &Fault::ConsulUp(0)).await?;
    tokio::time::sleep(Duration::from_secs(4)).await;
    for _ in 0..50 {
        driver.call(&request).await;
    }
    let (fds_end, tasks_end, rss_end) = (open_fds().unwrap_or(0), tasks(), rss_kib().unwrap_or(0));
    drop(driver);
    world.shutdown().await;
    tokio::time::sleep(Duration::from_millis(500)).await;
    let fds_after_shutdown = open_fds().unwrap_or(0);

    // Pools may hold one idle connection per instance and caller; anything beyond is a leak.
    // The upstreams run in this process, so each loopback connection holds two descriptors
    // here: the client's socket and the server's accepted one.
    let fd_slack = 2 * all.len() * options.concurrency + 16;
    if fds_end > fds_base + fd_slack {
        report.violations.push(format!(
            "open fds grew from {fds_base} to {fds_end} (slack {fd_slack})"
        ));
    }
    if fds_after_shutdown > fds_start + 8 {
        report.violations.push(format!(
            "{fds_after_shutdown} fds open after shutdown, {fds_start} before the run"
        ));
    }
    if tasks_end > tasks_base + 32 {
        report
            .violations
            .push(format!("tokio tasks grew from {tasks_base} to {tasks_end}"));
    }
    if rss_end > rss_base + 128 * 1024 {
        report
            .violations
            .push(format!("RSS grew from {rss_base} KiB to {rss_end} KiB"));
    }
    let f = &mut report.figures;
    f.insert("seconds", elapsed.as_secs_f64());
    f.insert("calls", calls as f64);
    f.insert("steps", step as f64);
    f.insert(
        "steps with a settled reachable instance",
        reachable_steps as f64,
    );
    f.insert("faults injected", faults as f64);
    f.insert("success share", ok as f64 / calls.max(1) as f64);
    f.insert("attempts", attempts as f64);
    f.insert(
        "retries+failovers / total attempts",
        retries as f64 / attempts.max(1) as f64,
    );
    f.insert("fds start", fds_start as f64);
    f.insert("fds base", fds_base as f64);
    f.insert("fds end", fds_end as f64);
    f.insert("fds after shutdown", fds_after_shutdown as f64);
    f.insert("tasks base", tasks_base as f64);
    f.insert("tasks end", tasks_end as f64);
    f.insert("rss KiB start", rss_start as f64);
    f.insert("rss KiB base", rss_base as f64);
    f.insert("rss KiB end", rss_end as f64);
    Ok(report)
}
