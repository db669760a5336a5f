//! Call cost with 40,000 instances known vs a 10-service client, side by side.
//!
//! Routing that scans (every service, every cluster, every instance) is invisible with ten
//! services and ruinous with a thousand. Both clients call the same service through the same
//! doubles and servers; one has every one of its 2 × 1,000 routes watched (every instance of
//! both clusters known), the other is configured with 10 services. Runs alternate (A B, A B …);
//! each run's CPU (the whole process: both clients, servers and doubles, whose share is the
//! same for both variants) is divided by its calls; the goal is judged on the median of the
//! per-repetition ratios.
//!
//! Both clients watch with a blocking wait of [`QUIET_WAIT_SECS`]: with the scenario's 5 s wait,
//! the 2,000 watches' answers (the doubles serialising, the client parsing, about 0.2–0.3 CPU s
//! per second here) arrive in bursts every wait period, and with phases of a few seconds the
//! bursts fall into some phases and not others: measured per call at c = 1 they were most of the
//! difference between the variants (BENCHMARKS.md, "S5: what costs more at c = 1"). What a
//! watch costs at idle is S3's figure; this one is the call's.

use std::sync::Arc;
use std::time::Duration;

use federation_core::client::FederatedServiceClient;

use super::interleave::Plan;
use super::report::{GoalRow, Verdict, fmt_duration, fmt_ratio};
use super::runner::{self, Load};
use super::scale_fixture::{self, cpu_seconds};
use super::stats;
use super::target::Sdk;
use crate::exit::CliError;

/// Blocking wait of both clients' watches: Consul's longest, so no watch answers during the
/// timed phases (the whole comparison takes well under 10 minutes).
pub const QUIET_WAIT_SECS: u64 = 600;

/// The two clients of the comparison, every route of each answered: `services` configured
/// (and watched), and 10.
///
/// # Errors
/// When a client cannot be built or does not become ready within a minute.
pub async fn clients(
    urls: &[String],
    services: usize,
) -> Result<[FederatedServiceClient; 2], CliError> {
    let mut out = Vec::with_capacity(2);
    for n in [services, 10.min(services)] {
        let config = scale_fixture::config(urls, n, QUIET_WAIT_SECS)?;
        let client = scale_fixture::lazy_client(config)
            .map_err(|e| CliError::failure(format!("bench: scale: client: {e}")))?;
        client
            .wait_ready(Duration::from_secs(60))
            .await
            .map_err(|e| CliError::failure(format!("bench: scale: not ready: {e}")))?;
        out.push(client);
    }
    out.try_into()
        .map_err(|_| CliError::failure("bench: scale: two clients expected"))
}

/// One variant's figures in one run.
#[derive(Clone, Copy, Debug)]
struct Run {
    cpu_per_call: f64,
    p99: Duration,
    throughput: f64,
}

