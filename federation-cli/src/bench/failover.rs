//! G7: how the SDK rides out a dead instance and a fully dead service, against round-robin.
//!
//! Without outlier ejection a dead instance keeps taking its share of calls (a third of them
//! fail with three instances); without a retry budget, retries multiply load during the outage;
//! without fail-fast, a dead service makes every caller wait. At a fixed request rate, instance 0
//! of 3 is killed for the outage period, then revived on the same port. From every call's
//! attempts the run derives: success share during the outage, failed attempts on the dead
//! instance before it was ejected (the first burst), how long after the ejection ended the first
//! probe went out, how long after revival it served again, and the retry load against the
//! budget (20 % + 10/s). Then all three die and the latency of the failing calls is measured.

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use federation_core::client::{AttemptOutcome, FederatedServiceClient};
use federation_testkit::instance::ServiceInstance;
use tokio::task::JoinSet;

use super::Settings;
use super::failover_analysis::{CallLog, analyse};
use super::fixture;
use super::report::{GoalRow, Report, Verdict, fmt_duration};
use super::stats::quantile;
use super::target::plain_reqwest;
use crate::exit::CliError;

#[derive(Clone, Debug)]
enum Caller {
    Sdk(FederatedServiceClient),
    RoundRobin(reqwest::Client, Arc<[String]>, Arc<AtomicUsize>),
}

impl Caller {
    async fn call(&self, at: Duration) -> CallLog {
        let start = Instant::now();
        match self {
            Self::Sdk(client) => {
                let result = client.get(fixture::SERVICE, fixture::PATH).send().await;
                let (ok, attempts) = match &result {
                    Ok(r) => (r.status().is_success(), r.served().attempts()),
                    Err(e) => (false, e.attempts()),
                };
                let attempts = attempts
                    .iter()
                    .map(|a| {
                        (
                            index_of(a.instance()),
                            a.outcome() == AttemptOutcome::Success,
                        )
                    })
                    .collect();
                CallLog {
                    at,
                    ok,
                    latency: start.elapsed(),
                    attempts,
                }
            }
            Self::RoundRobin(http, urls, next) => {
                let i = next.fetch_add(1, Ordering::Relaxed) % urls.len().max(1);
                let ok = match http.get(&urls[i]).send().await {
                    Ok(r) => r.status().is_success() && r.bytes().await.is_ok(),
                    Err(_) => false,
                };
                CallLog {
                    at,
                    ok,
                    latency: start.elapsed(),
                    attempts: vec![(Some(i), ok)],
                }
            }
        }
    }
}

fn index_of(instance: &str) -> Option<usize> {
    (0..3).find(|&i| fixture::instance_id(i) == instance)
}

/// Runs the single-instance outage for both variants and the all-down run, adding G7 rows.
///
/// # Errors
/// When instances or clients cannot be set up, or a killed instance cannot be restarted.
pub async fn run(settings: &Settings, report: &mut Report) -> Result<(), CliError> {
    let (rate, healthy, outage, after) = if settings.smoke {
        (
            200.0,
            Duration::from_millis(300),
            Duration::from_secs(2),
            Duration::from_secs(2),
        )
    } else {
        (
            500.0,
            Duration::from_secs(2),
            Duration::from_secs(10),
            Duration::from_secs(10),
        )
    };
    let mut section = format!(
        "### failover (G7): instance 0 of 3 killed for {} at {rate:.0} calls/s, then revived\n\n\
         | variant | success during outage | failed attempts on the dead instance before it stopped getting traffic | next attempt on it, minus `open_for` (1 s) | back in rotation after revival | retries during outage (budget) |\n|---|---|---|---|---|---|\n",
        fmt_duration(outage)
    );
    let mut sdk_result = None;
    let mut timelines = Vec::new();
    for name in ["sdk", "reqwest"] {
        let instances = fixture::start_instances(3).await?;
        let caller = caller(name, &instances)?;
        eprintln!(
            "  [failover] {name}: kill instance 0 after {}",
            fmt_duration(healthy)
        );
        let logs = outage_run(&caller, &instances, rate, healthy, outage, after).await?;
        let o = analyse(&logs, healthy, healthy + outage, rate);
        section.push_str(&format!("| {name} | {} |\n", o.cells()));
        timelines.push(format!(
            "- {name}: attempts on the dead instance (seconds after the kill; revived at {:.2} s): {}\n",
            outage.as_secs_f64(),
            o.timeline()
        ));
        if name == "sdk" {
            sdk_result = Some(o);
        }
    }
    section.push('\n');
    for line in &timelines {
        section.push_str(line);
    }
    let all_down = all_down_run(settings, rate).await?;
    section.push_str(&format!(
        "\nAll 3 instances down ({rate:.0} calls/s, after a 1 s settle): {}\n",
        all_down
            .iter()
            .map(|(n, p99, whole)| format!(
                "{n} p99 {} (whole window incl. first failures: {})",
                fmt_duration(*p99),
                fmt_duration(*whole)
            ))
            .collect::<Vec<_>>()
            .join("; ")
    ));
    report.section(section);
    if let Some(o) = sdk_result {
        o.goals(report);
    }
    if let Some((_, p99, _)) = all_down.first() {
        report.goal(GoalRow {
            id: "G7",
            what: "all instances down: SDK error latency p99".into(),
            measured: fmt_duration(*p99),
            goal: "≤ 1 ms".into(),
            verdict: Verdict::of(*p99 <= Duration::from_millis(1)),
        });
    }
    Ok(())
}

