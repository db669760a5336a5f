//! G7's analysis: from every call's attempts in an outage run, the success share during the
//! outage, the failures on the dead instance before it was ejected, when the probe went out,
//! when the revived instance served again, and the retry load against the budget; then the
//! table cells and goal rows of one run.

use std::time::Duration;

use super::report::{GoalRow, Report, Verdict, fmt_duration};

/// The breaker's first open period in the default policy (`breaker.open_for`).
const OPEN_FOR: Duration = Duration::from_secs(1);
/// A pause this long between attempts on the dead instance means it was ejected.
const EJECTION_GAP: Duration = Duration::from_millis(250);

/// One call: when it was due (since the run started), whether it succeeded, and its attempts
/// as (instance index, success).
#[derive(Debug)]
pub(super) struct CallLog {
    pub(super) at: Duration,
    pub(super) ok: bool,
    pub(super) latency: Duration,
    pub(super) attempts: Vec<(Option<usize>, bool)>,
}

/// What one outage run showed.
pub(super) struct Outcome {
    success: f64,
    ejected_after: Option<usize>,
    failures_on_dead: usize,
    probe_after_open: Option<Duration>,
    back_after: Option<Duration>,
    retries_per_s: f64,
    budget_per_s: f64,
    /// When attempts on the dead instance went out (since the kill) and whether they succeeded.
    timeline: Vec<(Duration, bool)>,
}

pub(super) fn analyse(logs: &[CallLog], kill: Duration, revive: Duration, rate: f64) -> Outcome {
    let during: Vec<&CallLog> = logs
        .iter()
        .filter(|l| l.at >= kill && l.at < revive)
        .collect();
    let success = during.iter().filter(|l| l.ok).count() as f64 / during.len().max(1) as f64;
    let dead: Vec<(Duration, bool)> = logs
        .iter()
        .filter(|l| l.at >= kill)
        .flat_map(|l| {
            l.attempts
                .iter()
                .filter(|a| a.0 == Some(0))
                .map(move |a| (l.at, a.1))
        })
        .collect();
    let failures_on_dead = dead.iter().filter(|(at, ok)| !ok && *at < revive).count();
    // The first burst of attempts on the dead instance ends at the first long pause (ejection,
    // or the balancer avoiding it); the next attempt after the pause is the probe.
    let burst_end = dead
        .windows(2)
        .position(|w| w[1].0.saturating_sub(w[0].0) > EJECTION_GAP)
        .unwrap_or(dead.len().saturating_sub(1));
    let (ejected_after, probe_after_open) = match dead.get(burst_end) {
        Some(last) if last.0 + EJECTION_GAP < revive => (
            Some(dead[..=burst_end].iter().filter(|(_, ok)| !ok).count()),
            dead.get(burst_end + 1)
                .map(|next| next.0.saturating_sub(last.0).saturating_sub(OPEN_FOR)),
        ),
        _ => (None, None),
    };
    let back_after = dead
        .iter()
        .find(|(at, ok)| *ok && *at >= revive)
        .map(|(at, _)| at.saturating_sub(revive));
    let retries: usize = during
        .iter()
        .map(|l| l.attempts.len().saturating_sub(1))
        .sum();
    let secs = revive
        .saturating_sub(kill)
        .as_secs_f64()
        .max(f64::MIN_POSITIVE);
    Outcome {
        success,
        ejected_after,
        failures_on_dead,
        probe_after_open,
        back_after,
        retries_per_s: retries as f64 / secs,
        budget_per_s: 0.2 * rate + 10.0,
        timeline: dead
            .iter()
            .map(|&(at, ok)| (at.saturating_sub(kill), ok))
            .collect(),
    }
}

impl Outcome {
    /// The first attempts on the dead instance: `0.00 s ✗, 0.61 s ✗, … 10.4 s ✓`.
    pub(super) fn timeline(&self) -> String {
        const SHOWN: usize = 16;
        let mut parts: Vec<String> = self
            .timeline
            .iter()
            .take(SHOWN)
            .map(|(at, ok)| {
                format!(
                    "{:.2} s {}",
                    at.as_secs_f64(),
                    if *ok { "ok" } else { "failed" }
                )
            })
            .collect();
        if self.timeline.len() > SHOWN {
            parts.push(format!("… ({} in all)", self.timeline.len()));
        }
        if parts.is_empty() {
            "none".to_owned()
        } else {
            parts.join(", ")
        }
    }

    pub(super) fn cells(&self) -> String {
        let opt = |d: Option<Duration>| d.map_or_else(|| "never".to_owned(), fmt_duration);
        format!(
            "{:.2} % | {} | {} | {} | {:.1}/s ({:.0}/s)",
            self.success * 100.0,
            self.ejected_after.map_or_else(
                || format!("never ejected ({} failures)", self.failures_on_dead),
                |n| n.to_string()
            ),
            opt(self.probe_after_open),
            opt(self.back_after),
            self.retries_per_s,
            self.budget_per_s
        )
    }

    pub(super) fn goals(&self, report: &mut Report) {
        let rows = [
            (
                "success during the outage",
                format!("{:.2} %", self.success * 100.0),
                "≥ 99.9 %",
                self.success >= 0.999,
            ),
            (
                "failed attempts before ejection",
                self.ejected_after
                    .map_or("never ejected".into(), |n| n.to_string()),
                "≤ 5",
                self.ejected_after.is_some_and(|n| n <= 5),
            ),
            (
                "retry load during the outage",
                format!("{:.1}/s", self.retries_per_s),
                &*format!("≤ budget {:.0}/s", self.budget_per_s),
                self.retries_per_s <= self.budget_per_s,
            ),
            (
                "first probe after the ejection ended",
                self.probe_after_open.map_or("none".into(), fmt_duration),
                "≤ 1 s",
                self.probe_after_open
                    .is_some_and(|d| d <= Duration::from_secs(1)),
            ),
            (
                "back in rotation after it answers again",
                self.back_after.map_or("never".into(), fmt_duration),
                "≤ 2 s",
                self.back_after.is_some_and(|d| d <= Duration::from_secs(2)),
            ),
        ];
        for (what, measured, goal, ok) in rows {
            report.goal(GoalRow {
                id: "G7",
                what: what.into(),
                measured,
                goal: goal.into(),
                verdict: Verdict::of(ok),
            });
        }
    }
}
