//! G8: how fast a Consul change reaches routing, what an idle watch costs Consul, and whether
//! calls survive a Consul outage.
//!
//! A watcher that polls hammers the registry; one that lags routes calls to instances that are
//! gone; one that empties its table when Consul fails turns a registry outage into a total one.
//! Against the Consul double (blocking queries), the run moves the only instance of the service
//! back and forth between two live servers many times and times each change from the moment the
//! double's index moved until the first call the SDK routes to the new instance; then counts
//! health requests per wait period while nothing changes; then takes Consul down and keeps
//! calling.

use std::time::{Duration, Instant};

use federation_core::client::FederatedServiceClient;
use federation_testkit::consul::{ConsulDouble, ConsulOptions, Fault, ServiceRegistration};
use federation_testkit::instance::ServiceInstance;

use super::Settings;
use super::fixture;
use super::report::{GoalRow, Report, Verdict, fmt_duration};
use super::stats::quantile;
use crate::exit::CliError;

const DATACENTER: &str = "bench-dc";
/// Pause between changes: longer than the watcher's pacing refill (one query per 250 ms once
/// its burst of 8 is spent), so each change measures propagation, not the pacing of a storm.
const CHANGE_SPACING: Duration = Duration::from_millis(300);
/// Longest wait for one change to show up in routing before it counts as lost.
const CHANGE_TIMEOUT: Duration = Duration::from_secs(5);

/// Runs the discovery measurements and adds their table and G8 rows.
///
/// # Errors
/// When the double, the instances or the client cannot be set up, or the SDK never routes to
/// the first registered instance.
pub async fn run(settings: &Settings, report: &mut Report) -> Result<(), CliError> {
    let (changes, wait, idle_periods, outage) = if settings.smoke {
        (8, Duration::from_secs(1), 2, Duration::from_secs(1))
    } else {
        (100, Duration::from_secs(2), 5, Duration::from_secs(5))
    };
    let consul = ConsulDouble::start(ConsulOptions::new(DATACENTER))
        .await
        .map_err(|e| CliError::failure(format!("bench: cannot start the Consul double: {e}")))?;
    let instances = fixture::start_instances(2).await?;
    register(&consul, &instances, 0)?;
    let config =
        fixture::consul_config(&consul.url(), DATACENTER, &format!("{}s", wait.as_secs()))?;
    let client = FederatedServiceClient::from_config(config)?;
    if route_to(&client, 0, Duration::from_secs(15))
        .await
        .is_none()
    {
        return Err(CliError::failure(
            "bench: discovery: the SDK never routed to the registered instance",
        ));
    }

    eprintln!("  [discovery] {changes} changes");
    let mut delays = Vec::with_capacity(changes);
    let mut lost = 0usize;
    for k in 1..=changes {
        // One index move per change: the registration keeps its id and moves to the other
        // server, so the only way to reach the new server is the new routing table.
        let target = k % 2;
        register(&consul, &instances, target)?;
        let changed = consul
            .last_change(fixture::UPSTREAM)
            .unwrap_or_else(Instant::now);
        match route_to(&client, target, CHANGE_TIMEOUT).await {
            Some(seen) => delays.push(seen.saturating_duration_since(changed)),
            None => lost += 1,
        }
        tokio::time::sleep(CHANGE_SPACING).await;
    }
    let p50 = quantile(&delays, 0.50).unwrap_or_default();
    let p99 = quantile(&delays, 0.99).unwrap_or_default();

    eprintln!(
        "  [discovery] idle for {idle_periods} wait periods of {}",
        fmt_duration(wait)
    );
    tokio::time::sleep(wait).await;
    let before = consul.health_requests(fixture::UPSTREAM);
    let idle_start = Instant::now();
    tokio::time::sleep(wait * idle_periods).await;
    let periods = idle_start.elapsed().as_secs_f64() / wait.as_secs_f64();
    let per_period = (consul.health_requests(fixture::UPSTREAM) - before) as f64 / periods;

    eprintln!("  [discovery] Consul down for {}", fmt_duration(outage));
    consul.set_fault(Fault::Down);
    let (ok, total) = calls_for(&client, outage).await;
    consul.clear_fault();

    report.section(format!(
        "### discovery (G8): Consul double, blocking queries (wait {}), changes {} apart\n\n\
         | measure | value |\n|---|---|\n\
         | change → first call answered by the new server, p50 / p99 over {} changes | {} / {} ({lost} not seen within {}) |\n\
         | health requests per idle watched service per wait period | {per_period:.2} |\n\
         | calls succeeding while Consul is down ({}) | {ok} / {total} |\n",
        fmt_duration(wait),
        fmt_duration(CHANGE_SPACING),
        delays.len(),
        fmt_duration(p50),
        fmt_duration(p99),
        fmt_duration(CHANGE_TIMEOUT),
        fmt_duration(outage),
    ));
    report.goal(GoalRow {
        id: "G8",
        what: "Consul change → routing table, p99".into(),
        measured: format!(
            "p99 {} (p50 {}), {lost} lost",
            fmt_duration(p99),
            fmt_duration(p50)
        ),
        goal: "≤ 100 ms".into(),
        verdict: Verdict::of(lost == 0 && !delays.is_empty() && p99 <= Duration::from_millis(100)),
    });
    report.goal(GoalRow {
        id: "G8",
        what: "Consul requests per idle watched service per wait period".into(),
        measured: format!("{per_period:.2}"),
        goal: "≤ 1".into(),
        // A period boundary can fall inside the window: allow the one request it splits.
        verdict: Verdict::of(per_period <= 1.0 + 1.0 / f64::from(idle_periods)),
    });
    report.goal(GoalRow {
        id: "G8",
        what: "calls while Consul is down".into(),
        measured: format!("{ok} / {total} succeeded"),
        goal: "all succeed".into(),
        verdict: Verdict::of(total > 0 && ok == total),
    });
    Ok(())
}

