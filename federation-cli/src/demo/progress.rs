//! The live progress line: one line per second on stderr while the demo runs.
//!
//! A minute of silence looks like a hang, and a progress bar hides what matters (where traffic
//! goes right now), so every second prints the phase, call rate, success rate, p95 and the
//! cluster share of the user service. Lines (not a redrawn bar) keep logs and CI output readable,
//! and stderr keeps stdout clean for `--json`.

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use tokio::task::JoinHandle;
use tokio::time::{Instant, MissedTickBehavior};

use super::driver::{SampleLog, samples_since};
use super::stats::{Totals, served_by, shares};
use super::story::Phase;
use super::traffic::Target;

/// Starts printing; abort the handle to stop.
pub fn spawn(
    log: SampleLog,
    phase: Arc<AtomicUsize>,
    phases: Arc<[Phase]>,
    clusters: Vec<String>,
    start: Instant,
) -> JoinHandle<()> {
    tokio::spawn(async move {
        let mut ticks =
            tokio::time::interval_at(start + Duration::from_secs(1), Duration::from_secs(1));
        ticks.set_missed_tick_behavior(MissedTickBehavior::Skip);
        let mut cursor = 0;
        loop {
            ticks.tick().await;
            let fresh = samples_since(&log, cursor);
            cursor += fresh.len();
            let index = phase.load(Ordering::Acquire);
            let name = phases.get(index).map_or("", |p| p.name);
            eprintln!("{}", line(start.elapsed(), index, name, &fresh, &clusters));
        }
    })
}

/// One progress line for the calls finished in the last second.
pub fn line(
    elapsed: Duration,
    index: usize,
    phase: &str,
    fresh: &[super::driver::Sample],
    clusters: &[String],
) -> String {
    let totals = Totals::of(fresh);
    let user = shares(
        &served_by(fresh.iter().filter(|s| s.target == Target::User)),
        clusters,
    );
    let user: Vec<String> = clusters
        .iter()
        .map(|c| format!("{c} {:>3.0}%", user.get(c).copied().unwrap_or(0.0) * 100.0))
        .collect();
    let ai = Totals::of(fresh.iter().filter(|s| s.target == Target::Ai));
    let cache = ai
        .cache_hit_ratio()
        .map_or("-".to_owned(), |r| format!("{:.0}%", r * 100.0));
    format!(
        "[{:>4.0}s] {} {:<13} {:>4} calls  ok {:>6.2}%  p95 {:>6.1}ms  user→ {}  ai cache {}",
        elapsed.as_secs_f64(),
        index + 1,
        phase,
        totals.calls,
        totals.success_percent,
        totals.p95_ms,
        user.join(" "),
        cache
    )
}
