//! [`Metrics`]: the Prometheus metrics of one client, in its own registry.
//!
//! Two clients in one process must not share or clash over series, so each `Metrics` owns a
//! `prometheus_client` registry rather than using a global one. Names and labels are stable and
//! listed in `docs/metrics.md`. Recording is cheap: label values are interned, the per-call
//! families (requests, attempts) are lock-free cells (see `calls.rs`) whose handles are cached
//! and looked up by `&str` under one read lock, and the cache hit path uses pre-resolved
//! [`CacheCounters`].

use std::collections::HashMap;
use std::fmt;
use std::sync::atomic::AtomicU64;
use std::sync::{Arc, RwLock};

use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::registry::Registry;

use super::calls::{CallCell, CallFamily};

use super::labels::{
    ArmLabels, CacheLabels, DiscoveryLabels, FailoverLabels, FallbackLabels, HealthLabels,
    InstanceLabels, Interner, ServiceLabels, TransitionLabels,
};

/// The metrics of one client. Cheap to clone (shared registry).
#[derive(Clone)]
pub struct Metrics {
    pub(crate) inner: Arc<Inner>,
}

pub(crate) struct Inner {
    pub(crate) registry: Registry,
    pub(crate) interner: Interner,
    /// `federation_requests_total` and `federation_request_duration_seconds`.
    pub(crate) requests: CallFamily,
    /// `federation_attempts_total` and `federation_attempt_duration_seconds`.
    pub(crate) attempts: CallFamily,
    pub(crate) retries: Family<ServiceLabels, Counter>,
    pub(crate) failovers: Family<FailoverLabels, Counter>,
    pub(crate) budget_rejections: Family<ServiceLabels, Counter>,
    pub(crate) hedges: Family<ServiceLabels, Counter>,
    pub(crate) hedges_won: Family<ServiceLabels, Counter>,
    pub(crate) split_calls: Family<ArmLabels, Counter>,
    pub(crate) split_fallbacks: Family<FallbackLabels, Counter>,
    pub(crate) breaker_state: Family<InstanceLabels, Gauge>,
    pub(crate) breaker_transitions: Family<TransitionLabels, Counter>,
    pub(crate) ejections: Family<InstanceLabels, Counter>,
    pub(crate) cache_events: Family<CacheLabels, Counter>,
    pub(crate) discovery_instances: Family<HealthLabels, Gauge>,
    pub(crate) discovery_errors: Family<DiscoveryLabels, Counter>,
    pub(crate) discovery_staleness: Family<DiscoveryLabels, Gauge<f64, AtomicU64>>,
    pub(crate) request_handles: HandleCache,
    pub(crate) attempt_handles: HandleCache,
    /// `federation_cache_l2_*` (the shared cache tier).
    pub(crate) l2: super::cache_l2::L2Families,
}

/// Pre-resolved `federation_cache_events_total` counters of one service, for the cache hit path.
#[derive(Clone, Debug)]
pub struct CacheCounters {
    pub(crate) hit: Counter,
    pub(crate) miss: Counter,
    pub(crate) stale: Counter,
    pub(crate) eviction: Counter,
}

/// The counter and duration histogram of one `{service, cluster, outcome}` (one lock-free cell).
#[derive(Clone)]
pub(crate) struct CallHandles {
    pub(crate) cell: Arc<CallCell>,
}

type Nested<H> = HashMap<Box<str>, HashMap<Box<str>, HashMap<Box<str>, H>>>;

/// `(service, cluster, outcome) → handles`, looked up by `&str` without allocating.
#[derive(Default)]
pub(crate) struct HandleCache {
    map: RwLock<Nested<CallHandles>>,
}

impl CallHandles {
    /// Counts one event and observes its duration.
    #[inline]
    pub(crate) fn record(&self, duration: std::time::Duration) {
        self.cell.record(duration);
    }
}

impl HandleCache {
    pub(crate) fn get(
        &self,
        service: &str,
        cluster: &str,
        outcome: &str,
        make: impl FnOnce() -> CallHandles,
    ) -> CallHandles {
        let found = crate::lock::read(&self.map)
            .get(service)
            .and_then(|m| m.get(cluster))
            .and_then(|m| m.get(outcome))
            .cloned();
        if let Some(handles) = found {
            return handles;
        }
        let mut map = crate::lock::write(&self.map);
        map.entry(service.into())
            .or_default()
            .entry(cluster.into())
            .or_default()
            .entry(outcome.into())
            .or_insert_with(make)
            .clone()
    }
}

impl Default for Metrics {
    fn default() -> Self {
        Self::new()
    }
}

impl fmt::Debug for Metrics {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Metrics").finish_non_exhaustive()
    }
}

/// A fresh metric of type `M` registered under `name` (after the `federation_` prefix).
fn registered<M>(registry: &mut Registry, name: &str, help: &str) -> M
where
    M: prometheus_client::registry::Metric + Clone + Default,
{
    let metric = M::default();
    registry.register(name, help, metric.clone());
    metric
}

