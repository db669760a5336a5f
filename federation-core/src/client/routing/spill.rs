//! Load-aware spill: a bounded share of calls leaves the preferred cluster while it is much
//! more loaded than another, with hysteresis.
//!
//! **Failure prevented.** The preferred cluster keeps every call while it is slow or overloaded
//! but not failing (its breakers stay closed, so failover never starts), although another
//! cluster answers much faster; and a spill rule at one threshold flaps, moving traffic back
//! and forth on every wobble of the measurement. Each call compares the preferred cluster's
//! load with the least loaded other cluster's (`ratio` = preferred / other): with the `latency`
//! signal the average duration of recent successful attempts in each cluster (an EWMA over
//! samples, each sample capped at twice the average so one outlier moves it by 20 % at most;
//! learned from the calls that went there — a cluster never called yet is not compared), with `in_flight` the requests in flight per available instance plus one. Spill
//! starts when the ratio reaches `enter_factor` and ends when it falls below `exit_factor`
//! (lower); the state changes at most once per `min_dwell` (tokio's clock). While spilling, each
//! call goes to the other cluster first with probability `max_share`; the rest stay preferred.
//! [`Spill::explain`] tells `health()` each cluster's share and why.

use std::sync::Mutex;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use rand::RngExt;
use rand::rngs::SmallRng;
use tokio::time::Instant;

use super::rank::Order;
use super::table::ClusterRoute;
use crate::config::{SpillPolicy, SpillSignal};
use crate::lock::lock;
use crate::telemetry::SpillHealth;

/// Weight of a new latency sample in a cluster's average.
const ALPHA: f64 = 0.2;

/// Spill state of one service.
#[derive(Debug)]
pub(crate) struct Spill {
    policy: SpillPolicy,
    /// Per route: the latency average in nanoseconds as f64 bits (0 = no sample yet).
    latency: Vec<AtomicU64>,
    state: Mutex<State>,
}

/// The hysteresis state.
#[derive(Debug, Default, Clone, Copy, PartialEq)]
struct State {
    spilling: bool,
    /// When the state last changed (`None`: never).
    changed: Option<Instant>,
}

/// One comparison of the preferred cluster with the least loaded other one.
struct Reading {
    to: usize,
    preferred_load: f64,
    other_load: f64,
}

impl Spill {
    pub(crate) fn new(policy: SpillPolicy, routes: usize) -> Self {
        Self {
            policy,
            latency: (0..routes).map(|_| AtomicU64::new(0)).collect(),
            state: Mutex::new(State::default()),
        }
    }

    /// A successful attempt of `duration` in route `route`.
    pub(crate) fn observe(&self, route: usize, duration: Duration) {
        let Some(cell) = self.latency.get(route) else {
            return;
        };
        let sample = duration.as_nanos() as f64;
        let old = f64::from_bits(cell.load(Ordering::Relaxed));
        let new = if old == 0.0 {
            sample.max(1.0)
        } else {
            // One outlier (a scheduling hiccup) moves the average by at most ALPHA (20 %).
            old + ALPHA * (sample.min(2.0 * old) - old)
        };
        cell.store(new.to_bits(), Ordering::Relaxed);
    }

    /// The load of route `i` by the policy's signal; `None` when not known yet.
    fn load(&self, routes: &[ClusterRoute], i: usize) -> Option<f64> {
        match self.policy.signal {
            SpillSignal::Latency => {
                let ns = f64::from_bits(self.latency.get(i)?.load(Ordering::Relaxed));
                (ns > 0.0).then_some(ns)
            }
            SpillSignal::InFlight => {
                let snapshot = routes[i].current();
                let h = routes[i].health(&snapshot, None);
                if h.available == 0 {
                    return None;
                }
                let flying: u64 = snapshot
                    .endpoints
                    .iter()
                    .map(|e| u64::from(e.state.stats.in_flight()))
                    .sum();
                Some(flying as f64 / h.available as f64 + 1.0)
            }
        }
    }

    /// The least loaded other cluster with a known load and an available instance.
    fn read(&self, routes: &[ClusterRoute], preferred: usize) -> Option<Reading> {
        let preferred_load = self.load(routes, preferred)?;
        let (to, other_load) = (0..routes.len())
            .filter(|&i| i != preferred)
            .filter(|&i| {
                let snapshot = routes[i].current();
                routes[i].health(&snapshot, None).available > 0
            })
            .filter_map(|i| self.load(routes, i).map(|l| (i, l)))
            .min_by(|a, b| a.1.total_cmp(&b.1))?;
        Some(Reading {
            to,
            preferred_load,
            other_load,
        })
    }

    /// Updates the hysteresis with the current loads; returns the route to spill to, if spilling.
    fn update(&self, routes: &[ClusterRoute], preferred: usize) -> Option<usize> {
        let reading = self.read(routes, preferred);
        let ratio = reading.as_ref().map(|r| r.preferred_load / r.other_load);
        let spilling = step(&mut lock(&self.state), ratio, &self.policy, Instant::now());
        reading.filter(|_| spilling).map(|r| r.to)
    }

    /// Per call: while spilling, moves the other cluster to the front of `order` with
    /// probability `max_share` (only when the preferred cluster is first).
    pub(crate) fn apply(
        &self,
        order: &mut Order,
        routes: &[ClusterRoute],
        preferred: usize,
        rng: &mut SmallRng,
    ) {
        if order
            .first()
            .is_none_or(|r| r.route != preferred || r.probe_only)
        {
            return;
        }
        let Some(to) = self.update(routes, preferred) else {
            return;
        };
        if rng.random::<f64>() >= self.policy.max_share {
            return;
        }
        if let Some(pos) = order.iter().position(|r| r.route == to) {
            let entry = order.remove(pos);
            order.insert(0, entry);
        }
    }

