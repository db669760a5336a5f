//! A Looma service reading user profiles from user-service, with caching and failover.
//!
//! **The failure it shows handled.** Looma's gateway needs user profiles, which live in
//! zervigo's `user-service` (preferred) and in looma's own `looma-user-api`. When zervigo's
//! instances die, a naive client fails every profile read until someone edits DNS; this one
//! retries another instance, then fails over to looma within the same call, keeps serving
//! cached profiles (the cache is keyed by the logical service, so a failover never splits it),
//! and returns to zervigo once it has been healthy for the dwell time.
//!
//! **What it does.** Reads a profile twice (a miss, then a cache hit). With `--sandbox` it then
//! kills one zervigo instance (calls still succeed in zervigo), kills them all (calls fail over
//! to looma within the call, then go straight to looma once Consul's checks see the outage; the
//! cached profile still hits), restarts them and measures the time until traffic is back in
//! zervigo. It ends with the health snapshot and the relevant metrics.

use std::io::Write;
use std::time::Duration;

use federation_core::client::FederatedServiceClient;
use federation_core::config::{CachePolicy, Config};
use federation_core::error::Error;
use tokio::time::Instant;

use crate::BoxError;
use crate::report::{Step, metric_lines};
use crate::setup::{DISCOVERY_WAIT, Federation, wait_for_available};

/// The logical service called.
pub const SERVICE: &str = "user";

/// The Consul name of user-service in zervigo (the preferred cluster).
const ZERVIGO_NAME: &str = "user-service";

/// How long the example waits for traffic to return to zervigo after the restart.
const RECOVERY_LIMIT: Duration = Duration::from_secs(25);

/// What the example observed.
#[derive(Debug, Default)]
pub struct UserReport {
    /// Every call, in order.
    pub steps: Vec<Step>,
    /// With `--sandbox`: time from restarting the zervigo instances to the first call served
    /// by zervigo again (their health checks passing, then the fail-back dwell).
    pub recovered_after: Option<Duration>,
}

impl UserReport {
    /// The step with this label, if the example made it.
    pub fn step(&self, label: &str) -> Option<&Step> {
        self.steps.iter().find(|s| s.label == label)
    }
}

/// The policies this example demonstrates, applied to the sandbox's configuration: profiles
/// cached for 30 s (served up to 60 s stale if both clusters fail), and a 1 s fail-back dwell
/// (the default is 5 s) so the return to zervigo shows quickly. With `--config` the file decides.
pub fn sandbox_policies(config: &mut Config) {
    let defaults = config.defaults.clone();
    if let Some(service) = config.services.iter_mut().find(|s| s.name == SERVICE) {
        let mut policy = service.policy.clone().unwrap_or(defaults);
        policy.cache = Some(CachePolicy {
            ttl: Duration::from_secs(30),
            stale_if_error: Some(Duration::from_secs(60)),
            ..CachePolicy::default()
        });
        policy.failover.dwell = Duration::from_secs(1);
        service.policy = Some(policy);
    }
}

/// Reads one user profile. A 4xx/5xx answer becomes an error here, so callers see one failure
/// path; a Looma handler would map [`federation_core::error::ErrorKind::NoHealthyInstance`] to a
/// degraded page rather than a 500.
pub async fn fetch_profile(client: &FederatedServiceClient, id: u64) -> Result<Step, Error> {
    let response = client
        .get(SERVICE, &format!("/api/v1/users/{id}"))
        .header("x-request-source", "looma-api-gateway")
        .timeout(Duration::from_secs(2))
        .send()
        .await?
        .error_for_status()?;
    Ok(Step::of(String::new(), &response))
}

