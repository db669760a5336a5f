//! The metrics side of a routing table: breaker transitions and ejections per instance, the
//! pre-resolved success counters of calls and attempts, and forgetting instances that left.
//!
//! Failures prevented: a per-call lookup lock (and three string hashes) in the metrics for the
//! most common event, a successful call; and a Prometheus exposition that grows forever as
//! instances come and go (every instance ever seen keeping its breaker series). Success handles
//! are resolved on first use (so no series appears before its first event) and kept in a
//! `OnceLock`; series of an instance that left discovery are removed when the table is rebuilt.

use std::collections::HashMap;
use std::sync::Arc;

use super::table::{ClusterRoute, EndpointState};
use crate::breaker::{Breaker, Transition};
use crate::telemetry::CallHandles;

impl ClusterRoute {
    /// Reports the breaker's transitions (and ejections) to the metrics (issue 4 telemetry).
    pub(super) fn observe_breaker(&self, breaker: &Breaker, instance: &Arc<str>) {
        let Some((metrics, service)) = &self.telemetry else {
            return;
        };
        let (metrics, service) = (metrics.clone(), Arc::clone(service));
        let (cluster, instance) = (Arc::clone(&self.cluster), Arc::clone(instance));
        breaker.on_transition(move |t| {
            let to = match t {
                Transition::Opened { .. } => crate::telemetry::BreakerStateValue::Open,
                Transition::HalfOpened => crate::telemetry::BreakerStateValue::HalfOpen,
                _ => crate::telemetry::BreakerStateValue::Closed,
            };
            metrics.breaker_transition(&cluster, &service, &instance, to);
            if to == crate::telemetry::BreakerStateValue::Open {
                metrics.ejection(&cluster, &service, &instance);
            }
        });
    }

    /// Records a successful call served by this cluster (`federation_requests_total` and its
    /// histogram) through handles resolved once, without the metrics' lookup lock.
    pub(crate) fn record_call_success(&self, took: std::time::Duration) {
        if let Some((call, _)) = self.success_handles() {
            call.record(took);
        }
    }

    /// Records a successful attempt on this cluster (`federation_attempts_total` and its
    /// histogram) through handles resolved once.
    pub(crate) fn record_attempt_success(&self, took: std::time::Duration) {
        if let Some((_, attempt)) = self.success_handles() {
            attempt.record(took);
        }
    }

    fn success_handles(&self) -> Option<&(CallHandles, CallHandles)> {
        let (metrics, service) = self.telemetry.as_ref()?;
        Some(self.success.get_or_init(|| {
            (
                metrics.call_handles(service, &self.cluster, "success", false),
                metrics.call_handles(service, &self.cluster, "success", true),
            )
        }))
    }

    /// Removes the metric series of instances that left discovery (in `old`, not in `kept`),
    /// unless a kept instance carries the same id (the series are labelled by id).
    pub(super) fn forget_dropped(
        &self,
        old: &HashMap<String, Arc<EndpointState>>,
        kept: &HashMap<String, Arc<EndpointState>>,
    ) {
        let Some((metrics, service)) = &self.telemetry else {
            return;
        };
        for (key, state) in old {
            if kept.contains_key(key) || kept.values().any(|k| k.id == state.id) {
                continue;
            }
            metrics.forget_instance(&self.cluster, service, &state.id);
        }
    }
}
