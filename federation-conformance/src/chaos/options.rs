//! What a chaos run is told (seeds, duration, pace) and what it reports.
//!
//! A run that cannot be repeated exactly cannot be debugged, and one seed explores one path
//! through the faults: so the seeds come from the environment as a list, and a value that does
//! not parse stops the run with the variable's name instead of silently running a default.

use std::collections::BTreeMap;
use std::time::Duration;

/// Knobs of a chaos run.
#[derive(Clone, Debug)]
pub struct ChaosOptions {
    /// Seed of the fault schedule.
    pub seed: u64,
    /// How long faults are injected.
    pub duration: Duration,
    /// Calls per step.
    pub calls_per_step: usize,
    /// Concurrent callers.
    pub concurrency: usize,
    /// Probability of a fault before a step.
    pub fault_probability: f64,
}

impl ChaosOptions {
    /// One run of `secs` with `seed` and the run's usual pace (24 calls over 4 callers per step,
    /// a fault before 35 % of the steps).
    pub fn new(seed: u64, secs: u64) -> Self {
        Self {
            seed,
            duration: Duration::from_secs(secs),
            calls_per_step: 24,
            concurrency: 4,
            fault_probability: 0.35,
        }
    }

    /// One run per seed: seeds from `FEDERATION_CHAOS_SEEDS` (comma-separated) or
    /// `FEDERATION_CHAOS_SEED`, else `seeds`; seconds per seed from `FEDERATION_CHAOS_SECS`,
    /// else `secs`. A value that does not parse is an error naming the variable.
    pub fn from_env(seeds: &[u64], secs: u64) -> Result<Vec<Self>, String> {
        let var = |name: &str| std::env::var(name).ok().filter(|v| !v.trim().is_empty());
        let parse = |name: &str, text: &str| {
            text.trim().parse::<u64>().map_err(|_| {
                format!("{name}={text:?}: expected a whole number (seeds: a comma-separated list)")
            })
        };
        let seeds = match (var("FEDERATION_CHAOS_SEEDS"), var("FEDERATION_CHAOS_SEED")) {
            (Some(list), _) => list
                .split(',')
                .map(|s| parse("FEDERATION_CHAOS_SEEDS", s))
                .collect::<Result<Vec<_>, _>>()?,
            (None, Some(one)) => vec![parse("FEDERATION_CHAOS_SEED", &one)?],
            (None, None) => seeds.to_vec(),
        };
        let secs = match var("FEDERATION_CHAOS_SECS") {
            Some(text) => parse("FEDERATION_CHAOS_SECS", &text)?,
            None => secs,
        };
        Ok(seeds
            .into_iter()
            .map(|seed| Self::new(seed, secs))
            .collect())
    }
}

/// What a chaos run did and found.
#[derive(Clone, Debug, Default)]
pub struct ChaosReport {
    /// Figures keyed by name (calls, faults, succeeded, attempts, retries, fds, tasks, RSS ...).
    pub figures: BTreeMap<&'static str, f64>,
    /// Faults injected, by kind.
    pub faults: BTreeMap<&'static str, usize>,
    /// Failed calls while something was reachable that the retry budget explains
    /// (`budget_exhausted`): counted, and bounded by [`SHED_MAX_SHARE`](super::SHED_MAX_SHARE).
    pub shed: BTreeMap<String, usize>,
    /// Broken invariants.
    pub violations: Vec<String>,
}

impl ChaosReport {
    /// The figures as printable lines.
    pub fn render(&self) -> String {
        let mut out = String::from("chaos run figures:\n");
        for (k, v) in &self.figures {
            out.push_str(&format!("  {k}: {v:.3}\n"));
        }
        out.push_str(&format!("  faults injected: {:?}\n", self.faults));
        out.push_str(&format!(
            "  shed by the retry budget while reachable: {:?}\n",
            self.shed
        ));
        out.push_str(&format!("  violations: {}\n", self.violations.len()));
        for v in self.violations.iter().take(30) {
            out.push_str(&format!("    {v}\n"));
        }
        out
    }
}
