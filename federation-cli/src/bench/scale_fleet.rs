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
//! the time from the restart until none of its routes is stale any more, as a histogram. The
//! doubles run in a process of their own (`scale_doubles.rs`), so serving 4,000 reconnections
//! does not take CPU from the clients that make them, nor open files from this process.

use std::fmt::Write as _;
use std::time::{Duration, Instant};

use super::report::fmt_duration;
use super::scale_doubles::DoublesProcess;
use super::scale_fixture::{self, Shape};
use super::stats::quantile;
use crate::exit::CliError;
use federation_core::client::FederatedServiceClient;

/// How long Consul stays down (a smoke run: a quarter of it).
pub const OUTAGE: Duration = Duration::from_secs(2);
/// Longest wait for the fleet to reconnect.
const RECONNECT_LIMIT: Duration = Duration::from_secs(30);
/// Width of a histogram bucket.
const BUCKET: Duration = Duration::from_millis(100);
/// How often the fleet's health is read while waiting for the reconnect.
const POLL: Duration = Duration::from_millis(100);

/// One second after the restart: requests handled, CPU s of the doubles' process, of the bench
/// process, of its health poller's thread, open files, clients fresh, run-queue wait s of the
/// doubles' and of the bench's threads.
pub type TraceRow = (u64, f64, f64, f64, usize, usize, f64, f64);

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
    /// Open files of this process at idle, the most seen while reconnecting, and its limit.
    pub files: (usize, usize, Option<u64>),
    /// Per second after the restart: (requests handled, doubles' process CPU seconds, bench
    /// process CPU seconds, of it the health poller's thread, open files, clients fresh,
    /// seconds the doubles' and the bench's threads waited for a CPU).
    pub trace: Vec<TraceRow>,
    /// After the reconnect limit: the last error of every still-stale route, by its deepest
    /// cause, with counts.
    pub stuck_errors: Vec<(String, usize)>,
}

