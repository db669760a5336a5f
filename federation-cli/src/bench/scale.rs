//! Scale: 2 clusters × 1,000 services × 20 instances (40,000 instances), one client configured
//! with all of them.
//!
//! What breaks first when a federation grows is not one call's latency but what every client
//! pays for everything it *could* call: memory per instance, one long poll per configured
//! service, a storm of health changes, and routing that scans. Against one testkit Consul
//! double per cluster (whose own cost is reported too), this scenario measures each against
//! its goal: a client's RSS growth (in its own process, `scale_client.rs`), build → ready,
//! idle Consul requests of a client that calls few services and of one that watches
//! everything, a change storm (`scale_storm.rs`), and call CPU / p99 with 40,000 instances
//! known vs a 10-service client (`scale_calls.rs`).

use std::time::{Duration, Instant};

use federation_testkit::consul::ConsulDouble;

use super::Settings;
use super::fixture;
use super::report::{GoalRow, Report, Verdict, fmt_duration};
use super::scale_client::{self, ClientResult};
use super::scale_doubles::DoublesProcess;
use super::scale_fixture::{self, Shape};
use super::{scale_calls, scale_fleet, scale_storm};
use crate::exit::CliError;

/// The full run: 1,000 services of 20 instances per cluster, 100 of them live (called).
const FULL: Shape = Shape {
    services: 1000,
    instances: 20,
    real: 100,
    wait_secs: 5,
};
/// The smoke run: the same code paths, small.
const SMOKE: Shape = Shape {
    services: 20,
    instances: 10,
    real: 4,
    wait_secs: 1,
};
/// Services a "lazy" client calls (the ones in use).
const IN_USE: usize = 10;
/// Clients of the fleet simulation.
const FLEET: usize = 200;

