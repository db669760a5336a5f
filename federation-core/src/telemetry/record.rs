//! Recording methods of [`Metrics`]: one per event the pipeline, breakers and discovery report.

use std::sync::Arc;
use std::time::Duration;

use super::labels::{
    CacheLabels, CallLabels, DiscoveryLabels, FailoverLabels, HealthLabels, InstanceLabels,
    ServiceLabels, TransitionLabels,
};
use super::metrics::{CallHandles, Metrics};

/// The `cluster` label of calls no cluster served (cache hits, calls refused before routing).
pub const NO_CLUSTER: &str = "none";

/// Breaker state as exported by `federation_breaker_state` (0, 1, 2) and
/// `federation_breaker_transitions_total{to_state}`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, serde::Serialize)]
#[serde(rename_all = "snake_case")]
pub enum BreakerStateValue {
    /// Calls flow (gauge 0).
    Closed,
    /// Probing after an open period (gauge 1).
    HalfOpen,
    /// Calls refused; the instance is ejected (gauge 2).
    Open,
}

impl BreakerStateValue {
    /// `closed`, `half_open` or `open`.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Closed => "closed",
            Self::HalfOpen => "half_open",
            Self::Open => "open",
        }
    }

    /// The gauge value: 0 closed, 1 half-open, 2 open.
    pub fn gauge(self) -> i64 {
        match self {
            Self::Closed => 0,
            Self::HalfOpen => 1,
            Self::Open => 2,
        }
    }
}

impl Metrics {
    fn label(&self, value: &str) -> Arc<str> {
        self.inner.interner.get(value)
    }

    /// The (counter, histogram) handles of one `{service, cluster, outcome}` of calls
    /// (`attempt == false`) or attempts, for callers that keep them to skip the lookup.
    pub(crate) fn call_handles(
        &self,
        service: &str,
        cluster: &str,
        outcome: &str,
        attempt: bool,
    ) -> CallHandles {
        let (cache, family) = if attempt {
            (&self.inner.attempt_handles, &self.inner.attempts)
        } else {
            (&self.inner.request_handles, &self.inner.requests)
        };
        cache.get(service, cluster, outcome, || {
            let labels = CallLabels {
                service: self.label(service),
                cluster: self.label(cluster),
                outcome: self.label(outcome),
            };
            CallHandles {
                cell: family.get_or_create(&labels),
            }
        })
    }

    /// A finished call: `federation_requests_total` and `federation_request_duration_seconds`.
    /// `cluster` is `None` when no cluster served it (recorded as `none`); `outcome` is `success`
    /// for any response (see docs/metrics.md) or the error kind.
    pub fn call(&self, service: &str, cluster: Option<&str>, outcome: &str, duration: Duration) {
        self.call_handles(service, cluster.unwrap_or(NO_CLUSTER), outcome, false)
            .record(duration);
    }

    /// One upstream attempt: `federation_attempts_total` and
    /// `federation_attempt_duration_seconds`.
    pub fn attempt(&self, service: &str, cluster: &str, outcome: &str, duration: Duration) {
        self.call_handles(service, cluster, outcome, true)
            .record(duration);
    }

    /// An attempt after the first: `federation_retries_total`.
    pub fn retry(&self, service: &str) {
        let labels = ServiceLabels {
            service: self.label(service),
        };
        self.inner.retries.get_or_create(&labels).inc();
    }

    /// A call moved from cluster `from` to cluster `to`: `federation_failovers_total`.
    pub fn failover(&self, service: &str, from: &str, to: &str) {
        let labels = FailoverLabels {
            service: self.label(service),
            from: self.label(from),
            to: self.label(to),
        };
        self.inner.failovers.get_or_create(&labels).inc();
    }

    /// A hedge sent: `federation_hedges_total`.
    pub fn hedge_sent(&self, service: &str) {
        let labels = ServiceLabels {
            service: self.label(service),
        };
        self.inner.hedges.get_or_create(&labels).inc();
    }

    /// A call answered by a hedge: `federation_hedges_won_total`.
    pub fn hedge_won(&self, service: &str) {
        let labels = ServiceLabels {
            service: self.label(service),
        };
        self.inner.hedges_won.get_or_create(&labels).inc();
    }

    /// A call assigned to split arm `arm`: `federation_split_calls_total`.
    pub fn split_call(&self, service: &str, arm: &str) {
        let labels = super::labels::ArmLabels {
            service: self.label(service),
            arm: self.label(arm),
        };
        self.inner.split_calls.get_or_create(&labels).inc();
    }

    /// A call whose arm `arm` could not serve (`reason`: `empty` or `ejected`):
    /// `federation_split_fallbacks_total`.
    pub fn split_fallback(&self, service: &str, arm: &str, reason: &str) {
        let labels = super::labels::FallbackLabels {
            service: self.label(service),
            arm: self.label(arm),
            reason: self.label(reason),
        };
        self.inner.split_fallbacks.get_or_create(&labels).inc();
    }