impl Metrics {
    /// Fresh metrics with their own registry; every series starts absent.
    pub fn new() -> Self {
        let mut registry = Registry::with_prefix("federation");
        let requests = CallFamily::default();
        let attempts = CallFamily::default();

        registry.register(
            "requests",
            "Calls finished, by service, serving cluster (`none` for cache hits) and outcome",
            requests.counter_view(),
        );
        registry.register(
            "request_duration_seconds",
            "Call duration including retries and failover, in seconds",
            requests.histogram_view(),
        );
        registry.register(
            "attempts",
            "Upstream attempts, by service, cluster and outcome",
            attempts.counter_view(),
        );
        registry.register(
            "attempt_duration_seconds",
            "Duration of one upstream attempt, in seconds",
            attempts.histogram_view(),
        );
        let retries: Family<ServiceLabels, Counter> =
            registered(&mut registry, "retries", "Attempts after the first one");
        let failovers: Family<FailoverLabels, Counter> = registered(
            &mut registry,
            "failovers",
            "Moves of a call from one cluster to another",
        );
        let budget_rejections: Family<ServiceLabels, Counter> = registered(
            &mut registry,
            "retry_budget_rejections",
            "Retries or failovers refused because the retry budget was exhausted",
        );
        let hedges: Family<ServiceLabels, Counter> = registered(
            &mut registry,
            "hedges",
            "Hedges sent: backup requests while an earlier attempt was unanswered",
        );
        let hedges_won: Family<ServiceLabels, Counter> = registered(
            &mut registry,
            "hedges_won",
            "Calls answered by a hedge rather than by the attempt it backed up",
        );
        let split_calls: Family<ArmLabels, Counter> = registered(
            &mut registry,
            "split_calls",
            "Calls assigned to a split arm (by stickiness or at random)",
        );
        let split_fallbacks: Family<FallbackLabels, Counter> = registered(
            &mut registry,
            "split_fallbacks",
            "Calls whose split arm was empty or fully ejected and went to another arm",
        );
        let breaker_state: Family<InstanceLabels, Gauge> = registered(
            &mut registry,
            "breaker_state",
            "Circuit breaker state per instance: 0 closed, 1 half-open, 2 open",
        );
        let breaker_transitions: Family<TransitionLabels, Counter> = registered(
            &mut registry,
            "breaker_transitions",
            "Circuit breaker state changes, by the state entered",
        );
        let ejections: Family<InstanceLabels, Counter> = registered(
            &mut registry,
            "ejections",
            "Instances taken out of rotation by outlier detection or an opened breaker",
        );
        let cache_events: Family<CacheLabels, Counter> = registered(
            &mut registry,
            "cache_events",
            "Result cache events: hit, miss, stale, eviction",
        );
        let discovery_instances: Family<HealthLabels, Gauge> = registered(
            &mut registry,
            "discovery_instances",
            "Instances known from discovery, by registry health",
        );
        let discovery_errors: Family<DiscoveryLabels, Counter> = registered(
            &mut registry,
            "discovery_errors",
            "Failed discovery requests",
        );
        let discovery_staleness: Family<DiscoveryLabels, Gauge<f64, AtomicU64>> = registered(
            &mut registry,
            "discovery_staleness_seconds",
            "Seconds since the last successful discovery update",
        );

        let l2 = super::cache_l2::L2Families::register(&mut registry);
        Self {
            inner: Arc::new(Inner {
                l2,
                registry,
                interner: Interner::default(),
                requests,
                attempts,
                retries,
                failovers,
                budget_rejections,
                hedges,
                hedges_won,
                split_calls,
                split_fallbacks,
                breaker_state,
                breaker_transitions,
                ejections,
                cache_events,
                discovery_instances,
                discovery_errors,
                discovery_staleness,
                request_handles: HandleCache::default(),
                attempt_handles: HandleCache::default(),
            }),
        }
    }

    /// The Prometheus text exposition (OpenMetrics text format, ending in `# EOF`).
    pub fn encode(&self) -> String {
        let mut out = String::new();
        // Writing to a String cannot fail; a failing encoder would only truncate the output.
        if prometheus_client::encoding::text::encode(&mut out, &self.inner.registry).is_err() {
            out.push_str("# encoding failed\n");
        }
        out
    }

    /// The `federation_cache_l2_*` series of `service` (the shared cache tier), resolved once.
    pub fn cache_l2_counters(&self, service: &str) -> super::L2Counters {
        let service = self.inner.interner.get(service);
        self.inner.l2.counters(service, &self.inner.interner)
    }

    /// Handles of `federation_cache_events_total` for `service`, resolved once.
    pub fn cache_counters(&self, service: &str) -> CacheCounters {
        let service = self.inner.interner.get(service);
        let counter = |event: &str| {
            self.inner
                .cache_events
                .get_or_create(&CacheLabels {
                    service: Arc::clone(&service),
                    event: self.inner.interner.get(event),
                })
                .clone()
        };
        CacheCounters {
            hit: counter("hit"),
            miss: counter("miss"),
            stale: counter("stale"),
            eviction: counter("eviction"),
        }
    }
}
