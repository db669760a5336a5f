//! Metrics of the shared L2 cache tier (`federation_cache_l2_*`), registered with every client's
//! other metrics and resolved once per service.
//!
//! A shared tier fails quietly: a stalled Redis looks like a slightly lower hit rate, a lost
//! subscription like nothing at all. These series make both visible: events by kind, operation
//! latency, invalidation propagation delay and time spent degraded.

use std::sync::Arc;
use std::sync::atomic::AtomicU64;

use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::metrics::histogram::Histogram;
use prometheus_client::registry::Registry;

use super::labels::{CacheLabels, Interner, ServiceLabels};

/// `{service, op}`: L2 operation latency.
#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub(crate) struct OpLabels {
    pub(crate) service: Arc<str>,
    pub(crate) op: Arc<str>,
}

type Seconds = Family<OpLabels, Histogram, fn() -> Histogram>;
type ServiceSeconds = Family<ServiceLabels, Histogram, fn() -> Histogram>;

fn latency_buckets() -> Histogram {
    // 50 µs to ~100 ms: a loopback GET is ~100 µs, the default timeout 5 ms.
    Histogram::new(prometheus_client::metrics::histogram::exponential_buckets(
        0.000_05, 2.0, 12,
    ))
}

/// The L2 families of one registry.
pub(crate) struct L2Families {
    events: Family<CacheLabels, Counter>,
    latency: Seconds,
    propagation: ServiceSeconds,
    degraded: Family<ServiceLabels, Gauge>,
    degraded_seconds: Family<ServiceLabels, Counter<f64, AtomicU64>>,
}

impl L2Families {
    pub(crate) fn register(registry: &mut Registry) -> Self {
        let f = Self {
            events: Family::default(),
            latency: Family::new_with_constructor(latency_buckets),
            propagation: Family::new_with_constructor(latency_buckets),
            degraded: Family::default(),
            degraded_seconds: Family::default(),
        };
        registry.register(
            "cache_l2_events",
            "Shared cache tier events: hit, miss, stored, error, timeout, oversized, lease_won, \
             lease_waited, invalidation_sent, invalidation_received, resync",
            f.events.clone(),
        );
        registry.register(
            "cache_l2_operation_seconds",
            "Latency of shared cache tier operations (get, set, lease), in seconds",
            f.latency.clone(),
        );
        registry.register(
            "cache_l2_propagation_seconds",
            "Delay from an invalidation being sent to this process receiving it, in seconds",
            f.propagation.clone(),
        );
        registry.register(
            "cache_l2_degraded",
            "1 while the shared cache tier is unreachable or its invalidations are not received",
            f.degraded.clone(),
        );
        registry.register(
            "cache_l2_degraded_seconds",
            "Time the shared cache tier spent degraded, in seconds",
            f.degraded_seconds.clone(),
        );
        f
    }
}

/// Event kinds of `federation_cache_l2_events_total`, in the order of [`L2Counters::events`].
pub(crate) const L2_EVENTS: [&str; 11] = [
    "hit",
    "miss",
    "stored",
    "error",
    "timeout",
    "oversized",
    "lease_won",
    "lease_waited",
    "invalidation_sent",
    "invalidation_received",
    "resync",
];

/// Pre-resolved L2 series of one service.
#[derive(Clone, Debug)]
pub struct L2Counters {
    /// One counter per entry of [`L2_EVENTS`].
    pub(crate) events: Vec<Counter>,
    pub(crate) get_seconds: Histogram,
    pub(crate) set_seconds: Histogram,
    pub(crate) lease_seconds: Histogram,
    pub(crate) propagation: Histogram,
    pub(crate) degraded: Gauge,
    pub(crate) degraded_seconds: Counter<f64, AtomicU64>,
}

impl L2Counters {
    /// Counts one event of kind `event` (one of [`L2_EVENTS`]).
    pub(crate) fn event(&self, event: &str) {
        if let Some(i) = L2_EVENTS.iter().position(|e| *e == event)
            && let Some(c) = self.events.get(i)
        {
            c.inc();
        }
    }
}

impl L2Families {
    /// The series of `service` (label values interned by `interner`).
    pub(crate) fn counters(&self, service: Arc<str>, interner: &Interner) -> L2Counters {
        let op = |op: &str| {
            self.latency
                .get_or_create(&OpLabels {
                    service: Arc::clone(&service),
                    op: interner.get(op),
                })
                .clone()
        };
        let labels = ServiceLabels {
            service: Arc::clone(&service),
        };
        let events = L2_EVENTS
            .iter()
            .map(|event| {
                self.events
                    .get_or_create(&CacheLabels {
                        service: Arc::clone(&service),
                        event: interner.get(event),
                    })
                    .clone()
            })
            .collect();
        L2Counters {
            events,
            get_seconds: op("get"),
            set_seconds: op("set"),
            lease_seconds: op("lease"),
            propagation: self.propagation.get_or_create(&labels).clone(),
            degraded: self.degraded.get_or_create(&labels).clone(),
            degraded_seconds: self.degraded_seconds.get_or_create(&labels).clone(),
        }
    }
}
