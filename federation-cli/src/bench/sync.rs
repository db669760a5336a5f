//! G9: data sync end to end on a real Kafka broker, next to a plain rdkafka producer → consumer
//! pair on the same broker in the same run.
//!
//! Sync that cannot keep up with the writes it mirrors falls behind without bound, and a sync
//! layer much slower than the Kafka client under it is not worth having. Measured: maximum
//! throughput (closed loop, arrived events per second) and end-to-end latency at a fixed
//! 5,000 events/s (open loop, from each event's intended send time to the record stored on the
//! other side), for the plain pair and for `FederatedDataSync`, interleaved per repetition (the
//! order alternates). Skipped, and said so, when this machine has no Java for the broker.
//! Setup and fairness rules: `sync_pipes`; the loops: `sync_drive`.

use federation_testkit::kafka::{KafkaBroker, java_available};

use super::Settings;
use super::interleave::Comparison;
use super::report::{GoalRow, Report, Verdict, comparison_table, fmt_duration, fmt_ratio};
use super::runner::Load;
use super::stats::Sample;
use super::sync_drive::{IN_FLIGHT, Run, Schedule, measure};
use super::sync_pipes::{Arrivals, Ours, Plain};
use crate::exit::CliError;

/// The offered rate of the latency goal (events per second).
const RATE: f64 = 5_000.0;
/// Variant names, in the order of the samples.
const VARIANTS: [&str; 2] = ["plain rdkafka pair", "FederatedDataSync"];

/// Runs G9 and adds its tables and goal rows.
///
/// # Errors
/// When the broker or either pipe cannot be set up.
pub async fn run(settings: &Settings, report: &mut Report) -> Result<(), CliError> {
    if let Err(reason) = java_available() {
        skipped(report, &format!("no Kafka broker without Java: {reason}"));
        return Ok(());
    }
    eprintln!("  [sync] starting the Kafka broker");
    let broker = KafkaBroker::start()
        .await
        .map_err(|e| CliError::failure(format!("bench: sync: the Kafka broker: {e}")))?;
    let plain = Plain::start(&broker, Arrivals::new()).await?;
    let ours = Ours::start(&broker.bootstrap_servers(), Arrivals::new()).await?;
    let plan = settings.plan;
    let mut seq = 0;
    // Warm-up: joins both consumer groups and fills the connections; at least a few events.
    let warmup = plan.warmup.max(std::time::Duration::from_millis(100));
    for (name, run) in [
        (
            "plain",
            measure(&plain, Schedule::Closed, warmup, &mut seq).await,
        ),
        (
            "sdk",
            measure(&ours, Schedule::Closed, warmup, &mut seq).await,
        ),
    ] {
        if run.missing > 0 {
            return Err(CliError::failure(format!(
                "bench: sync: warm-up of {name}: {} events never arrived",
                run.missing
            )));
        }
    }
    let mut throughput = Vec::new();
    let mut latency = Vec::new();
    for rep in 0..plan.reps {
        let (closed, open) = (Schedule::Closed, Schedule::Open(RATE));
        throughput.push(pair(&plain, &ours, closed, plan.duration, rep, &mut seq).await);
        latency.push(pair(&plain, &ours, open, plan.duration, rep, &mut seq).await);
    }
    let comparisons = [
        comparison(
            Load::Closed {
                concurrency: IN_FLIGHT,
            },
            throughput,
        ),
        comparison(Load::Open { rate: RATE }, latency),
    ];
    judge(report, &comparisons);
    let mut section = String::from(
        "### sync (G9): FederatedDataSync publish → subscriber → MemoryTarget vs a plain rdkafka \
         producer → consumer pair, one broker, one run\n\n",
    );
    section.push_str(&comparison_table(
        "max throughput: arrived events/s; latencies send → stored, under saturation",
        &comparisons[0],
    ));
    section.push('\n');
    section.push_str(&comparison_table(
        "end-to-end latency at 5,000 events/s (from the intended send time)",
        &comparisons[1],
    ));
    report.section(section);
    Ok(())
}

