//! Judging a stream of calls and a health snapshot against a scenario's expectations.
//!
//! Every runner must compute "success share" and "upstream load per call" the same way, or a
//! Python pass and a Rust fail could both be right. The arithmetic lives here, over plain
//! [`CallRecord`]s and request counts, and every violated expectation becomes one readable line
//! (what was expected, what was observed) rather than a bare assertion failure.

use std::collections::BTreeMap;

use crate::driver::{CallRecord, InstanceRef};
use crate::schema::{Bound, CallsExpect, HealthExpect};
use crate::target;

/// Requests each instance received during a step (instance → count).
pub type RequestDeltas = Vec<(InstanceRef, u64)>;

/// Figures of one calls step, printed in reports.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct CallsSummary {
    /// Calls made.
    pub calls: usize,
    /// Calls with a 2xx response.
    pub succeeded: usize,
    /// Attempts reported by the client.
    pub attempts: usize,
    /// Requests the instances received.
    pub upstream: u64,
    /// Longest call in milliseconds.
    pub slowest_ms: u128,
}

impl std::fmt::Display for CallsSummary {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "{} calls, {} ok, {} attempts, {} upstream requests, slowest {} ms",
            self.calls, self.succeeded, self.attempts, self.upstream, self.slowest_ms
        )
    }
}

/// Summarises `records` and `deltas`.
pub fn summarize(records: &[CallRecord], deltas: &RequestDeltas) -> CallsSummary {
    CallsSummary {
        calls: records.len(),
        succeeded: records.iter().filter(|r| r.succeeded()).count(),
        attempts: records.iter().map(|r| r.attempts.len()).sum(),
        upstream: deltas.iter().map(|(_, n)| n).sum(),
        slowest_ms: records
            .iter()
            .map(|r| r.elapsed.as_millis())
            .max()
            .unwrap_or(0),
    }
}

fn share(part: usize, whole: usize) -> f64 {
    if whole == 0 {
        0.0
    } else {
        part as f64 / whole as f64
    }
}

/// Outcome label → count, e.g. `{"200": 9, "timeout: call deadline ...": 1}` (messages cut).
fn outcomes(records: &[CallRecord]) -> BTreeMap<String, usize> {
    let mut out = BTreeMap::new();
    for r in records {
        let label = match (r.status, &r.error_kind) {
            (Some(s), _) => s.to_string(),
            (None, kind) => {
                let message: String = r.error.as_deref().unwrap_or("").chars().take(160).collect();
                format!("{}: {message}", kind.as_deref().unwrap_or("?"))
            }
        };
        *out.entry(label).or_default() += 1;
    }
    out
}

fn check(failures: &mut Vec<String>, what: &str, bound: &Bound, observed: f64) {
    if !bound.holds(observed) {
        failures.push(format!(
            "{what}: expected {}, observed {observed:.3}",
            show(bound)
        ));
    }
}

fn show(bound: &Bound) -> String {
    match (bound.min, bound.max) {
        (Some(lo), Some(hi)) => format!("between {lo} and {hi}"),
        (Some(lo), None) => format!(">= {lo}"),
        (None, Some(hi)) => format!("<= {hi}"),
        (None, None) => "anything".to_owned(),
    }
}