fn register(
    consul: &ConsulDouble,
    instances: &[ServiceInstance],
    i: usize,
) -> Result<(), CliError> {
    consul
        .register(ServiceRegistration {
            id: Some(fixture::instance_id(0)),
            name: fixture::UPSTREAM.to_owned(),
            address: "127.0.0.1".to_owned(),
            port: instances[i].port(),
            ..ServiceRegistration::default()
        })
        .map_err(|e| CliError::failure(format!("bench: discovery: register: {e}")))
}

/// Calls until one is answered by server `i` (named in the body: the registration id stays the
/// same); the time it answered, or `None` after `timeout`.
async fn route_to(client: &FederatedServiceClient, i: usize, timeout: Duration) -> Option<Instant> {
    let want = fixture::instance_id(i);
    let deadline = Instant::now() + timeout;
    while Instant::now() < deadline {
        match client.get(fixture::SERVICE, fixture::PATH).send().await {
            Ok(r) if answered_by(r.body()) == Some(&*want) => return Some(Instant::now()),
            Ok(_) => tokio::task::yield_now().await,
            Err(_) => tokio::time::sleep(Duration::from_millis(1)).await,
        }
    }
    None
}

/// The `instance` field of a testkit instance's JSON answer.
fn answered_by(body: &[u8]) -> Option<&str> {
    // The field is a plain identifier: find `"instance":"…"` without a full JSON parse.
    let text = std::str::from_utf8(body).ok()?;
    let rest = &text[text.find("\"instance\":\"")? + 12..];
    rest.get(..rest.find('"')?)
}

/// Calls every 5 ms for `length`: (succeeded, total).
async fn calls_for(client: &FederatedServiceClient, length: Duration) -> (u64, u64) {
    let end = Instant::now() + length;
    let (mut ok, mut total) = (0, 0);
    while Instant::now() < end {
        total += 1;
        if client
            .get(fixture::SERVICE, fixture::PATH)
            .send()
            .await
            .is_ok_and(|r| r.status().is_success())
        {
            ok += 1;
        }
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    (ok, total)
}
