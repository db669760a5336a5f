//! The demo's summary: per phase and overall, as a table for people and JSON for scripts.
//!
//! The point of the demo is a claim ("the federation hid every failure") that a reader can
//! check, so the summary gives per phase: calls, success rate, p50/p95, which cluster served
//! what share (per service, since user, resume and ai prefer different clusters), retried
//! attempts, ejections, cache hit ratio and the measured time to recover; then the overall success rate
//! against the `--min-success` threshold that decides the exit code.

use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::time::Duration;

use serde::Serialize;

use super::driver::Sample;
use super::faults::Event;
use super::stats::{Totals, round3, served_by, shares};
use super::story::{Phase, PhaseKind};
use super::traffic::Target;

/// The whole summary (the `--json` document).
#[derive(Debug, Serialize)]
pub struct DemoReport {
    /// The `--seed` used.
    pub seed: u64,
    /// Calls per second per service.
    pub rate_per_service: u32,
    /// Wall time of the story in seconds.
    pub duration_s: f64,
    /// Clusters in configuration order.
    pub clusters: Vec<String>,
    /// The `--min-success` threshold in percent.
    pub min_success_percent: f64,
    /// Whether the overall success rate met the threshold (exit 0).
    pub passed: bool,
    /// Every call of the run.
    pub overall: Totals,
    /// Per phase, in story order.
    pub phases: Vec<PhaseReport>,
    /// Faults injected and repaired, in order.
    pub events: Vec<EventReport>,
    /// Upstream calls per cluster per second (what the chart draws).
    pub timeline: Vec<Bucket>,
    /// The data sync phase (after the call story).
    pub sync: Option<super::sync_phase::SyncReport>,
    /// The shared-cache (Redis) phase (after the data sync phase).
    pub redis: Option<super::redis_phase::RedisReport>,
}

/// One phase of the story.
#[derive(Debug, Serialize)]
pub struct PhaseReport {
    /// Stable name (`failover`).
    pub name: &'static str,
    /// What happens.
    pub title: &'static str,
    /// The fault kind.
    pub kind: PhaseKind,
    /// Start offset in seconds.
    pub start_s: f64,
    /// End offset in seconds.
    pub end_s: f64,
    /// Every call started in the phase.
    #[serde(flatten)]
    pub totals: Totals,
    /// Share of upstream-served calls per cluster, all services together.
    pub cluster_share: BTreeMap<String, f64>,
    /// Per service.
    pub services: BTreeMap<&'static str, ServiceReport>,
    /// Instances ejected (breaker opened) during the phase, from the client's metrics.
    pub ejections: u64,
    /// Recoveries measured in this phase (from a fault or repair to the first call served as
    /// expected again).
    pub recoveries: Vec<Recovery>,
}

/// One service within a phase.
#[derive(Debug, Serialize)]
pub struct ServiceReport {
    /// Counts and latencies.
    #[serde(flatten)]
    pub totals: Totals,
    /// Share of upstream-served calls per cluster.
    pub cluster_share: BTreeMap<String, f64>,
    /// Cache hits / calls.
    pub cache_hit_ratio: Option<f64>,
}

/// A measured recovery.
#[derive(Debug, Serialize)]
pub struct Recovery {
    /// What was waited for.
    pub what: String,
    /// When the fault or repair happened (seconds from the start).
    pub from_s: f64,
    /// How long until it happened; `None` if it never did during the run.
    pub seconds: Option<f64>,
}

/// A fault or repair.
#[derive(Debug, Serialize)]
pub struct EventReport {
    /// Seconds from the start.
    pub at_s: f64,
    /// The phase it belongs to.
    pub phase: &'static str,
    /// What happened.
    pub what: String,
}

/// Upstream calls per cluster in one time bucket.
#[derive(Debug, Serialize)]
pub struct Bucket {
    /// Bucket start in seconds.
    pub second: u64,
    /// Phase index at the bucket start.
    pub phase: usize,
    /// user-service calls per cluster.
    pub user: BTreeMap<String, u64>,
    /// All upstream calls per cluster.
    pub all: BTreeMap<String, u64>,
}

