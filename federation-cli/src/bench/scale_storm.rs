//! A change storm: 1,000 instances turn critical within one second.
//!
//! A client that rebuilds everything on every change, or whose watches fall behind under a
//! burst, keeps routing to instances Consul already marked critical. Half the instances of the
//! called services in the first cluster go into maintenance (critical), spread evenly over one
//! second, while calls keep flowing to those services. Measured: for every instance, the delay
//! from being marked until the client's routing table shows it critical (read through
//! `client.health()`, every 10 ms, so the figure includes up to 10 ms of polling); the process
//! CPU over the storm (client, doubles and servers); and calls the client sent to an instance
//! more than [`BOUND`] after Consul marked it.

use std::collections::HashMap;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};
use std::time::{Duration, Instant};

use federation_core::client::FederatedServiceClient;
use federation_core::discovery::Health;
use federation_testkit::consul::ConsulDouble;

use super::scale_fixture::{self, CLUSTERS, cpu_seconds};
use super::stats::quantile;
use crate::exit::CliError;

/// The propagation bound (G8's goal): a call sent later than this after its instance was marked
/// critical counts as a violation.
pub const BOUND: Duration = Duration::from_millis(100);
/// Longest wait for the storm to show in routing.
const SETTLE: Duration = Duration::from_secs(10);

/// What the storm measured.
#[derive(Debug, Default)]
pub struct StormResult {
    /// Instances marked critical.
    pub marked: usize,
    /// Per instance: marked → seen critical in routing.
    pub delays: Vec<Duration>,
    /// Process CPU seconds from the first mark until routing showed everything.
    pub cpu: f64,
    /// Calls made during the storm.
    pub calls: u64,
    /// Calls routed to an instance Consul had marked critical more than [`BOUND`] before.
    pub late_calls: u64,
}

impl StormResult {
    /// p99 of the delays.
    pub fn p99(&self) -> Duration {
        quantile(&self.delays, 0.99).unwrap_or_default()
    }
}

/// Marks half the instances of services `0..services` of the first cluster critical over one
/// second (`instances` per service), calling those services meanwhile through `client`, whose
/// watches of them must be running.
pub async fn run(
    client: &FederatedServiceClient,
    double: &ConsulDouble,
    services: usize,
    instances: usize,
) -> Result<StormResult, CliError> {
    let targets: Vec<String> = (0..services)
        .flat_map(|i| (0..instances / 2).map(move |k| scale_fixture::instance_id(i, k * 2)))
        .collect();
    let marked_at: Arc<Mutex<HashMap<String, Instant>>> = Arc::default();
    let stop = Arc::new(AtomicBool::new(false));
    let caller = tokio::spawn(call_during(
        client.clone(),
        services,
        Arc::clone(&marked_at),
        Arc::clone(&stop),
    ));
    let spacing = Duration::from_secs(1) / u32::try_from(targets.len().max(1)).unwrap_or(1);
    let cpu0 = cpu_seconds().unwrap_or(0.0);
    let watcher = tokio::spawn(watch_routing(client.clone(), targets.clone()));
    let start = Instant::now();
    for (n, id) in targets.iter().enumerate() {
        let due = start + spacing * u32::try_from(n).unwrap_or(u32::MAX);
        tokio::time::sleep_until(due.into()).await;
        double
            .set_maintenance(id, true, Some("storm"))
            .map_err(|e| CliError::failure(format!("bench: scale storm: {id}: {e}")))?;
        lock(&marked_at).insert(id.clone(), Instant::now());
    }
    let seen = watcher.await.unwrap_or_default();
    let cpu = cpu_seconds().unwrap_or(0.0) - cpu0;
    stop.store(true, Ordering::Relaxed);
    let (calls, late_calls) = caller.await.unwrap_or_default();
    let marked = lock(&marked_at).clone();
    let delays = seen
        .iter()
        .filter_map(|(id, at)| Some(at.saturating_duration_since(*marked.get(id)?)))
        .collect();
    Ok(StormResult {
        marked: targets.len(),
        delays,
        cpu,
        calls,
        late_calls,
    })
}

/// Reads the client's routing every 10 ms until every target shows critical (or `SETTLE`);
/// when each was first seen critical.
async fn watch_routing(
    client: FederatedServiceClient,
    targets: Vec<String>,
) -> HashMap<String, Instant> {
    let mut seen = HashMap::with_capacity(targets.len());
    let deadline = Instant::now() + SETTLE;
    while seen.len() < targets.len() && Instant::now() < deadline {
        let now = Instant::now();
        for svc in client.health().services {
            for cluster in svc.clusters.iter().filter(|c| c.cluster == CLUSTERS[0]) {
                for i in cluster
                    .instances
                    .iter()
                    .filter(|i| i.health == Health::Critical)
                {
                    seen.entry(i.id.clone()).or_insert(now);
                }
            }
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    seen
}

/// Calls the storm's services round robin until `stop`; (calls, calls sent to an instance
/// marked more than `BOUND` before they started).
async fn call_during(
    client: FederatedServiceClient,
    services: usize,
    marked_at: Arc<Mutex<HashMap<String, Instant>>>,
    stop: Arc<AtomicBool>,
) -> (u64, u64) {
    let names: Vec<String> = (0..services).map(scale_fixture::service_name).collect();
    let (mut calls, mut late) = (0u64, 0u64);
    for name in names.iter().cycle() {
        if stop.load(Ordering::Relaxed) {
            break;
        }
        let sent = Instant::now();
        if let Ok(response) = client.get(name, "/bench").send().await {
            calls += 1;
            let marked = lock(&marked_at).get(response.served().instance()).copied();
            if response.served().cluster() == CLUSTERS[0]
                && marked.is_some_and(|m| sent > m + BOUND)
            {
                late += 1;
            }
        }
        if calls % 64 == 0 {
            tokio::task::yield_now().await;
        }
    }
    (calls, late)
}

fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(PoisonError::into_inner)
}