/// Every violated expectation of a calls step.
pub fn judge_calls(
    expect: &CallsExpect,
    records: &[CallRecord],
    deltas: &RequestDeltas,
    all: &[InstanceRef],
) -> Vec<String> {
    let mut failures = Vec::new();
    let summary = summarize(records, deltas);
    if let Some(bound) = &expect.success_share {
        let observed = share(summary.succeeded, summary.calls);
        if !bound.holds(observed) {
            failures.push(format!(
                "success share: expected {}, observed {observed:.3}; outcomes: {:?}",
                show(bound),
                outcomes(records)
            ));
        }
    }
    for (cluster, bound) in &expect.served_by {
        let served = records
            .iter()
            .filter(|r| r.succeeded() && r.cluster.as_deref() == Some(cluster))
            .count();
        check(
            &mut failures,
            &format!("share of successful calls served by {cluster}"),
            bound,
            share(served, summary.succeeded),
        );
    }
    if let Some(max) = expect.max_attempts
        && let Some(worst) = records.iter().max_by_key(|r| r.attempts.len())
        && worst.attempts.len() > max
    {
        failures.push(format!(
            "attempts per call: expected <= {max}, observed {} ({:?})",
            worst.attempts.len(),
            worst.attempts
        ));
    }
    if let Some(bound) = &expect.upstream_per_call {
        check(
            &mut failures,
            "upstream requests per call",
            bound,
            summary.upstream as f64 / summary.calls.max(1) as f64,
        );
    }
    for (reference, bound) in &expect.instance_requests {
        match target::resolve(reference, all) {
            Ok(selected) => {
                let n: u64 = deltas
                    .iter()
                    .filter(|(i, _)| selected.contains(i))
                    .map(|(_, n)| n)
                    .sum();
                check(
                    &mut failures,
                    &format!("requests received by {reference}"),
                    bound,
                    n as f64,
                );
            }
            Err(e) => failures.push(e),
        }
    }
    for (reference, bound) in &expect.instance_attempts {
        match target::resolve(reference, all) {
            Ok(selected) => {
                let n = records
                    .iter()
                    .flat_map(|r| &r.attempts)
                    .filter(|(c, id)| selected.iter().any(|i| &i.cluster == c && &i.id == id))
                    .count();
                check(
                    &mut failures,
                    &format!("attempts sent to {reference}"),
                    bound,
                    n as f64,
                );
            }
            Err(e) => failures.push(e),
        }
    }
    if let Some(max) = expect.max_call_ms
        && summary.slowest_ms > u128::from(max)
    {
        failures.push(format!(
            "slowest call: expected <= {max} ms, observed {} ms",
            summary.slowest_ms
        ));
    }
    if let Some(kinds) = &expect.error_kinds {
        let mut wrong: BTreeMap<String, usize> = BTreeMap::new();
        for r in records.iter().filter(|r| r.status.is_none()) {
            let kind = r.error_kind.clone().unwrap_or_default();
            if !kinds.contains(&kind) {
                let label = format!("{kind} ({})", r.error.as_deref().unwrap_or(""));
                *wrong.entry(label).or_default() += 1;
            }
        }
        if !wrong.is_empty() {
            failures.push(format!(
                "error kinds: expected only {kinds:?}, observed {wrong:?}"
            ));
        }
    }
    if let Some(statuses) = &expect.statuses {
        let mut wrong: BTreeMap<String, usize> = BTreeMap::new();
        for r in records {
            if !r.status.is_some_and(|s| statuses.contains(&s)) {
                let label = match r.status {
                    Some(s) => s.to_string(),
                    None => format!(
                        "error {}: {}",
                        r.error_kind.as_deref().unwrap_or("?"),
                        r.error.as_deref().unwrap_or("")
                    ),
                };
                *wrong.entry(label).or_default() += 1;
            }
        }
        if !wrong.is_empty() {
            failures.push(format!(
                "statuses: expected only {statuses:?}, observed {wrong:?}"
            ));
        }
    }
    for (status, bound) in &expect.cache {
        let n = records
            .iter()
            .filter(|r| r.cache.as_deref() == Some(status))
            .count();
        check(
            &mut failures,
            &format!("calls with cache {status}"),
            bound,
            n as f64,
        );
    }
    failures
}

/// Every violated expectation of a health step, judged on the SDK's health JSON.
pub fn judge_health(expect: &HealthExpect, snapshot: &serde_json::Value) -> Vec<String> {
    let mut failures = Vec::new();
    let services = snapshot["services"].as_array().cloned().unwrap_or_default();
    let Some(service) = services
        .iter()
        .find(|s| s["service"].as_str() == Some(expect.service.as_str()))
    else {
        return vec![format!(
            "health: no service `{}` in the snapshot",
            expect.service
        )];
    };
    if let Some(selected) = &expect.selected {
        let observed = service["selected"].as_str().unwrap_or("<none>");
        if observed != selected {
            failures.push(format!(
                "health {}: selected cluster expected {selected}, observed {observed}",
                expect.service
            ));
        }
    }
    let Some(cluster) = &expect.cluster else {
        return failures;
    };
    let clusters = service["clusters"].as_array().cloned().unwrap_or_default();
    let Some(entry) = clusters
        .iter()
        .find(|c| c["cluster"].as_str() == Some(cluster.as_str()))
    else {
        failures.push(format!("health {}: no cluster `{cluster}`", expect.service));
        return failures;
    };
    let what = format!("health {}/{cluster}", expect.service);
    if let Some(bound) = &expect.ejected {
        let n = entry["ejected"].as_f64().unwrap_or(f64::NAN);
        check(&mut failures, &format!("{what} ejected"), bound, n);
    }
    if let Some(bound) = &expect.available {
        let n = entry["available"].as_f64().unwrap_or(f64::NAN);
        check(&mut failures, &format!("{what} available"), bound, n);
    }
    if let Some(stale) = expect.stale {
        let observed = entry["stale"].as_bool();
        if observed != Some(stale) {
            failures.push(format!(
                "{what} stale: expected {stale}, observed {observed:?}"
            ));
        }
    }
    failures
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use super::*;

    fn ok(cluster: &str) -> CallRecord {
        CallRecord {
            status: Some(200),
            cluster: Some(cluster.into()),
            attempts: vec![(cluster.into(), "s-0".into())],
            elapsed: Duration::from_millis(3),
            ..CallRecord::default()
        }
    }

    #[test]
    fn shares_and_attempts_are_judged() {
        let records = vec![ok("a"), ok("b"), CallRecord::default()];
        let expect = CallsExpect {
            success_share: Some(Bound {
                min: Some(0.9),
                max: None,
            }),
            max_attempts: Some(0),
            ..CallsExpect::default()
        };
        let failures = judge_calls(&expect, &records, &Vec::new(), &[]);
        assert_eq!(failures.len(), 2, "{failures:?}");
        assert!(failures[0].contains("success share"));
    }

    #[test]
    fn error_kinds_outside_the_set_are_reported() {
        let failed = CallRecord {
            error_kind: Some("transport".into()),
            ..CallRecord::default()
        };
        let expect = CallsExpect {
            error_kinds: Some(vec!["timeout".into()]),
            ..CallsExpect::default()
        };
        let failures = judge_calls(&expect, &[failed], &Vec::new(), &[]);
        assert!(failures[0].contains("transport"), "{failures:?}");
    }
}
