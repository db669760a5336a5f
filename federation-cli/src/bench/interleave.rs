//! Interleaved repetitions: A B A B … after a warm-up, and ratios taken per repetition.
//!
//! On a shared 2-core machine absolute speed drifts 2–4x over minutes (other builds, CPU
//! frequency, cache state). Running the variants back to back in alternation exposes each
//! repetition's pair to the same conditions, so the ratio inside one repetition is steady even
//! when the absolute numbers are not; the median across repetitions then discards an outlier.

use std::time::Duration;

use super::runner::{self, Load};
use super::stats::{Sample, median, median_sample};
use super::target::Target;

/// Timing of a comparison.
#[derive(Clone, Copy, Debug)]
pub struct Plan {
    /// Unmeasured run of every variant before the first repetition.
    pub warmup: Duration,
    /// Length of one measured run.
    pub duration: Duration,
    /// Repetitions (each runs every variant once).
    pub reps: usize,
}

/// The measurements of one comparison: `samples[rep][variant]`.
#[derive(Clone, Debug)]
pub struct Comparison {
    /// How the targets were driven.
    pub load: Load,
    /// Variant names in run order.
    pub variants: Vec<&'static str>,
    /// Per repetition, one sample per variant.
    pub samples: Vec<Vec<Sample>>,
}

impl Comparison {
    /// The median sample of variant `v` over the repetitions.
    pub fn median_of(&self, v: usize) -> Sample {
        let runs: Vec<Sample> = self
            .samples
            .iter()
            .filter_map(|rep| rep.get(v).cloned())
            .collect();
        median_sample(&runs)
    }

    /// Per-repetition ratios `metric(a) / metric(b)` and their median (`NaN` when undefined).
    pub fn ratio(&self, a: usize, b: usize, metric: fn(&Sample) -> f64) -> (f64, Vec<f64>) {
        let per_rep: Vec<f64> = self
            .samples
            .iter()
            .filter_map(|rep| {
                let (x, y) = (metric(rep.get(a)?), metric(rep.get(b)?));
                (y > 0.0).then(|| x / y)
            })
            .collect();
        (median(&per_rep).unwrap_or(f64::NAN), per_rep)
    }
}

/// Runs `variants` under `load`: one warm-up each, then `plan.reps` rounds of A B …, printing
/// progress on stderr.
pub async fn interleave<T: Target>(
    scenario: &'static str,
    variants: &[(&'static str, T)],
    load: Load,
    plan: Plan,
) -> Comparison {
    if !plan.warmup.is_zero() {
        for (name, target) in variants {
            eprintln!("  [{scenario} {load}] warm-up {name}");
            runner::run(target, load, plan.warmup).await;
        }
    }
    let mut samples = Vec::with_capacity(plan.reps);
    for rep in 0..plan.reps {
        let mut row = Vec::with_capacity(variants.len());
        for (name, target) in variants {
            let s = runner::run(target, load, plan.duration).await;
            eprintln!(
                "  [{scenario} {load}] rep {}/{} {name:<8} p50 {} p99 {} {:.0}/s errors {}",
                rep + 1,
                plan.reps,
                super::report::fmt_duration(s.p50),
                super::report::fmt_duration(s.p99),
                s.throughput,
                s.errors
            );
            row.push(s);
        }
        samples.push(row);
    }
    Comparison {
        load,
        variants: variants.iter().map(|(n, _)| *n).collect(),
        samples,
    }
}
