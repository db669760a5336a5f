//! The invariants checked after every chaos step.
//!
//! Each one is a promise a user relies on during an incident: a call is not lost while
//! something could serve it; an ejected instance is left alone except for one probe; retries
//! never add more load than the budget allows. Violations are collected as readable lines (step,
//! what, observed), so one run reports every broken promise rather than the first.

use std::collections::{HashMap, VecDeque};
use std::time::{Duration, Instant};

use crate::driver::{CallRecord, InstanceRef};

/// `(cluster, instance id)` of every instance whose breaker is open in the health snapshot.
pub fn open_breakers(health: &serde_json::Value, service: &str) -> Vec<(String, String)> {
    let mut out = Vec::new();
    let services = health["services"].as_array().cloned().unwrap_or_default();
    for s in services.iter().filter(|s| s["service"] == service) {
        for c in s["clusters"].as_array().cloned().unwrap_or_default() {
            let cluster = c["cluster"].as_str().unwrap_or_default().to_owned();
            for i in c["instances"].as_array().cloned().unwrap_or_default() {
                if i["breaker"] == "open" {
                    let id = i["id"].as_str().unwrap_or_default();
                    // Keys are `node/id` for Consul instances and `id` for static ones.
                    let id = id.rsplit('/').next().unwrap_or(id).to_owned();
                    out.push((cluster.clone(), id));
                }
            }
        }
    }
    out
}

/// Instances open both before and after a step may have received at most one request (the
/// half-open probe). The step must be shorter than the shortest open period for this to hold.
pub fn probe_only(
    step: usize,
    before: &[(String, String)],
    after: &[(String, String)],
    deltas: &[(InstanceRef, u64)],
) -> Vec<String> {
    deltas
        .iter()
        .filter(|(i, n)| {
            let key = (i.cluster.clone(), i.id.clone());
            *n > 1 && before.contains(&key) && after.contains(&key)
        })
        .map(|(i, n)| {
            format!(
                "step {step}: {}/{} received {n} requests while its breaker stayed open (at most 1 probe allowed)",
                i.cluster, i.id
            )
        })
        .collect()
}

/// The retry budget over a sliding window: retries and failovers within any window may not
/// exceed `ratio` × calls in that window (plus one bucket of slack) + the fixed reserve.
#[derive(Debug)]
pub struct BudgetCheck {
    ratio: f64,
    reserve: f64,
    window: Duration,
    steps: VecDeque<(Instant, usize, usize)>,
}

impl BudgetCheck {
    /// A check for `percent` % + `min_per_second`/s over `window`.
    pub fn new(percent: u32, min_per_second: u32, window: Duration) -> Self {
        Self {
            ratio: f64::from(percent) / 100.0,
            reserve: f64::from(min_per_second) * window.as_secs_f64(),
            window,
            steps: VecDeque::new(),
        }
    }

    /// Records a step ending at `at` with `calls` calls and `retries` extra attempts; returns a
    /// violation when the window ending now is over budget.
    pub fn record(
        &mut self,
        step: usize,
        at: Instant,
        calls: usize,
        retries: usize,
    ) -> Option<String> {
        self.steps.push_back((at, calls, retries));
        let slack = self.window / 10;
        while let Some(&(t, _, _)) = self.steps.front() {
            if at.saturating_duration_since(t) > self.window + slack {
                self.steps.pop_front();
            } else {
                break;
            }
        }
        let calls: usize = self.steps.iter().map(|s| s.1).sum();
        let retries: usize = self
            .steps
            .iter()
            .filter(|s| at.saturating_duration_since(s.0) <= self.window)
            .map(|s| s.2)
            .sum();
        let allowed = self.ratio * calls as f64 + self.reserve;
        (retries as f64 > allowed).then(|| {
            format!(
                "step {step}: {retries} retries/failovers in the last {:?} exceed the budget ({allowed:.0} for {calls} calls)",
                self.window
            )
        })
    }
}

/// Calls lost to the retry budget (`shed`) while an instance was reachable may be at most
/// `max_share` of the `calls` made in those steps.
pub fn shed_bound(shed: usize, calls: usize, max_share: f64) -> Option<String> {
    (shed as f64 > max_share * calls as f64).then(|| {
        format!(
            "{shed} calls lost to the retry budget while an instance was reachable: more than {:.1} % of {calls} calls",
            max_share * 100.0
        )
    })
}

/// Extra attempts (retries and failovers) of a set of calls.
pub fn retries(records: &[CallRecord]) -> usize {
    records
        .iter()
        .map(|r| r.attempts.len().saturating_sub(1))
        .sum()
}

/// Failed calls of a step during which some instance was reachable, grouped by outcome: how
/// many, and the first call's error message (empty for a response), so a violation says why.
pub fn lost(records: &[CallRecord]) -> HashMap<String, (usize, String)> {
    let mut out: HashMap<String, (usize, String)> = HashMap::new();
    for r in records.iter().filter(|r| !r.succeeded()) {
        let label = match (r.status, &r.error_kind) {
            (Some(s), _) => format!("status {s}"),
            (None, kind) => kind.clone().unwrap_or_default(),
        };
        let entry = out
            .entry(label)
            .or_insert_with(|| (0, r.error.clone().unwrap_or_default()));
        entry.0 += 1;
    }
    out
}

/// Every instance of `service` as `cluster/id:registry health/breaker`, from the health
/// snapshot: what the client believed when a violation happened.
pub fn instance_states(health: &serde_json::Value, service: &str) -> String {
    let mut out = Vec::new();
    let services = health["services"].as_array().cloned().unwrap_or_default();
    for s in services.iter().filter(|s| s["service"] == service) {
        for c in s["clusters"].as_array().cloned().unwrap_or_default() {
            let cluster = c["cluster"].as_str().unwrap_or_default();
            for i in c["instances"].as_array().cloned().unwrap_or_default() {
                let text = |k: &str| i[k].as_str().unwrap_or("?").to_owned();
                out.push(format!(
                    "{cluster}/{}:{}/{}",
                    text("id"),
                    text("health"),
                    text("breaker")
                ));
            }
        }
    }
    out.join(" ")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn budget_window_allows_the_reserve_and_the_share() {
        let t0 = Instant::now();
        let mut check = BudgetCheck::new(20, 1, Duration::from_secs(10));
        assert!(check.record(1, t0, 100, 30).is_none(), "20 + 10 allowed");
        assert!(check.record(2, t0 + Duration::from_secs(1), 0, 1).is_some());
        assert!(
            check
                .record(3, t0 + Duration::from_secs(20), 0, 10)
                .is_none()
        );
    }

    #[test]
    fn budget_losses_are_bounded_not_excused() {
        assert!(shed_bound(0, 0, 0.005).is_none());
        assert!(shed_bound(5, 1000, 0.005).is_none());
        let v = shed_bound(6, 1000, 0.005).expect("over the bound");
        assert!(v.contains("6 calls") && v.contains("0.5 %"), "{v}");
    }

    #[test]
    fn open_breakers_reads_the_health_json() {
        let health = serde_json::json!({"services": [{"service": "user", "clusters": [
            {"cluster": "a", "instances": [
                {"id": "node-1/s-0", "breaker": "open"}, {"id": "s-1", "breaker": "closed"}]}]}]});
        assert_eq!(
            open_breakers(&health, "user"),
            vec![("a".to_owned(), "s-0".to_owned())]
        );
    }
}
