//! Running one scenario: build the client configuration, execute the steps in order, judge.
//!
//! The order of operations is part of the contract (a runner that sampled request counters
//! after the calls' stragglers finished would count differently), so it is written once:
//! counters are read right before and right after each calls step, calls are spread over
//! `concurrency` workers on one task, and a health step polls the snapshot until it holds or its
//! window passes.

use std::time::{Duration, Instant};

use futures_util::future::join_all;

use crate::driver::{CallRecord, Driver, InstanceRef, World};
use crate::expect::{self, CallsSummary, RequestDeltas};
use crate::schema::{CallsStep, Scenario, Step};
use crate::target;

/// The outcome of one step.
#[derive(Clone, Debug)]
pub struct StepReport {
    /// `#<n> <kind>[ <name>]`.
    pub label: String,
    /// Violated expectations (empty: the step passed).
    pub failures: Vec<String>,
    /// Figures of a calls step.
    pub summary: Option<CallsSummary>,
}

/// The outcome of a scenario.
#[derive(Clone, Debug)]
pub struct ScenarioReport {
    /// Scenario name.
    pub name: String,
    /// The scenario's `known_failure`, if any.
    pub known_failure: Option<String>,
    /// One entry per executed step (execution stops at a step that could not be carried out).
    pub steps: Vec<StepReport>,
}

impl ScenarioReport {
    /// True when every expectation held.
    pub fn passed(&self) -> bool {
        self.steps.iter().all(|s| s.failures.is_empty())
    }

    /// A multi-line human-readable report.
    pub fn render(&self) -> String {
        let verdict = match (self.passed(), &self.known_failure) {
            (true, Some(_)) => "PASS (marked known_failure: remove the mark)",
            (true, None) => "PASS",
            (false, Some(_)) => "KNOWN FAILURE",
            (false, None) => "FAIL",
        };
        let mut out = format!("scenario {}: {verdict}\n", self.name);
        if let Some(reason) = &self.known_failure {
            out.push_str(&format!("  known failure: {reason}\n"));
        }
        for step in &self.steps {
            out.push_str(&format!("  {}", step.label));
            if let Some(summary) = &step.summary {
                out.push_str(&format!(": {summary}"));
            }
            out.push('\n');
            for failure in &step.failures {
                out.push_str(&format!("    FAILED {failure}\n"));
            }
        }
        out
    }
}

/// The SDK configuration for `scenario` over `world`, as JSON: the scenario's `client` block plus
/// a `clusters` map built from the topology (discovery source and `load_balancing`).
pub fn client_config(scenario: &Scenario, world: &impl World) -> Result<serde_json::Value, String> {
    config_with(&scenario.client, scenario, world)
}

/// The SDK configuration of `client` (a `client` block) over the topology of `scenario`.
fn config_with(
    client: &serde_json::Value,
    scenario: &Scenario,
    world: &impl World,
) -> Result<serde_json::Value, String> {
    let mut clusters = serde_json::Map::new();
    for cluster in &scenario.topology.clusters {
        let mut entry = world.cluster_source(&cluster.name)?;
        if let (Some(lb), Some(map)) = (&cluster.load_balancing, entry.as_object_mut()) {
            map.insert(
                "load_balancing".into(),
                serde_json::Value::String(lb.clone()),
            );
        }
        clusters.insert(cluster.name.clone(), entry);
    }
    let mut config = match client {
        serde_json::Value::Object(map) => map.clone(),
        _ => serde_json::Map::new(),
    };
    config.insert("clusters".into(), serde_json::Value::Object(clusters));
    Ok(serde_json::Value::Object(config))
}

/// Runs every step of `scenario` against `world` with `driver`.
pub async fn run(scenario: &Scenario, world: &impl World, driver: &impl Driver) -> ScenarioReport {
    let mut report = ScenarioReport {
        name: scenario.name.clone(),
        known_failure: scenario.known_failure.clone(),
        steps: Vec::new(),
    };
    let all = world.instances();
    for (n, step) in scenario.steps.iter().enumerate() {
        let (kind, name) = describe(step);
        let label = match name {
            Some(name) => format!("#{} {kind} {name}", n + 1),
            None => format!("#{} {kind}", n + 1),
        };
        let (failures, summary) = match execute(scenario, step, world, driver, &all).await {
            Ok(result) => result,
            Err(e) => (vec![format!("step could not run: {e}")], None),
        };
        let stop = failures.iter().any(|f| f.starts_with("step could not run"));
        report.steps.push(StepReport {
            label,
            failures,
            summary,
        });
        if stop {
            break;
        }
    }
    report
}

fn describe(step: &Step) -> (&'static str, Option<String>) {
    match step {
        Step::Kill(t) => ("kill", Some(t.clone())),
        Step::Revive(t) => ("revive", Some(t.clone())),
        Step::Behavior(b) => ("behavior", Some(b.target.clone())),
        Step::HealthStatus(h) => ("health_status", Some(format!("{} {}", h.target, h.status))),
        Step::Consul(c) => ("consul", Some(format!("{} {}", c.cluster, c.fault))),
        Step::SleepMs(ms) => ("sleep", Some(format!("{ms} ms"))),
        Step::WaitPassing(w) => ("wait_passing", Some(format!("{} = {}", w.target, w.count))),
        Step::Calls(c) => ("calls", c.name.clone()),
        Step::Health(h) => ("health", Some(h.service.clone())),
    }
}

