//! The Markdown report: one table of per-variant figures per comparison, extra tables for the
//! event-style scenarios, and a goals table with pass/fail.
//!
//! Numbers that are not tied to the goal they serve get misread, so every goal row carries the
//! measured value, the goal as written in `BENCHMARKS.md`, and a verdict; a smoke run marks every
//! verdict "not judged" because seconds-long runs prove only that the harness works.

use std::fmt::Write as _;
use std::time::Duration;

use super::interleave::Comparison;

/// A goal's verdict.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Verdict {
    /// Goal met.
    Pass,
    /// Goal missed.
    Fail,
    /// Measured, but the run was too short to judge (smoke mode).
    NotJudged,
    /// Not measured in this run.
    Skipped,
}

impl Verdict {
    /// `Pass` when `ok`, else `Fail`.
    pub fn of(ok: bool) -> Self {
        if ok { Self::Pass } else { Self::Fail }
    }

    fn label(self) -> &'static str {
        match self {
            Self::Pass => "**pass**",
            Self::Fail => "**FAIL**",
            Self::NotJudged => "not judged (smoke)",
            Self::Skipped => "skipped",
        }
    }
}

/// One row of the goals table.
#[derive(Clone, Debug)]
pub struct GoalRow {
    /// Goal id (`G1`).
    pub id: &'static str,
    /// What is measured.
    pub what: String,
    /// Measured value (median ratio and per-repetition values).
    pub measured: String,
    /// The goal.
    pub goal: String,
    /// Verdict.
    pub verdict: Verdict,
}

/// The report being assembled while the scenarios run.
#[derive(Debug, Default)]
pub struct Report {
    sections: Vec<String>,
    goals: Vec<GoalRow>,
    /// Smoke mode: verdicts are recorded as "not judged".
    pub smoke: bool,
}

impl Report {
    /// An empty report; `smoke` records every pass/fail verdict as "not judged".
    pub fn new(smoke: bool) -> Self {
        Self {
            smoke,
            ..Self::default()
        }
    }

    /// Adds a free-form Markdown section.
    pub fn section(&mut self, markdown: String) {
        self.sections.push(markdown);
    }

    /// Adds a goal row; in smoke mode a pass/fail verdict becomes "not judged".
    pub fn goal(&mut self, mut row: GoalRow) {
        if self.smoke && matches!(row.verdict, Verdict::Pass | Verdict::Fail) {
            row.verdict = Verdict::NotJudged;
        }
        self.goals.push(row);
    }

    /// Whether any goal failed.
    pub fn any_failed(&self) -> bool {
        self.goals.iter().any(|g| g.verdict == Verdict::Fail)
    }

    /// The whole report.
    pub fn render(&self, header: &str) -> String {
        let mut out = String::new();
        out.push_str(header);
        out.push_str("\n### Goals\n\n| goal | what | measured (median of per-rep ratios; per rep) | goal | verdict |\n|---|---|---|---|---|\n");
        for g in &self.goals {
            let _ = writeln!(
                out,
                "| {} | {} | {} | {} | {} |",
                g.id,
                g.what,
                g.measured,
                g.goal,
                g.verdict.label()
            );
        }
        for s in &self.sections {
            out.push('\n');
            out.push_str(s);
        }
        out
    }
}

/// A table of a comparison: one row per variant (median over repetitions).
pub fn comparison_table(title: &str, c: &Comparison) -> String {
    let mut out = format!(
        "#### {title} ({}, {} reps)\n\n| variant | p50 | p99 | mean | throughput | ops | errors |\n|---|---|---|---|---|---|---|\n",
        c.load,
        c.samples.len()
    );
    for (v, name) in c.variants.iter().enumerate() {
        let s = c.median_of(v);
        let _ = writeln!(
            out,
            "| {name} | {} | {} | {} | {:.0}/s | {} | {} |",
            fmt_duration(s.p50),
            fmt_duration(s.p99),
            fmt_duration(s.mean),
            s.throughput,
            s.count,
            s.errors
        );
    }
    out
}

/// `1.02x (0.98, 1.02, 1.05)`.
pub fn fmt_ratio(median: f64, per_rep: &[f64]) -> String {
    let reps: Vec<String> = per_rep.iter().map(|r| format!("{r:.2}")).collect();
    format!("{median:.2}x ({})", reps.join(", "))
}

/// A duration with a unit suited to its size: `230 ns`, `71.4 µs`, `12.3 ms`, `1.20 s`.
pub fn fmt_duration(d: Duration) -> String {
    let nanos = d.as_nanos();
    if nanos < 1_000 {
        format!("{nanos} ns")
    } else if nanos < 1_000_000 {
        format!("{:.1} µs", nanos as f64 / 1e3)
    } else if nanos < 1_000_000_000 {
        format!("{:.1} ms", nanos as f64 / 1e6)
    } else {
        format!("{:.2} s", d.as_secs_f64())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn durations_pick_a_readable_unit() {
        assert_eq!(fmt_duration(Duration::from_nanos(230)), "230 ns");
        assert_eq!(fmt_duration(Duration::from_nanos(71_400)), "71.4 µs");
        assert_eq!(fmt_duration(Duration::from_micros(12_300)), "12.3 ms");
        assert_eq!(fmt_duration(Duration::from_millis(1_200)), "1.20 s");
    }

    #[test]
    fn smoke_runs_do_not_judge() {
        let mut r = Report::new(true);
        r.goal(GoalRow {
            id: "G1",
            what: "x".into(),
            measured: "1".into(),
            goal: "1".into(),
            verdict: Verdict::Fail,
        });
        assert!(!r.any_failed());
        assert!(r.render("# h\n").contains("not judged"));
    }
}