/// Compares `big` (everything watched) with `small` at concurrency `c`; the Markdown rows of
/// both variants and the goal row.
pub async fn compare(
    big: &FederatedServiceClient,
    small: &FederatedServiceClient,
    c: usize,
    plan: Plan,
) -> (String, GoalRow) {
    let target = |client: &FederatedServiceClient| Sdk {
        client: client.clone(),
        service: Arc::from(scale_fixture::service_name(0)),
        path: Arc::from("/bench"),
    };
    let variants = [target(big), target(small)];
    let load = Load::Closed { concurrency: c };
    for v in &variants {
        runner::run(v, load, plan.warmup).await;
    }
    let mut runs: Vec<[Run; 2]> = Vec::with_capacity(plan.reps);
    for _ in 0..plan.reps {
        let mut pair = [Run {
            cpu_per_call: 0.0,
            p99: Duration::ZERO,
            throughput: 0.0,
        }; 2];
        for (slot, v) in pair.iter_mut().zip(&variants) {
            let cpu = cpu_seconds().unwrap_or(0.0);
            let sample = runner::run(v, load, plan.duration).await;
            let used = cpu_seconds().unwrap_or(0.0) - cpu;
            *slot = Run {
                cpu_per_call: used / sample.count.max(1) as f64,
                p99: sample.p99,
                throughput: sample.throughput,
            };
        }
        runs.push(pair);
    }
    let ratios = |f: fn(&Run) -> f64| -> (f64, Vec<f64>) {
        let per: Vec<f64> = runs
            .iter()
            .map(|r| f(&r[0]) / f(&r[1]).max(f64::MIN_POSITIVE))
            .collect();
        (median(&per), per)
    };
    let (cpu, cpu_reps) = ratios(|r| r.cpu_per_call);
    let (p99, p99_reps) = ratios(|r| r.p99.as_secs_f64());
    let mut rows = String::new();
    for (v, name) in ["1,000 services, all watched", "10 services"]
        .iter()
        .enumerate()
    {
        let cpus: Vec<f64> = runs.iter().map(|r| r[v].cpu_per_call).collect();
        let p99s: Vec<f64> = runs.iter().map(|r| r[v].p99.as_secs_f64()).collect();
        let thr: Vec<f64> = runs.iter().map(|r| r[v].throughput).collect();
        rows.push_str(&format!(
            "| c = {c}, {name} | {:.1} µs | {} | {:.0}/s |\n",
            median(&cpus) * 1e6,
            fmt_duration(Duration::from_secs_f64(median(&p99s))),
            median(&thr)
        ));
    }
    let goal = GoalRow {
        id: "S5",
        what: format!("CPU per call and p99, 40k instances known vs 10 services, c = {c}"),
        measured: format!(
            "CPU {}; p99 {}",
            fmt_ratio(cpu, &cpu_reps),
            fmt_ratio(p99, &p99_reps)
        ),
        goal: "both ≤ 1.10x".into(),
        verdict: Verdict::of(cpu <= 1.10 && p99 <= 1.10),
    };
    (rows, goal)
}

fn median(values: &[f64]) -> f64 {
    stats::median(values).unwrap_or(f64::NAN)
}

#[cfg(test)]
mod tests {
    use std::time::Instant;

    use super::*;
    use crate::bench::fixture;
    use crate::bench::scale_fixture::Shape;

    /// The comparison's timed phases see no watch answer: a burst of them (every wait period)
    /// would be charged to whichever variant's phase it fell into.
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn no_watch_answers_while_the_calls_are_timed() {
        let servers = fixture::start_instances(3).await.expect("servers");
        let ports: Vec<u16> = servers.iter().map(|s| s.port()).collect();
        let shape = Shape {
            services: 20,
            instances: 3,
            real: 1,
            wait_secs: 1,
        };
        let doubles = scale_fixture::start_doubles(&shape, &ports)
            .await
            .expect("doubles");
        let urls: Vec<String> = doubles.iter().map(|d| d.url()).collect();
        let [big, small] = clients(&urls, shape.services).await.expect("clients");
        // Every watched route: its first read and its blocking read (20 + 10 services × 2
        // clusters × 2 requests).
        let settled = 2 * 2 * (shape.services + 10) as u64;
        let deadline = Instant::now() + Duration::from_secs(10);
        while scale_fixture::health_requests(&doubles, shape.services) < settled {
            assert!(Instant::now() < deadline, "the watches did not settle");
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
        let before = scale_fixture::health_requests(&doubles, shape.services);
        let plan = Plan {
            warmup: Duration::from_millis(200),
            duration: Duration::from_millis(600),
            reps: 2,
        };
        let (rows, _) = compare(&big, &small, 1, plan).await;
        assert!(rows.contains("10 services"), "{rows}");
        assert_eq!(
            scale_fixture::health_requests(&doubles, shape.services),
            before,
            "a watch was answered (and re-polled) during the timed phases"
        );
    }
}