/// One repetition of both variants under `schedule`, alternating which goes first.
async fn pair(
    plain: &Plain,
    ours: &Ours,
    schedule: Schedule,
    duration: std::time::Duration,
    rep: usize,
    seq: &mut u64,
) -> Vec<Sample> {
    let (a, b) = if rep.is_multiple_of(2) {
        let a = measure(plain, schedule, duration, seq).await;
        (a, measure(ours, schedule, duration, seq).await)
    } else {
        let b = measure(ours, schedule, duration, seq).await;
        (measure(plain, schedule, duration, seq).await, b)
    };
    for (name, run) in VARIANTS.iter().zip([&a, &b]) {
        progress(schedule, rep, name, run);
    }
    vec![a.sample, b.sample]
}

fn progress(schedule: Schedule, rep: usize, name: &str, run: &Run) {
    let s = &run.sample;
    eprintln!(
        "  [sync {schedule:?}] rep {} {name:<20} p50 {} p99 {} {:.0}/s arrived {} missing {}",
        rep + 1,
        fmt_duration(s.p50),
        fmt_duration(s.p99),
        s.throughput,
        s.count,
        run.missing
    );
}

fn comparison(load: Load, samples: Vec<Vec<Sample>>) -> Comparison {
    Comparison {
        load,
        variants: VARIANTS.to_vec(),
        samples,
    }
}

/// The two goal rows: throughput ratio ≤ 1.3x, p99 < 100 ms at 5,000 events/s.
fn judge(report: &mut Report, [throughput, latency]: &[Comparison; 2]) {
    let lost: u64 = [throughput, latency]
        .iter()
        .flat_map(|c| c.samples.iter().flatten())
        .map(|s| s.errors)
        .sum();
    let (ratio, reps) = throughput.ratio(0, 1, |s| s.throughput);
    let (plain, ours) = (throughput.median_of(0), throughput.median_of(1));
    report.goal(GoalRow {
        id: "G9",
        what: "sync max throughput: plain rdkafka pair / FederatedDataSync (same broker)".into(),
        measured: format!(
            "{} ({:.0}/s vs {:.0}/s){}",
            fmt_ratio(ratio, &reps),
            plain.throughput,
            ours.throughput,
            lost_note(lost)
        ),
        goal: "≤ 1.3x".into(),
        verdict: Verdict::of(ratio <= 1.3 && lost == 0),
    });
    let (plain, ours) = (latency.median_of(0), latency.median_of(1));
    let per_rep: Vec<String> = latency
        .samples
        .iter()
        .filter_map(|rep| rep.get(1).map(|s| fmt_duration(s.p99)))
        .collect();
    report.goal(GoalRow {
        id: "G9",
        what: "sync end-to-end p99 at 5,000 events/s, publish → applied (loopback)".into(),
        measured: format!(
            "{} ({}; p50 {}; plain pair p99 {}, p50 {}){}",
            fmt_duration(ours.p99),
            per_rep.join(", "),
            fmt_duration(ours.p50),
            fmt_duration(plain.p99),
            fmt_duration(plain.p50),
            lost_note(lost)
        ),
        goal: "< 100 ms".into(),
        verdict: Verdict::of(ours.p99.as_secs_f64() < 0.100 && lost == 0),
    });
}

fn lost_note(lost: u64) -> String {
    if lost == 0 {
        String::new()
    } else {
        format!("; {lost} events failed or never arrived")
    }
}

fn skipped(report: &mut Report, reason: &str) {
    for what in [
        "sync max throughput: plain rdkafka pair / FederatedDataSync",
        "sync end-to-end p99 at 5,000 events/s",
    ] {
        report.goal(GoalRow {
            id: "G9",
            what: what.into(),
            measured: format!("skipped: {reason}"),
            goal: String::new(),
            verdict: Verdict::Skipped,
        });
    }
    report.section(format!("### sync (G9)\n\nSkipped: {reason}.\n"));
}