/// Inputs of the report besides the samples.
#[derive(Debug)]
pub struct RunInfo<'a> {
    /// `--seed`.
    pub seed: u64,
    /// Calls per second per service.
    pub rate: u32,
    /// Clusters in configuration order.
    pub clusters: Vec<String>,
    /// The story.
    pub phases: &'a [Phase],
    /// Phase start offsets plus the end of the last phase.
    pub boundaries: &'a [Duration],
    /// `--min-success`.
    pub min_success: f64,
    /// Ejections per phase (same order as `phases`).
    pub ejections: Vec<u64>,
}

/// Builds the report.
pub fn build(info: &RunInfo<'_>, samples: &[Sample], events: &[Event]) -> DemoReport {
    let overall = Totals::of(samples);
    let phases = info
        .phases
        .iter()
        .enumerate()
        .map(|(i, phase)| phase_report(info, i, phase, samples, events))
        .collect();
    let end = info.boundaries.last().copied().unwrap_or_default();
    DemoReport {
        seed: info.seed,
        rate_per_service: info.rate,
        duration_s: round3(end.as_secs_f64()),
        clusters: info.clusters.clone(),
        min_success_percent: info.min_success,
        passed: overall.success_percent >= info.min_success,
        overall,
        phases,
        events: events
            .iter()
            .map(|e| EventReport {
                at_s: round3(e.at.as_secs_f64()),
                phase: info.phases.get(e.phase).map_or("", |p| p.name),
                what: e.what.clone(),
            })
            .collect(),
        timeline: timeline(info, samples, end),
        sync: None,
        redis: None,
    }
}

fn phase_report(
    info: &RunInfo<'_>,
    index: usize,
    phase: &Phase,
    samples: &[Sample],
    events: &[Event],
) -> PhaseReport {
    let in_phase: Vec<&Sample> = samples.iter().filter(|s| s.phase == index).collect();
    let services = Target::ALL
        .iter()
        .map(|&t| {
            let of: Vec<&Sample> = in_phase.iter().copied().filter(|s| s.target == t).collect();
            let totals = Totals::of(of.iter().copied());
            let report = ServiceReport {
                cluster_share: shares(&served_by(of.iter().copied()), &info.clusters),
                cache_hit_ratio: totals.cache_hit_ratio(),
                totals,
            };
            (t.service(), report)
        })
        .collect();
    let recoveries = events
        .iter()
        .filter(|e| e.phase == index)
        .filter_map(|e| {
            let probe = e.probe.as_ref()?;
            let seconds = samples
                .iter()
                .filter(|s| s.at >= e.at && probe.matches(s))
                .map(|s| s.at + s.latency - e.at)
                .min()
                .map(|d| round3(d.as_secs_f64()));
            Some(Recovery {
                what: probe.what.clone(),
                from_s: round3(e.at.as_secs_f64()),
                seconds,
            })
        })
        .collect();
    let start = info.boundaries.get(index).copied().unwrap_or_default();
    PhaseReport {
        name: phase.name,
        title: phase.title,
        kind: phase.kind,
        start_s: round3(start.as_secs_f64()),
        end_s: round3((start + phase.length).as_secs_f64()),
        totals: Totals::of(in_phase.iter().copied()),
        cluster_share: shares(&served_by(in_phase.iter().copied()), &info.clusters),
        services,
        ejections: info.ejections.get(index).copied().unwrap_or(0),
        recoveries,
    }
}

fn timeline(info: &RunInfo<'_>, samples: &[Sample], end: Duration) -> Vec<Bucket> {
    let seconds = end.as_secs_f64().ceil() as u64;
    let mut buckets: Vec<Bucket> = (0..seconds.max(1))
        .map(|second| {
            let at = Duration::from_secs(second);
            let phase = info.boundaries.iter().rposition(|&b| b <= at).unwrap_or(0);
            let empty: BTreeMap<String, u64> =
                info.clusters.iter().map(|c| (c.clone(), 0)).collect();
            Bucket {
                second,
                phase: phase.min(info.phases.len().saturating_sub(1)),
                user: empty.clone(),
                all: empty,
            }
        })
        .collect();
    for s in samples {
        let (Some(cluster), Some(bucket)) = (&s.cluster, buckets.get_mut(s.at.as_secs() as usize))
        else {
            continue;
        };
        *bucket.all.entry(cluster.to_string()).or_insert(0) += 1;
        if s.target == Target::User {
            *bucket.user.entry(cluster.to_string()).or_insert(0) += 1;
        }
    }
    buckets
}