    /// A retry or failover refused by the budget: `federation_retry_budget_rejections_total`.
    pub fn budget_rejected(&self, service: &str) {
        let labels = ServiceLabels {
            service: self.label(service),
        };
        self.inner.budget_rejections.get_or_create(&labels).inc();
    }

    fn instance_labels(&self, cluster: &str, service: &str, instance: &str) -> InstanceLabels {
        InstanceLabels {
            cluster: self.label(cluster),
            service: self.label(service),
            instance: self.label(instance),
        }
    }

    /// The current breaker state of an instance: `federation_breaker_state`.
    pub fn breaker_state(
        &self,
        cluster: &str,
        service: &str,
        instance: &str,
        state: BreakerStateValue,
    ) {
        let labels = self.instance_labels(cluster, service, instance);
        self.inner
            .breaker_state
            .get_or_create(&labels)
            .set(state.gauge());
    }

    /// A breaker entered `to_state`: `federation_breaker_transitions_total` (also sets the gauge).
    pub fn breaker_transition(
        &self,
        cluster: &str,
        service: &str,
        instance: &str,
        to_state: BreakerStateValue,
    ) {
        let labels = TransitionLabels {
            cluster: self.label(cluster),
            service: self.label(service),
            instance: self.label(instance),
            to_state: self.label(to_state.as_str()),
        };
        self.inner.breaker_transitions.get_or_create(&labels).inc();
        self.breaker_state(cluster, service, instance, to_state);
    }

    /// An instance was ejected: `federation_ejections_total`.
    pub fn ejection(&self, cluster: &str, service: &str, instance: &str) {
        let labels = self.instance_labels(cluster, service, instance);
        self.inner.ejections.get_or_create(&labels).inc();
    }

    /// Removes the per-instance series of an instance that left discovery, so the exposition does
    /// not grow without bound as instances come and go.
    pub fn forget_instance(&self, cluster: &str, service: &str, instance: &str) {
        let labels = self.instance_labels(cluster, service, instance);
        self.inner.breaker_state.remove(&labels);
        self.inner.ejections.remove(&labels);
        for state in [
            BreakerStateValue::Closed,
            BreakerStateValue::HalfOpen,
            BreakerStateValue::Open,
        ] {
            self.inner.breaker_transitions.remove(&TransitionLabels {
                cluster: Arc::clone(&labels.cluster),
                service: Arc::clone(&labels.service),
                instance: Arc::clone(&labels.instance),
                to_state: self.label(state.as_str()),
            });
        }
    }

    /// A cache event (`hit`, `miss`, `stale`, `eviction`): `federation_cache_events_total`.
    /// [`ResultCache::with_metrics`](crate::cache::ResultCache::with_metrics) records these
    /// itself through pre-resolved handles; use this only for caches built without it.
    pub fn cache(&self, service: &str, event: &str) {
        let labels = CacheLabels {
            service: self.label(service),
            event: self.label(event),
        };
        self.inner.cache_events.get_or_create(&labels).inc();
    }

    /// Instances discovery currently knows with this registry health (`passing`, `warning`,
    /// `critical`): `federation_discovery_instances`.
    pub fn discovery_instances(&self, cluster: &str, service: &str, health: &str, n: u64) {
        let labels = HealthLabels {
            cluster: self.label(cluster),
            service: self.label(service),
            health: self.label(health),
        };
        let n = i64::try_from(n).unwrap_or(i64::MAX);
        self.inner.discovery_instances.get_or_create(&labels).set(n);
    }

    /// A failed discovery request: `federation_discovery_errors_total`.
    pub fn discovery_error(&self, cluster: &str, service: &str) {
        let labels = DiscoveryLabels {
            cluster: self.label(cluster),
            service: self.label(service),
        };
        self.inner.discovery_errors.get_or_create(&labels).inc();
    }

    /// Raises `federation_discovery_errors_total` to `total` (a refresh from discovery's own
    /// running count; never lowers it).
    pub fn discovery_errors_to(&self, cluster: &str, service: &str, total: u64) {
        let labels = DiscoveryLabels {
            cluster: self.label(cluster),
            service: self.label(service),
        };
        let counter = self.inner.discovery_errors.get_or_create(&labels);
        let now = counter.get();
        if total > now {
            counter.inc_by(total - now);
        }
    }

    /// Seconds since discovery last succeeded: `federation_discovery_staleness_seconds`.
    pub fn discovery_staleness(&self, cluster: &str, service: &str, age_seconds: f64) {
        let labels = DiscoveryLabels {
            cluster: self.label(cluster),
            service: self.label(service),
        };
        self.inner
            .discovery_staleness
            .get_or_create(&labels)
            .set(age_seconds);
    }
}