/// Runs the scale measurements and adds their section and goal rows.
///
/// # Errors
/// When the doubles, servers or clients cannot be set up.
pub async fn run(settings: &Settings, report: &mut Report) -> Result<(), CliError> {
    let mut shape = if settings.smoke { SMOKE } else { FULL };
    // `FEDERATION_BENCH_SCALE_INSTANCES`: instances per service, to separate what a client holds
    // per watched service from what it holds per known instance (S1).
    if let Ok(n) = std::env::var("FEDERATION_BENCH_SCALE_INSTANCES") {
        shape.instances = n.parse().ok().filter(|n| *n > 0).ok_or_else(|| {
            CliError::usage(format!(
                "bench: FEDERATION_BENCH_SCALE_INSTANCES={n:?} is not a positive number"
            ))
        })?;
    }
    let idle_periods = if settings.smoke { 1 } else { 2 };
    let servers = fixture::start_instances(3).await?;
    let rss0 = scale_fixture::rss_kib().unwrap_or(0);
    let t = Instant::now();
    eprintln!(
        "  [scale] registering {} instances",
        shape.total_instances()
    );
    let ports: Vec<u16> = servers.iter().map(|s| s.port()).collect();
    let doubles = scale_fixture::start_doubles(&shape, &ports).await?;
    let register_time = t.elapsed();
    let double_kib = scale_fixture::rss_kib().unwrap_or(0).saturating_sub(rss0);
    let urls: Vec<String> = doubles.iter().map(ConsulDouble::url).collect();

    let mut section = format!(
        "### scale: 2 clusters × {} services × {} instances ({} instances), wait {} s\n\n\
         The doubles: registering every instance took {}; their RSS grew {} MiB.\n\n\
         | client (own process) | RSS growth | build → ready | Consul requests / min, idle | per watched service per wait |\n|---|---|---|---|---|\n",
        shape.services,
        shape.instances,
        shape.total_instances(),
        shape.wait_secs,
        fmt_duration(register_time),
        double_kib / 1024,
    );
    let in_use = IN_USE.min(shape.real);
    let mut results = Vec::new();
    for (label, mode, watched) in [
        (
            "configured, nothing called".to_owned(),
            "call:0".to_owned(),
            0,
        ),
        (
            format!("{in_use} services called"),
            format!("call:{in_use}"),
            2 * in_use,
        ),
        (
            "every route ready (`wait_ready`)".to_owned(),
            "all".to_owned(),
            2 * shape.services,
        ),
    ] {
        eprintln!("  [scale] client: {label}");
        let child = scale_client::spawn(&urls, shape.services, shape.wait_secs, &mode).await?;
        let per_minute = idle_requests(&doubles, &shape, idle_periods, !settings.smoke).await;
        let r = child.result;
        let per_wait = per_minute / 60.0 * shape.wait_secs as f64 / watched.max(1) as f64;
        section.push_str(&format!(
            "| {label} | {:.1} MiB | {} | {per_minute:.0} | {} |\n",
            growth(&r) as f64 / 1024.0,
            fmt_duration(r.ready),
            if watched == 0 {
                "—".to_owned()
            } else {
                format!("{per_wait:.2}")
            },
        ));
        results.push((r, per_minute, per_wait));
        drop(child);
    }
    let [
        (configured, idle_none, _),
        (_, _, per_wait_lazy),
        (all, _, per_wait_all),
    ] = results[..]
    else {
        return Err(CliError::failure("bench: scale: missing client results"));
    };
    let instance_kib = growth(&all).saturating_sub(growth(&configured));
    let per_instance = instance_kib as f64 * 1024.0 / shape.total_instances() as f64;
    let per_service = growth(&configured) as f64 * 1024.0 / (2 * shape.services) as f64;
    section.push_str(&format!(
        "\nPer configured route (nothing watched): {per_service:.0} B; per known instance \
         ((all − configured) / instances): {per_instance:.0} B.\n\n"
    ));
    goals_of_clients(
        report,
        &shape,
        &all,
        per_instance,
        idle_none,
        per_wait_lazy,
        per_wait_all,
    );

    eprintln!("  [scale] call cost with everything known vs 10 services");
    let [big, small] = scale_calls::clients(&urls, shape.services).await?;
    section.push_str("| calls | CPU per call (process) | p99 | throughput |\n|---|---|---|---|\n");
    for c in [1usize, 64] {
        let (rows, goal) = scale_calls::compare(&big, &small, c, settings.plan).await;
        section.push_str(&rows);
        report.goal(goal);
    }
    drop(big);
    drop(small);

    eprintln!("  [scale] change storm");
    let storm_client = scale_fixture::lazy_client(scale_fixture::config(
        &urls,
        shape.services,
        shape.wait_secs,
    )?)?;
    for i in 0..shape.real {
        let _ = storm_client
            .get(&scale_fixture::service_name(i), "/bench")
            .send()
            .await;
    }
    let storm = scale_storm::run(&storm_client, &doubles[0], shape.real, shape.instances).await?;
    section.push_str(&format!(
        "\nChange storm: {} instances of {} services marked critical within 1 s: seen in routing \
         p50 {} / p99 {} ({} of {} seen); process CPU {:.2} s; {} calls during it, {} sent to an \
         instance marked more than {} before.\n",
        storm.marked,
        shape.real,
        fmt_duration(super::stats::quantile(&storm.delays, 0.5).unwrap_or_default()),
        fmt_duration(storm.p99()),
        storm.delays.len(),
        storm.marked,
        storm.cpu,
        storm.calls,
        storm.late_calls,
        fmt_duration(scale_storm::BOUND),
    ));
    report.goal(GoalRow {
        id: "S4",
        what: format!(
            "change storm ({} instances in 1 s) → routing, p99",
            storm.marked
        ),
        measured: format!(
            "p99 {}, {} calls late, CPU {:.2} s",
            fmt_duration(storm.p99()),
            storm.late_calls,
            storm.cpu
        ),
        goal: format!(
            "all seen, p99 ≤ {}, no call later than that",
            fmt_duration(scale_storm::BOUND)
        ),
        verdict: Verdict::of(
            storm.delays.len() == storm.marked
                && storm.p99() <= scale_storm::BOUND
                && storm.late_calls == 0,
        ),
    });
    drop(storm_client);

    let clients = match std::env::var("FEDERATION_BENCH_FLEET") {
        Ok(n) => n.parse().map_err(|_| {
            CliError::failure(format!(
                "bench: FEDERATION_BENCH_FLEET={n:?} is not a number of clients"
            ))
        })?,
        Err(_) if settings.smoke => 5,
        Err(_) => FLEET,
    };
    eprintln!("  [scale] fleet of {clients} clients, Consul restart");
    // The fleet's doubles run in their own process; the bench's are not needed any more.
    drop(doubles);
    let fleet_doubles = DoublesProcess::spawn(&shape, &ports).await?;
    let fleet = scale_fleet::run(&fleet_doubles, &shape, clients, in_use, settings.smoke).await?;
    drop(fleet_doubles);
    section.push_str(&fleet.markdown());
    let p99 = super::stats::quantile(&fleet.reconnects, 0.99).unwrap_or_default();
    report.goal(GoalRow {
        id: "S6",
        what: format!("fleet of {clients}: Consul restart → every client fresh, p99"),
        measured: format!(
            "p99 {} ({} of {clients} reconnected); idle {:.0} req/s",
            fmt_duration(p99),
            fleet.reconnects.len(),
            fleet.idle_rps
        ),
        goal: "all reconnect, p99 ≤ 2 s (backoff probe every 1 s, jitter)".into(),
        verdict: Verdict::of(fleet.reconnects.len() == clients && p99 <= Duration::from_secs(2)),
    });
    report.section(section);
    Ok(())
}