/// The human summary table, events and verdict.
pub fn render(report: &DemoReport) -> String {
    let mut out = String::new();
    let mut header = vec![
        "phase".to_owned(),
        "calls".to_owned(),
        "success".to_owned(),
        "p50".to_owned(),
        "p95".to_owned(),
        "retried".to_owned(),
        "ejected".to_owned(),
    ];
    header.extend(report.clusters.iter().map(|c| format!("user→{c}")));
    header.extend(report.clusters.iter().map(|c| format!("all→{c}")));
    header.push("ai cache".to_owned());
    header.push("recovery".to_owned());
    let mut table = crate::output::Table::new(header);
    for p in &report.phases {
        let user = p.services.get("user");
        let mut row = totals_cells(p.name, &p.totals);
        row.push(p.ejections.to_string());
        for c in &report.clusters {
            row.push(share_cell(user.and_then(|u| u.cluster_share.get(c))));
        }
        for c in &report.clusters {
            row.push(share_cell(p.cluster_share.get(c)));
        }
        let ai_cache = p.services.get("ai").and_then(|a| a.cache_hit_ratio);
        row.push(share_cell(ai_cache.as_ref()));
        row.push(recovery_cell(&p.recoveries));
        table.row(row);
    }
    let mut overall = totals_cells("overall", &report.overall);
    overall.push(
        report
            .phases
            .iter()
            .map(|p| p.ejections)
            .sum::<u64>()
            .to_string(),
    );
    table.row(overall);
    let _ = writeln!(
        out,
        "\nsummary (seed {}, {} calls/s per service, {:.1} s)",
        report.seed, report.rate_per_service, report.duration_s
    );
    out.push_str(&table.render(2));
    out.push_str("\nevents\n");
    for e in &report.events {
        let _ = writeln!(out, "  {:>6.1}s  {:<13}  {}", e.at_s, e.phase, e.what);
    }
    for p in &report.phases {
        for r in &p.recoveries {
            let took = r
                .seconds
                .map_or("never".to_owned(), |s| format!("{s:.2} s"));
            let _ = writeln!(out, "  recovery  {:<13}  {}: {took}", p.name, r.what);
        }
    }
    out
}

/// The final verdict line.
pub fn verdict(report: &DemoReport) -> String {
    let met = report.overall.success_percent >= report.min_success_percent;
    let sign = if met { "≥" } else { "<" };
    let word = if report.passed { "PASS" } else { "FAIL" };
    let sync = match &report.sync {
        Some(s) if s.ran && s.passed => "; data sync: converged".to_string(),
        Some(s) if s.ran => format!("; data sync FAILED: {}", s.error.as_deref().unwrap_or("?")),
        _ => String::new(),
    };
    let redis = match &report.redis {
        Some(r) if r.ran && r.passed => "; shared cache: held".to_string(),
        Some(r) if r.ran => format!(
            "; shared cache FAILED: {}",
            r.error.as_deref().unwrap_or("?")
        ),
        _ => String::new(),
    };
    format!(
        "{word}: {} of {} calls succeeded ({:.3} % {sign} {:.3} %){sync}{redis}",
        report.overall.ok,
        report.overall.calls,
        report.overall.success_percent,
        report.min_success_percent
    )
}

fn totals_cells(name: &str, t: &Totals) -> Vec<String> {
    vec![
        name.to_owned(),
        t.calls.to_string(),
        format!("{:.2}%", t.success_percent),
        format!("{:.1}ms", t.p50_ms),
        format!("{:.1}ms", t.p95_ms),
        t.failed_attempts.to_string(),
    ]
}

fn share_cell(share: Option<&f64>) -> String {
    share.map_or("-".to_owned(), |s| format!("{:.0}%", s * 100.0))
}

fn recovery_cell(recoveries: &[Recovery]) -> String {
    recoveries
        .iter()
        .map(|r| r.seconds.map_or("never".to_owned(), |s| format!("{s:.2}s")))
        .collect::<Vec<_>>()
        .join(", ")
}