/// Runs the example, narrating to `out`.
///
/// # Errors
/// A call that fails (its kind and trail are in the message), a sandbox operation that fails,
/// or traffic not returning to zervigo within 25 s.
pub async fn run(fed: &Federation, out: &mut dyn Write) -> Result<UserReport, BoxError> {
    let client = &fed.client;
    let mut report = UserReport::default();
    if let Err(e) = client.wait_ready(DISCOVERY_WAIT).await {
        writeln!(out, "warning: {e}; calling anyway")?;
    }
    call(client, &mut report, out, "profile lookup (cold)", 42).await?;
    call(client, &mut report, out, "profile lookup (cached)", 42).await?;

    if let Some(sandbox) = &fed.sandbox {
        let zervigo = sandbox.instances("zervigo", ZERVIGO_NAME);
        if let Some(first) = zervigo.first() {
            writeln!(out, "-- killing {}", first.identity().instance)?;
            first.kill().await;
        }
        for id in 100..103 {
            call(client, &mut report, out, "one zervigo instance dead", id).await?;
        }
        writeln!(out, "-- killing every zervigo {ZERVIGO_NAME} instance")?;
        sandbox.kill_all("zervigo", ZERVIGO_NAME).await;
        call(client, &mut report, out, "zervigo down", 200).await?;
        call(client, &mut report, out, "zervigo down (again)", 201).await?;
        call(client, &mut report, out, "cached profile during outage", 42).await?;
        // Once Consul's checks see them dead, calls go straight to looma: no failed attempt.
        let wait = Duration::from_secs(20);
        if !wait_for_available(client, SERVICE, "zervigo", |n| n == 0, wait).await {
            return Err("the client never saw zervigo's user-service go down".into());
        }
        call(client, &mut report, out, "zervigo down, Consul knows", 202).await?;

        writeln!(out, "-- restarting them")?;
        let restarted_at = Instant::now();
        sandbox.revive_all("zervigo", ZERVIGO_NAME).await?;
        let expected = zervigo.len();
        sandbox
            .wait_for_passing("zervigo", ZERVIGO_NAME, expected, Duration::from_secs(20))
            .await?;
        let mut id = 300;
        loop {
            let step = call(client, &mut report, out, "after restart", id).await?;
            if step.cluster == "zervigo" {
                break;
            }
            if restarted_at.elapsed() > RECOVERY_LIMIT {
                return Err(
                    format!("traffic did not return to zervigo within {RECOVERY_LIMIT:?}").into(),
                );
            }
            id += 1;
            tokio::time::sleep(Duration::from_millis(200)).await;
        }
        let recovered = restarted_at.elapsed();
        writeln!(
            out,
            "-- back in zervigo {:.1} s after the restart",
            recovered.as_secs_f64()
        )?;
        report.recovered_after = Some(recovered);
    }

    summary(client, out)?;
    Ok(report)
}

/// One profile read, recorded and printed.
async fn call(
    client: &FederatedServiceClient,
    report: &mut UserReport,
    out: &mut dyn Write,
    label: &str,
    id: u64,
) -> Result<Step, BoxError> {
    match fetch_profile(client, id).await {
        Ok(mut step) => {
            step.label = label.to_owned();
            writeln!(out, "{step}")?;
            report.steps.push(step.clone());
            Ok(step)
        }
        Err(e) => {
            writeln!(out, "{label}: {} error: {e}", e.kind())?;
            Err(e.into())
        }
    }
}

/// Where each cluster stands, and the metrics that tell the story.
fn summary(client: &FederatedServiceClient, out: &mut dyn Write) -> Result<(), BoxError> {
    let health = client.health();
    if let Some(service) = health.service(SERVICE) {
        writeln!(
            out,
            "health of `{SERVICE}`: preferred {:?}, selected {:?}",
            service.preferred, service.selected
        )?;
        for c in &service.clusters {
            writeln!(
                out,
                "  {:<8} {:<16} available {}/{} ejected {} stale {}",
                c.cluster, c.consul_service, c.available, c.discovered, c.ejected, c.stale
            )?;
        }
    }
    let metrics = client.metrics_text();
    let prefixes = [
        "federation_requests_total",
        "federation_failovers_total",
        "federation_cache_events_total",
    ];
    for line in metric_lines(&metrics, SERVICE, &prefixes) {
        writeln!(out, "  {line}")?;
    }
    Ok(())
}
