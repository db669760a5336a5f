//! The balancer of one (cluster, service): dispatches to the configured algorithm.

use std::fmt;
use std::sync::Mutex;

use tokio::time::Instant;

use super::stats::Candidate;
use super::{p2c, round_robin};
use crate::config::LoadBalancing;
use crate::rng::SplitMix;

/// Chooses an instance among available candidates. One per (cluster, service); `Sync`, so one
/// balancer serves concurrent calls.
pub struct Balancer {
    policy: LoadBalancing,
    rng: SplitMix,
    /// Serialises round-robin picks (their state is read-modify-write over all candidates).
    rr_lock: Mutex<()>,
}

impl Balancer {
    /// A balancer for `policy`. `seed` makes P2C draws reproducible (tests); `None` seeds from
    /// the OS.
    pub fn new(policy: LoadBalancing, seed: Option<u64>) -> Self {
        Self {
            policy,
            rng: SplitMix::new(seed),
            rr_lock: Mutex::new(()),
        }
    }

    /// Index of the chosen candidate; `None` if the list is empty or every weight is 0.
    /// Callers pass only available instances (breaker closed or probe-able, not excluded).
    /// `now` is a clock reading the caller already has (peak EWMA decays the latency averages
    /// to it); there is no form that reads the clock itself, so tests call this one too.
    pub fn pick_at(&self, candidates: &[Candidate<'_>], now: Instant) -> Option<usize> {
        match candidates {
            [] => None,
            [only] => (only.weight > 0).then_some(0),
            _ => match self.policy {
                LoadBalancing::PeakEwma => p2c::pick(&self.rng, candidates, |c| {
                    c.stats.ewma_ns(now) * (f64::from(c.stats.in_flight()) + 1.0)
                        / f64::from(c.weight)
                }),
                LoadBalancing::LeastRequest => p2c::pick(&self.rng, candidates, |c| {
                    (f64::from(c.stats.in_flight()) + 1.0) / f64::from(c.weight)
                }),
                LoadBalancing::RoundRobin => {
                    let _guard = self.rr_lock.lock().unwrap_or_else(|e| e.into_inner());
                    round_robin::pick(candidates)
                }
            },
        }
    }
}

impl fmt::Debug for Balancer {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Balancer")
            .field("policy", &self.policy)
            .finish_non_exhaustive()
    }
}