impl FleetResult {
    /// The Markdown section.
    pub fn markdown(&self) -> String {
        let q = |p| fmt_duration(quantile(&self.reconnects, p).unwrap_or_default());
        let mut out = format!(
            "\nFleet: {} clients (tasks, each its own client) against the two doubles: idle {:.0} \
             requests/s, open connections per double {:?}; Consul down {} then back: {} requests \
             in the first second; restart → every route of a client fresh again: p50 {} / p99 {} \
             / max {} ({} of {} clients).\n",
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
        let _ = writeln!(
            out,
            "Open files of the bench process (it holds both ends of every connection): idle {}, \
             most while reconnecting {}, limit {:?}. Last errors of routes still stale at the \
             end: {:?}.\n",
            self.files.0, self.files.1, self.files.2, self.stuck_errors
        );
        let _ = writeln!(
            out,
            "Per second after the restart (requests handled, CPU s of the doubles' process, CPU \
             s of the bench process, of it the health poller's thread, open files, clients \
             fresh, run-queue wait s of the doubles' and of the bench's threads): {:?}\n",
            self.trace
        );
        out.push_str("| reconnected after | clients |\n|---|---|\n");
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
    doubles: &DoublesProcess,
    shape: &Shape,
    clients: usize,
    in_use: usize,
    smoke: bool,
) -> Result<FleetResult, CliError> {
    let urls = &doubles.urls;
    let mut fleet = Vec::with_capacity(clients);
    for _ in 0..clients {
        let config = scale_fixture::config(urls, in_use, shape.wait_secs)?;
        fleet.push(scale_fixture::lazy_client(config)?);
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
    let before = doubles.health_requests(in_use).await?;
    let t = Instant::now();
    tokio::time::sleep(wait).await;
    let idle_rps =
        (doubles.health_requests(in_use).await? - before) as f64 / t.elapsed().as_secs_f64();
    let connections = doubles.ports.iter().map(|&p| established(p)).collect();
    let idle_files = open_files();

    doubles.set_down(true).await?;
    tokio::time::sleep(if smoke { OUTAGE / 4 } else { OUTAGE }).await;
    let before = doubles.health_requests(in_use).await?;
    let restarted = Instant::now();
    doubles.set_down(false).await?;
    let reconnects = reconnect_times(&fleet, restarted, doubles, in_use, before).await?;
    Ok(FleetResult {
        clients,
        idle_rps,
        connections,
        first_second: reconnects.1,
        reconnects: reconnects.0,
        files: (idle_files, reconnects.2, file_limit()),
        trace: reconnects.3,
        stuck_errors: stuck_errors(&fleet),
    })
}

/// Per client, the reconnect time; requests in the first second; most open files; the
/// per-second trace.
type Reconnects = (Vec<Duration>, u64, usize, Vec<TraceRow>);

/// Per client, when no route is stale any more (polling every client's health); the requests
/// the doubles received in the first second; the most open files seen.
async fn reconnect_times(
    fleet: &[FederatedServiceClient],
    restarted: Instant,
    doubles: &DoublesProcess,
    in_use: usize,
    before: u64,
) -> Result<Reconnects, CliError> {
    let mut done: Vec<Option<Duration>> = vec![None; fleet.len()];
    let mut first_second = None;
    let mut most_files = 0;
    let mut trace = Vec::new();
    let poll = std::env::var("FEDERATION_BENCH_FLEET_POLL_MS")
        .ok()
        .and_then(|ms| ms.parse().ok())
        .map_or(POLL, Duration::from_millis);
    let (mut last_requests, mut last_cpu) = (before, scale_fixture::cpu_seconds().unwrap_or(0.0));
    let mut last_main = main_thread_cpu();
    let mut last_doubles = doubles.cpu_seconds();
    let mut last_waits = (
        doubles.run_queue_seconds(),
        scale_fixture::run_queue_seconds_of("self"),
    );
    while done.iter().any(Option::is_none) && restarted.elapsed() < RECONNECT_LIMIT {
        let files = open_files();
        most_files = most_files.max(files);
        if restarted.elapsed() >= Duration::from_secs(trace.len() as u64 + 1) {
            let requests = doubles.health_requests(in_use).await?;
            let cpu = scale_fixture::cpu_seconds().unwrap_or(0.0);
            let main = main_thread_cpu();
            let doubles_cpu = doubles.cpu_seconds();
            let fresh_now = done.iter().filter(|d| d.is_some()).count();
            let waits = (
                doubles.run_queue_seconds(),
                scale_fixture::run_queue_seconds_of("self"),
            );
            trace.push((
                requests - last_requests,
                doubles_cpu - last_doubles,
                cpu - last_cpu,
                main - last_main,
                files,
                fresh_now,
                waits.0 - last_waits.0,
                waits.1 - last_waits.1,
            ));
            last_waits = waits;
            (last_requests, last_cpu, last_main, last_doubles) = (requests, cpu, main, doubles_cpu);
        }
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
            first_second = Some(doubles.health_requests(in_use).await? - before);
        }
        tokio::time::sleep(poll).await;
    }
    let first_second = match first_second {
        Some(n) => n,
        None => doubles.health_requests(in_use).await? - before,
    };
    Ok((
        done.into_iter().flatten().collect(),
        first_second,
        most_files,
        trace,
    ))
}

/// The last error of every stale route of the fleet, grouped by its deepest cause.
fn stuck_errors(fleet: &[FederatedServiceClient]) -> Vec<(String, usize)> {
    let mut by_cause = std::collections::BTreeMap::<String, usize>::new();
    for client in fleet {
        for cluster in client.health().services.iter().flat_map(|s| &s.clusters) {
            if cluster.stale || cluster.last_success.is_none() {
                let error = cluster.last_error.as_deref().unwrap_or("no error recorded");
                let cause = error
                    .split_once("`: ")
                    .map_or(error, |(_, rest)| rest)
                    .to_owned();
                *by_cause.entry(cause).or_default() += 1;
            }
        }
    }
    by_cause.into_iter().collect()
}

/// CPU seconds of the main thread (where the bench, and so the health poller, runs).
fn main_thread_cpu() -> f64 {
    let path = format!("/proc/self/task/{}/stat", std::process::id());
    let Ok(stat) = std::fs::read_to_string(path) else {
        return 0.0;
    };
    let Some(end) = stat.rfind(')') else {
        return 0.0;
    };
    let fields: Vec<&str> = stat[end + 2..].split_whitespace().collect();
    let ticks = |i: usize| {
        fields
            .get(i)
            .and_then(|f| f.parse::<f64>().ok())
            .unwrap_or(0.0)
    };
    (ticks(11) + ticks(12)) / 100.0
}

/// Open file descriptors of this process.
fn open_files() -> usize {
    std::fs::read_dir("/proc/self/fd").map_or(0, Iterator::count)
}

/// The soft limit on open files (`/proc/self/limits`).
fn file_limit() -> Option<u64> {
    let limits = std::fs::read_to_string("/proc/self/limits").ok()?;
    let line = limits.lines().find(|l| l.starts_with("Max open files"))?;
    line.split_whitespace().nth(3)?.parse().ok()
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