/// RSS growth of a child client, KiB.
fn growth(r: &ClientResult) -> u64 {
    r.rss_after.saturating_sub(r.rss_before)
}

/// Health requests per minute both doubles received over `periods` wait periods (after one
/// period of settling, so the first reads are not counted; a smoke run does not settle).
async fn idle_requests(doubles: &[ConsulDouble], shape: &Shape, periods: u32, settle: bool) -> f64 {
    let wait = Duration::from_secs(shape.wait_secs);
    if settle {
        tokio::time::sleep(wait).await;
    }
    let before = scale_fixture::health_requests(doubles, shape.services);
    let t = Instant::now();
    tokio::time::sleep(wait * periods).await;
    let after = scale_fixture::health_requests(doubles, shape.services);
    (after - before) as f64 * 60.0 / t.elapsed().as_secs_f64()
}

/// Goals S1–S3: memory, readiness, idle Consul load.
fn goals_of_clients(
    report: &mut Report,
    shape: &Shape,
    all: &ClientResult,
    per_instance: f64,
    idle_none: f64,
    per_wait_lazy: f64,
    per_wait_all: f64,
) {
    let total_mib = growth(all) as f64 / 1024.0;
    let at_40k = total_mib * 40_000.0 / shape.total_instances() as f64;
    report.goal(GoalRow {
        id: "S1",
        what: "client RSS growth per known instance; total scaled to 40,000".into(),
        measured: format!(
            "{per_instance:.0} B/instance; {total_mib:.1} MiB ({at_40k:.1} MiB at 40k)"
        ),
        goal: "≤ 2 KiB/instance, ≤ 50 MiB".into(),
        verdict: Verdict::of(per_instance <= 2048.0 && at_40k <= 50.0),
    });
    report.goal(GoalRow {
        id: "S2",
        what: "build → every route ready".into(),
        measured: fmt_duration(all.ready),
        goal: "≤ 2 s".into(),
        verdict: Verdict::of(all.ready <= Duration::from_secs(2)),
    });
    // A period boundary can fall inside the window: allow the one request it splits.
    let slack = 1.5;
    report.goal(GoalRow {
        id: "S3",
        what: "idle Consul requests: none when nothing is called; per watched service per wait (lazy; all)".into(),
        measured: format!("{idle_none:.0}/min; {per_wait_lazy:.2}; {per_wait_all:.2}"),
        goal: "0; ≤ 1; ≤ 1".into(),
        verdict: Verdict::of(idle_none == 0.0 && per_wait_lazy <= slack && per_wait_all <= slack),
    });
}
