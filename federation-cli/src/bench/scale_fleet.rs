//! A fleet: many clients watching one Consul double per cluster, and a Consul restart.
//!
//! A registry that is fine with one client can drown under a fleet: every process holds its
//! long polls open, and after a restart every process reconnects at once unless backoff
//! jitter spreads them. The clients here are tasks in the bench process, each with its own
//! `FederatedServiceClient` (its own Consul HTTP client, connections, watches and backoff):
//! towards Consul they behave as separate processes would, while 200 processes with a runtime
//! each would mostly measure the 2-core machine's scheduler. Each client is configured with
//! the called services only and calls each once (so its watches run). Measured: the doubles'
//! requests per second and open connections at idle; then both doubles go down for
//! [`OUTAGE`] (listeners closed, open connections dropped) and come back, and for every client
//! the time from the restart until none of its routes is stale any more, as a histogram.

use std::fmt::Write as _;
use std::time::{Duration, Instant};

use federation_core::client::FederatedServiceClient;
use federation_testkit::consul::{ConsulDouble, Fault};

use super::report::fmt_duration;
use super::scale_fixture::{self, Shape};
use super::stats::quantile;
use crate::exit::CliError;

/// How long Consul stays down (a smoke run: a quarter of it).
pub const OUTAGE: Duration = Duration::from_secs(2);
/// Longest wait for the fleet to reconnect.
const RECONNECT_LIMIT: Duration = Duration::from_secs(30);
/// Width of a histogram bucket.
const BUCKET: Duration = Duration::from_millis(100);

/// What the fleet run measured.
#[derive(Debug, Default)]
pub struct FleetResult {
    /// Clients.
    pub clients: usize,
    /// Requests per second both doubles received while idle.
    pub idle_rps: f64,
    /// Established connections per double while idle.
    pub connections: Vec<usize>,
    /// Requests both doubles received in the first second after the restart.
    pub first_second: u64,
    /// Per client: restart → no route stale.
    pub reconnects: Vec<Duration>,
}

impl FleetResult {
    /// The Markdown section.
    pub fn markdown(&self) -> String {
        let q = |p| fmt_duration(quantile(&self.reconnects, p).unwrap_or_default());
        let mut out = format!(
            "\nFleet: {} clients (tasks, each its own client) against the two doubles: idle {:.0} \
             requests/s, open connections per double {:?}; Consul down {} then back: {} requests \
             in the first second; restart → every route of a client fresh again: p50 {} / p99 {} \
             / max {} ({} of {} clients).\n\n| reconnected after | clients |\n|---|---|\n",
            self.clients,
            self.idle_rps,
            self.connections,
            fmt_duration(OUTAGE),
            self.first_second,
            q(0.5),
            q(0.99),
            q(1.0),
            self.reconnects.len(),
            self.clients,
        );
        let mut buckets = std::collections::BTreeMap::<u128, usize>::new();
        for d in &self.reconnects {
            *buckets
                .entry(d.as_millis() / BUCKET.as_millis())
                .or_default() += 1;
        }
        for (b, n) in buckets {
            let from = b * BUCKET.as_millis();
            let _ = writeln!(out, "| {from}–{} ms | {n} |", from + BUCKET.as_millis());
        }
        out
    }
}

/// Runs `clients` clients calling `in_use` services each, then restarts the doubles (a smoke
/// run skips the settling and shortens the outage).
///
/// # Errors
/// When a client cannot be built or its first calls fail.
pub async fn run(
    doubles: &[ConsulDouble],
    shape: &Shape,
    clients: usize,
    in_use: usize,
    smoke: bool,
) -> Result<FleetResult, CliError> {
    let urls: Vec<String> = doubles.iter().map(ConsulDouble::url).collect();
    let mut fleet = Vec::with_capacity(clients);
    for _ in 0..clients {
        let config = scale_fixture::config(&urls, in_use, shape.wait_secs)?;
        fleet.push(FederatedServiceClient::from_config(config)?);
    }
    let calls = fleet.iter().map(|client| async move {
        for i in 0..in_use {
            let _ = client
                .get(&scale_fixture::service_name(i), "/bench")
                .send()
                .await;
        }
    });
    futures_util::future::join_all(calls).await;
    let wait = Duration::from_secs(shape.wait_secs);
    if !smoke {
        tokio::time::sleep(wait).await;
    }
    let before = scale_fixture::health_requests(doubles, in_use);
    let t = Instant::now();
    tokio::time::sleep(wait).await;
    let idle_rps = (scale_fixture::health_requests(doubles, in_use) - before) as f64
        / t.elapsed().as_secs_f64();
    let connections = doubles
        .iter()
        .map(|d| established(d.addr().port()))
        .collect();

    for double in doubles {
        double.set_fault(Fault::Down);
    }
    tokio::time::sleep(if smoke { OUTAGE / 4 } else { OUTAGE }).await;
    let before = scale_fixture::health_requests(doubles, in_use);
    let restarted = Instant::now();
    for double in doubles {
        double.clear_fault();
    }
    let reconnects = reconnect_times(&fleet, restarted, doubles, in_use, before).await;
    Ok(FleetResult {
        clients,
        idle_rps,
        connections,
        first_second: reconnects.1,
        reconnects: reconnects.0,
    })
}

/// Per client, when no route is stale any more (polling every client's health); and the
/// requests the doubles received in the first second.
async fn reconnect_times(
    fleet: &[FederatedServiceClient],
    restarted: Instant,
    doubles: &[ConsulDouble],
    in_use: usize,
    before: u64,
) -> (Vec<Duration>, u64) {
    let mut done: Vec<Option<Duration>> = vec![None; fleet.len()];
    let mut first_second = None;
    while done.iter().any(Option::is_none) && restarted.elapsed() < RECONNECT_LIMIT {
        for (n, (slot, client)) in done.iter_mut().zip(fleet).enumerate() {
            if slot.is_none() && fresh(client) {
                *slot = Some(restarted.elapsed());
            }
            // Reading 200 clients' health is real work: let the watchers and doubles run.
            if n % 16 == 15 {
                tokio::task::yield_now().await;
            }
        }
        if first_second.is_none() && restarted.elapsed() >= Duration::from_secs(1) {
            first_second = Some(scale_fixture::health_requests(doubles, in_use) - before);
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    let first_second =
        first_second.unwrap_or_else(|| scale_fixture::health_requests(doubles, in_use) - before);
    (done.into_iter().flatten().collect(), first_second)
}

/// Whether every route of `client` has a fresh (not stale) instance set.
fn fresh(client: &FederatedServiceClient) -> bool {
    client
        .health()
        .services
        .iter()
        .flat_map(|s| &s.clusters)
        .all(|c| !c.stale && c.last_success.is_some())
}

/// Established TCP connections whose local port is `port` (the server side of each client
/// connection), from `/proc/net/tcp` and `/proc/net/tcp6`.
fn established(port: u16) -> usize {
    let want = format!(":{port:04X}");
    ["/proc/net/tcp", "/proc/net/tcp6"]
        .iter()
        .filter_map(|p| std::fs::read_to_string(p).ok())
        .map(|text| {
            text.lines()
                .skip(1)
                .filter(|line| {
                    let f: Vec<&str> = line.split_whitespace().collect();
                    f.len() > 3 && f[1].ends_with(&want) && f[3] == "01"
                })
                .count()
        })
        .sum()
}