fn caller(name: &str, instances: &[ServiceInstance]) -> Result<Caller, CliError> {
    Ok(if name == "sdk" {
        Caller::Sdk(FederatedServiceClient::from_config(
            fixture::static_config(instances)?,
        )?)
    } else {
        Caller::RoundRobin(
            plain_reqwest()?,
            fixture::urls(instances).into(),
            Arc::default(),
        )
    })
}

/// Sends calls at `rate` for the whole run while instance 0 dies and comes back.
async fn outage_run(
    caller: &Caller,
    instances: &[ServiceInstance],
    rate: f64,
    healthy: Duration,
    outage: Duration,
    after: Duration,
) -> Result<Vec<CallLog>, CliError> {
    let start = Instant::now();
    let traffic = tokio::spawn(drive(caller.clone(), rate, healthy + outage + after, start));
    tokio::time::sleep_until((start + healthy).into()).await;
    instances[0].kill().await;
    tokio::time::sleep_until((start + healthy + outage).into()).await;
    instances[0].restart().await.map_err(|e| {
        CliError::failure(format!("bench: failover: cannot revive instance 0: {e}"))
    })?;
    traffic
        .await
        .map_err(|e| CliError::failure(format!("bench: failover: traffic task failed: {e}")))
}

/// Open-loop calls at `rate` for `length`, each logged with its due time.
async fn drive(caller: Caller, rate: f64, length: Duration, start: Instant) -> Vec<CallLog> {
    let total = (rate * length.as_secs_f64()) as u64;
    let mut tasks = JoinSet::new();
    let mut logs = Vec::with_capacity(usize::try_from(total).unwrap_or(0));
    for i in 0..total {
        let at = Duration::from_secs_f64(i as f64 / rate);
        tokio::time::sleep_until((start + at).into()).await;
        let caller = caller.clone();
        tasks.spawn(async move { caller.call(at).await });
        while let Some(Ok(log)) = tasks.try_join_next() {
            logs.push(log);
        }
    }
    while let Some(done) = tasks.join_next().await {
        if let Ok(log) = done {
            logs.push(log);
        }
    }
    logs.sort_by_key(|l| l.at);
    logs
}

/// Every instance dead: the latency of the (failing) calls, per variant: (name, p99 after the
/// settle, p99 over the whole window).
async fn all_down_run(
    settings: &Settings,
    rate: f64,
) -> Result<Vec<(&'static str, Duration, Duration)>, CliError> {
    let settle = Duration::from_secs(1);
    let window = if settings.smoke {
        Duration::from_secs(1)
    } else {
        Duration::from_secs(5)
    };
    let mut out = Vec::new();
    for name in ["sdk", "reqwest"] {
        let instances = fixture::start_instances(3).await?;
        let caller = caller(name, &instances)?;
        for _ in 0..30 {
            let _ = caller.call(Duration::ZERO).await;
        }
        for i in &instances {
            i.kill().await;
        }
        eprintln!("  [failover] {name}: all instances down");
        let logs = drive(caller, rate, settle + window, Instant::now()).await;
        let succeeded = logs.iter().filter(|l| l.ok).count();
        if succeeded > 0 {
            eprintln!("  [failover] warning: {succeeded} calls succeeded with every instance down");
        }
        let settled: Vec<Duration> = logs
            .iter()
            .filter(|l| l.at >= settle)
            .map(|l| l.latency)
            .collect();
        let whole: Vec<Duration> = logs.iter().map(|l| l.latency).collect();
        out.push((
            name,
            quantile(&settled, 0.99).unwrap_or_default(),
            quantile(&whole, 0.99).unwrap_or_default(),
        ));
    }
    Ok(out)
}