type StepResult = (Vec<String>, Option<CallsSummary>);

async fn execute(
    scenario: &Scenario,
    step: &Step,
    world: &impl World,
    driver: &impl Driver,
    all: &[InstanceRef],
) -> Result<StepResult, String> {
    match step {
        Step::Kill(reference) => {
            for i in target::resolve(reference, all)? {
                world.kill(&i).await?;
            }
        }
        Step::Revive(reference) => {
            for i in target::resolve(reference, all)? {
                world.revive(&i).await?;
            }
        }
        Step::Behavior(spec) => {
            for i in target::resolve(&spec.target, all)? {
                world.set_behavior(&i, spec)?;
            }
        }
        Step::HealthStatus(spec) => {
            for i in target::resolve(&spec.target, all)? {
                world.set_health_status(&i, spec.status)?;
            }
        }
        Step::Consul(spec) => world.consul_fault(spec)?,
        Step::SleepMs(ms) => tokio::time::sleep(Duration::from_millis(*ms)).await,
        Step::WaitPassing(spec) => {
            let (cluster, service) = spec
                .target
                .split_once('/')
                .ok_or_else(|| format!("`{}`: expected cluster/service", spec.target))?;
            world
                .wait_passing(
                    cluster,
                    service,
                    spec.count,
                    Duration::from_millis(spec.timeout_ms),
                )
                .await?;
        }
        Step::Calls(calls) => {
            let reloads = match &calls.reloads {
                Some(spec) if spec.clients.is_empty() => {
                    return Err("`reloads.clients` is empty".to_owned());
                }
                Some(spec) => spec
                    .clients
                    .iter()
                    .map(|client| config_with(client, scenario, world))
                    .collect::<Result<Vec<_>, _>>()?,
                None => Vec::new(),
            };
            let every = calls.reloads.as_ref().map_or(0, |r| r.every_ms);
            return Ok(run_calls(calls, (every, &reloads), world, driver, all).await);
        }
        Step::Health(expect) => {
            let until = Instant::now() + Duration::from_millis(expect.within_ms);
            loop {
                let failures = expect::judge_health(expect, &driver.health());
                if failures.is_empty() || Instant::now() >= until {
                    return Ok((failures, None));
                }
                tokio::time::sleep(Duration::from_millis(50)).await;
            }
        }
    }
    Ok((Vec::new(), None))
}

async fn run_calls(
    step: &CallsStep,
    (every_ms, reloads): (u64, &[serde_json::Value]),
    world: &impl World,
    driver: &impl Driver,
    all: &[InstanceRef],
) -> StepResult {
    let before: Vec<u64> = all.iter().map(|i| world.requests(i)).collect();
    let workers = step.concurrency.max(1);
    let per_worker = |w: usize| step.count / workers + usize::from(w < step.count % workers);
    let runs = (0..workers).map(|w| async move {
        let mut out: Vec<CallRecord> = Vec::with_capacity(per_worker(w));
        for _ in 0..per_worker(w) {
            out.push(driver.call(&step.request).await);
            if step.interval_ms > 0 {
                tokio::time::sleep(Duration::from_millis(step.interval_ms)).await;
            }
        }
        out
    });
    let calls = join_all(runs);
    let (records, reload_failures) = if reloads.is_empty() {
        (calls.await, Vec::new())
    } else {
        reload_while(calls, every_ms, reloads, driver).await
    };
    let records: Vec<CallRecord> = records.into_iter().flatten().collect();
    let deltas: RequestDeltas = all
        .iter()
        .zip(before)
        .map(|(i, b)| (i.clone(), world.requests(i).saturating_sub(b)))
        .collect();
    let mut failures = expect::judge_calls(&step.expect, &records, &deltas, all);
    failures.extend(reload_failures);
    (failures, Some(expect::summarize(&records, &deltas)))
}

/// Runs `calls` to completion while reloading the client with `reloads` in turn every
/// `every_ms`; returns their result and the reload failures (a rejected reload, or none made).
async fn reload_while<T>(
    calls: impl Future<Output = T>,
    every_ms: u64,
    reloads: &[serde_json::Value],
    driver: &impl Driver,
) -> (T, Vec<String>) {
    let mut calls = std::pin::pin!(calls);
    let (mut made, mut failures) = (0usize, Vec::new());
    loop {
        let pause = tokio::time::sleep(Duration::from_millis(every_ms));
        tokio::select! {
            out = &mut calls => {
                if made == 0 {
                    failures.push("reloads: the calls ended before the first reload".to_owned());
                }
                return (out, failures);
            }
            () = pause => {
                if let Err(e) = driver.reload(&reloads[made % reloads.len()]) {
                    failures.push(format!("reload {}: {e}", made + 1));
                }
                made += 1;
            }
        }
    }
}