    /// Each cluster's share and why, for `health()`.
    pub(crate) fn explain(&self, routes: &[ClusterRoute], preferred: usize) -> SpillHealth {
        let spilling = self.update(routes, preferred);
        let reading = self.read(routes, preferred);
        let from = routes[preferred].cluster.to_string();
        let signal = match self.policy.signal {
            SpillSignal::Latency => "latency",
            SpillSignal::InFlight => "in_flight",
        };
        let p = &self.policy;
        let (to, ratio, reason) = match &reading {
            None => (
                None,
                None,
                format!(
                    "not spilling: no {signal} reading to compare {from} with another available \
                     cluster yet"
                ),
            ),
            Some(r) => {
                let to = routes[r.to].cluster.to_string();
                let ratio = r.preferred_load / r.other_load;
                let (a, b) = (show(signal, r.preferred_load), show(signal, r.other_load));
                let reason = match spilling {
                    Some(_) => format!(
                        "spilling {:.0} % to {to}: {from} {signal} {a} is {ratio:.2}x {to}'s {b} \
                         (entered at {}x; leaves below {}x)",
                        p.max_share * 100.0,
                        p.enter_factor,
                        p.exit_factor
                    ),
                    None => format!(
                        "not spilling: {from} {signal} {a} is {ratio:.2}x {to}'s {b} (enters at \
                         {}x)",
                        p.enter_factor
                    ),
                };
                (Some(to), Some(ratio), reason)
            }
        };
        SpillHealth {
            from,
            share: if spilling.is_some() { p.max_share } else { 0.0 },
            to,
            ratio,
            reason,
        }
    }
}

fn show(signal: &str, load: f64) -> String {
    match signal {
        "latency" => format!("{:.1} ms", load / 1e6),
        _ => format!("{load:.2}"),
    }
}

/// The hysteresis: whether calls spill after a reading of `ratio` (`None`: no reading, which
/// ends a spill like a low ratio does) at `now`. The state changes at most once per
/// `min_dwell`; it enters at `enter_factor` and leaves below `exit_factor`.
fn step(state: &mut State, ratio: Option<f64>, p: &SpillPolicy, now: Instant) -> bool {
    let settled = state
        .changed
        .is_none_or(|at| now.saturating_duration_since(at) >= p.min_dwell);
    if settled {
        let change = match (state.spilling, ratio) {
            (false, Some(r)) => r >= p.enter_factor,
            (true, Some(r)) => r < p.exit_factor,
            (true, None) => true,
            (false, None) => false,
        };
        if change {
            state.spilling = !state.spilling;
            state.changed = Some(now);
            tracing::info!(spilling = state.spilling, ratio, "load-aware spill changed");
        }
    }
    state.spilling
}

#[cfg(test)]
mod tests {
    use super::*;

    fn policy() -> SpillPolicy {
        SpillPolicy {
            signal: SpillSignal::Latency,
            enter_factor: 2.0,
            exit_factor: 1.5,
            max_share: 0.25,
            min_dwell: Duration::from_secs(10),
        }
    }

    #[tokio::test(start_paused = true)]
    async fn enters_at_the_factor_holds_for_the_dwell_and_leaves_below_the_exit() {
        let (p, mut s) = (policy(), State::default());
        let tick = |s: &mut State, r: f64| step(s, Some(r), &p, Instant::now());
        assert!(!tick(&mut s, 1.9), "below the enter factor");
        assert!(tick(&mut s, 2.0), "enters at the factor");
        // Load falls at once, but the state holds for the dwell time.
        tokio::time::advance(Duration::from_secs(9)).await;
        assert!(tick(&mut s, 1.0), "held during the dwell");
        tokio::time::advance(Duration::from_secs(1)).await;
        assert!(!tick(&mut s, 1.0), "leaves after the dwell");
        // And cannot re-enter before another dwell.
        tokio::time::advance(Duration::from_secs(5)).await;
        assert!(!tick(&mut s, 5.0), "no re-entry within the dwell");
        tokio::time::advance(Duration::from_secs(5)).await;
        assert!(tick(&mut s, 5.0), "re-enters after it");
        tokio::time::advance(Duration::from_secs(10)).await;
        assert!(
            !step(&mut s, None, &p, Instant::now()),
            "no reading ends a spill"
        );
    }

    #[tokio::test(start_paused = true)]
    async fn a_ratio_wobbling_at_a_threshold_does_not_flap() {
        let (p, mut s) = (policy(), State::default());
        let mut changes = 0;
        let mut last = false;
        // Around the enter factor: enters once, never leaves (it stays above the exit factor).
        for i in 0..200 {
            let r = if i % 2 == 0 { 1.95 } else { 2.05 };
            let now = step(&mut s, Some(r), &p, Instant::now());
            changes += usize::from(now != last);
            last = now;
            tokio::time::advance(Duration::from_secs(1)).await;
        }
        assert_eq!((changes, last), (1, true));
        // Around the exit factor: leaves once, never re-enters (it stays below the enter factor).
        for i in 0..200 {
            let r = if i % 2 == 0 { 1.45 } else { 1.55 };
            let now = step(&mut s, Some(r), &p, Instant::now());
            changes += usize::from(now != last);
            last = now;
            tokio::time::advance(Duration::from_secs(1)).await;
        }
        assert_eq!((changes, last), (2, false));
    }
}
