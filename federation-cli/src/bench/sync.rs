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

use std::time::Duration;

use federation_testkit::kafka::{KafkaBroker, java_available};

use super::interleave::Comparison;
use super::report::{GoalRow, Report, Verdict, comparison_table, fmt_duration, fmt_ratio};
use super::runner::Load;
use super::stats::Sample;
use super::sync_cpu::{self, CpuMark, CpuPerEvent};
use super::sync_drive::{IN_FLIGHT, Run, Schedule, measure};
use super::sync_pipes::{Arrivals, Ours, Pipe, Plain};
use super::sync_stats::{self, ClientWork};
use super::{Settings, SyncVariant};
use crate::exit::CliError;

/// The offered rate of the latency goal (events per second).
const RATE: f64 = 5_000.0;
/// Shortest warm-up of each pipe per round in a full run.
const WARMUP: Duration = Duration::from_secs(5);
/// Variant names, in the order of the samples.
const VARIANTS: [&str; 2] = ["plain rdkafka pair", "FederatedDataSync"];

/// Runs G9 (the variants `settings.variant` selects) and adds its tables and goal rows.
///
/// # Errors
/// When the broker or a pipe cannot be set up.
pub async fn run(settings: &Settings, report: &mut Report) -> Result<(), CliError> {
    if let Err(reason) = java_available() {
        skipped(report, &format!("no Kafka broker without Java: {reason}"));
        return Ok(());
    }
    eprintln!("  [sync] starting the Kafka broker");
    let broker = KafkaBroker::start()
        .await
        .map_err(|e| CliError::failure(format!("bench: sync: the Kafka broker: {e}")))?;
    let counted = sync_stats::enable_if_asked();
    let pipes = start_pipes(&broker, settings.variant).await?;
    let plan = settings.plan;
    let mut seq = 0;
    warm_up(&pipes, settings, &mut seq).await?;
    let broker_pid = broker.pid();
    let (mut throughput, mut latency) = (Vec::new(), Vec::new());
    let (mut cpu_closed, mut cpu_open) = (Vec::new(), Vec::new());
    let mut work: Vec<ClientWork> = pipes.iter().map(|_| ClientWork::default()).collect();
    for rep in 0..plan.reps {
        for (schedule, samples, cpu) in [
            (Schedule::Closed, &mut throughput, &mut cpu_closed),
            (Schedule::Open(RATE), &mut latency, &mut cpu_open),
        ] {
            let counts = (counted && matches!(schedule, Schedule::Closed)).then_some(&mut work[..]);
            let (s, c) = round(
                &pipes,
                schedule,
                plan.duration,
                rep,
                &mut seq,
                broker_pid,
                counts,
            )
            .await;
            samples.push(s);
            cpu.push(c);
        }
    }
    for (name, pipe) in &pipes {
        // For per-event counts of a whole run (e.g. allocations under a uprobe).
        let stored = pipe.arrivals().count();
        eprintln!("  [sync] {name}: {stored} events stored in all runs, warm-up included");
    }
    let names: Vec<&'static str> = pipes.iter().map(|(name, _)| *name).collect();
    let comparisons = [
        comparison(
            Load::Closed {
                concurrency: IN_FLIGHT,
            },
            &names,
            throughput,
        ),
        comparison(Load::Open { rate: RATE }, &names, latency),
    ];
    if pipes.len() == VARIANTS.len() {
        judge(report, &comparisons);
    } else {
        one_variant(report, settings.variant);
    }
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
    section.push('\n');
    section.push_str(&cpu_table(&names, &cpu_closed, &cpu_open));
    if counted {
        section.push('\n');
        section.push_str(&sync_stats::table(&names, &work));
    }
    report.section(section);
    Ok(())
}

/// One of the compared pipes.
enum AnyPipe {
    Plain(Plain),
    Ours(Ours),
}

impl Pipe for AnyPipe {
    async fn send(&self, seq: u64, sent_ns: u64) -> bool {
        match self {
            Self::Plain(pipe) => pipe.send(seq, sent_ns).await,
            Self::Ours(pipe) => pipe.send(seq, sent_ns).await,
        }
    }

    fn arrivals(&self) -> &Arrivals {
        match self {
            Self::Plain(pipe) => pipe.arrivals(),
            Self::Ours(pipe) => pipe.arrivals(),
        }
    }
}

/// The pipes `variant` selects, named, in the order of [`VARIANTS`] (a pipe not selected is not
/// started, so it costs no CPU while the other is profiled).
async fn start_pipes(
    broker: &KafkaBroker,
    variant: SyncVariant,
) -> Result<Vec<(&'static str, AnyPipe)>, CliError> {
    let mut pipes = Vec::new();
    if variant != SyncVariant::Sdk {
        let plain = Plain::start(broker, Arrivals::new()).await?;
        pipes.push((VARIANTS[0], AnyPipe::Plain(plain)));
    }
    if variant != SyncVariant::Plain {
        let ours = Ours::start(&broker.bootstrap_servers(), Arrivals::new()).await?;
        pipes.push((VARIANTS[1], AnyPipe::Ours(ours)));
    }
    Ok(pipes)
}

/// Warm-up, the same for both pipes: joins both consumer groups, fills the connections and
/// gives the broker's JIT compiler two alternating rounds of each pipe's traffic (a cold JVM
/// spends a third of the machine compiling, which would land on whichever pipe ran first).
async fn warm_up(
    pipes: &[(&'static str, AnyPipe)],
    settings: &Settings,
    seq: &mut u64,
) -> Result<(), CliError> {
    let warmup = if settings.smoke {
        settings.plan.warmup.max(Duration::from_millis(100))
    } else {
        settings.plan.warmup.max(WARMUP)
    };
    let rounds = if settings.smoke { 1 } else { 2 };
    for _ in 0..rounds {
        for (name, pipe) in pipes {
            let run = measure(pipe, Schedule::Closed, warmup, seq).await;
            if run.missing > 0 {
                return Err(CliError::failure(format!(
                    "bench: sync: warm-up of {name}: {} events never arrived",
                    run.missing
                )));
            }
        }
    }
    Ok(())
}

/// CPU per stored event of each variant, medians over the repetitions.
fn cpu_table(
    names: &[&str],
    closed: &[Vec<Option<CpuPerEvent>>],
    open: &[Vec<Option<CpuPerEvent>>],
) -> String {
    let mut out = String::from(
        "#### CPU per stored event (user + system time, µs; medians over the repetitions)\n\n\
         | load | variant | bench process | broker | both |\n|---|---|---|---|---|\n",
    );
    for (load, runs) in [("closed, 1,000 in flight", closed), ("open 5,000/s", open)] {
        for (v, name) in names.iter().enumerate() {
            let per_rep: Vec<Option<CpuPerEvent>> = runs.iter().map(|r| r[v]).collect();
            let Some(cpu) = sync_cpu::median(&per_rep) else {
                out.push_str(&format!(
                    "| {load} | {name} | not measured (no /proc) | | |\n"
                ));
                continue;
            };
            let both = cpu.bench_us + cpu.broker_us;
            out.push_str(&format!(
                "| {load} | {name} | {:.1} | {:.1} | {both:.1} |\n",
                cpu.bench_us, cpu.broker_us
            ));
        }
    }
    out
}

/// One repetition of every pipe under `schedule`, the first pipe rotating with `rep`; the
/// samples and each pipe's CPU per stored event, in the order of `pipes`.
async fn round(
    pipes: &[(&'static str, AnyPipe)],
    schedule: Schedule,
    duration: Duration,
    rep: usize,
    seq: &mut u64,
    broker_pid: Option<u32>,
    mut work: Option<&mut [ClientWork]>,
) -> (Vec<Sample>, Vec<Option<CpuPerEvent>>) {
    let mut runs: Vec<Option<(Run, Option<CpuPerEvent>)>> = pipes.iter().map(|_| None).collect();
    for i in 0..pipes.len() {
        let v = (i + rep) % pipes.len();
        let before = federation_sync::kafka_stats::snapshot();
        let run = timed(&pipes[v].1, schedule, duration, seq, broker_pid).await;
        if let Some(work) = work.as_deref_mut().and_then(|w| w.get_mut(v)) {
            let after = federation_sync::kafka_stats::snapshot();
            work.add(&before, &after, run.0.sample.count);
        }
        runs[v] = Some(run);
    }
    let (mut samples, mut cpu) = (Vec::new(), Vec::new());
    for ((name, _), (run, c)) in pipes.iter().zip(runs.into_iter().flatten()) {
        progress(schedule, rep, name, &run);
        samples.push(run.sample);
        cpu.push(c);
    }
    (samples, cpu)
}

/// [`measure`] with the CPU this process and the broker spent on it.
async fn timed<P: Pipe>(
    pipe: &P,
    schedule: Schedule,
    duration: Duration,
    seq: &mut u64,
    broker_pid: Option<u32>,
) -> (Run, Option<CpuPerEvent>) {
    let before = CpuMark::now(broker_pid);
    let run = measure(pipe, schedule, duration, seq).await;
    let after = CpuMark::now(broker_pid);
    let cpu = before
        .zip(after)
        .and_then(|(b, a)| b.per_event(&a, run.sample.count));
    (run, cpu)
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

fn comparison(load: Load, names: &[&'static str], samples: Vec<Vec<Sample>>) -> Comparison {
    Comparison {
        load,
        variants: names.to_vec(),
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

/// Goal rows of a run of one variant (`--variant`): nothing to compare, nothing judged.
fn one_variant(report: &mut Report, variant: SyncVariant) {
    let name = if variant == SyncVariant::Plain {
        "plain"
    } else {
        "sdk"
    };
    unjudged(
        report,
        &format!("not judged: --variant {name} ran one variant alone (no comparison)"),
    );
}

fn skipped(report: &mut Report, reason: &str) {
    unjudged(report, &format!("skipped: {reason}"));
    report.section(format!("### sync (G9)\n\nSkipped: {reason}.\n"));
}

/// Both goal rows, not judged, saying why.
fn unjudged(report: &mut Report, measured: &str) {
    for what in [
        "sync max throughput: plain rdkafka pair / FederatedDataSync",
        "sync end-to-end p99 at 5,000 events/s",
    ] {
        report.goal(GoalRow {
            id: "G9",
            what: what.into(),
            measured: measured.into(),
            goal: String::new(),
            verdict: Verdict::Skipped,
        });
    }
}
