//! The sync's Prometheus metrics (names listed in docs/sync.md), one registry per runtime.
//!
//! A sync that silently falls behind or dead-letters looks healthy until someone notices two
//! records disagree. These metrics make that visible: end-to-end latency, consumer lag, what each
//! event did, conflicts by policy and dead letters by reason.

use std::sync::Arc;
use std::sync::atomic::AtomicI64;
use std::time::Duration;

use prometheus_client::encoding::text::encode;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::metrics::histogram::Histogram;
use prometheus_client::registry::Registry;

type Labels = Vec<(&'static str, String)>;

/// The sync runtime's metrics. Cheap to clone.
#[derive(Clone)]
pub struct SyncMetrics {
    registry: Arc<Registry>,
    published: Family<Labels, Counter>,
    events: Family<Labels, Counter>,
    conflicts: Family<Labels, Counter>,
    dead_letters: Family<Labels, Counter>,
    latency: Family<Labels, Histogram>,
    lag: Family<Labels, Gauge<i64, AtomicI64>>,
}

impl std::fmt::Debug for SyncMetrics {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("SyncMetrics")
    }
}

impl Default for SyncMetrics {
    fn default() -> Self {
        Self::new()
    }
}

fn latency_histogram() -> Histogram {
    // 1 ms to ~33 s.
    Histogram::new(prometheus_client::metrics::histogram::exponential_buckets(
        0.001, 2.0, 16,
    ))
}

impl SyncMetrics {
    /// A fresh set of metrics in its own registry.
    pub fn new() -> Self {
        let mut registry = Registry::with_prefix("federation_sync");
        let published = Family::<Labels, Counter>::default();
        let events = Family::<Labels, Counter>::default();
        let conflicts = Family::<Labels, Counter>::default();
        let dead_letters = Family::<Labels, Counter>::default();
        let latency = Family::<Labels, Histogram>::new_with_constructor(
            latency_histogram as fn() -> Histogram,
        );
        let lag = Family::<Labels, Gauge<i64, AtomicI64>>::default();
        registry.register(
            "published",
            "Changes published and acknowledged by the broker",
            published.clone(),
        );
        registry.register("events", "Received change events by what they did (applied, merged, superseded, duplicate, too_old)", events.clone());
        registry.register(
            "conflicts",
            "Conflicts detected, by entity type and policy",
            conflicts.clone(),
        );
        registry.register(
            "dead_letters",
            "Events sent to the dead-letter topic, by reason",
            dead_letters.clone(),
        );
        registry.register(
            "latency_seconds",
            "End-to-end sync latency: publish at the origin to applied here",
            latency.clone(),
        );
        registry.register(
            "consumer_lag",
            "Messages not yet consumed, per origin cluster",
            lag.clone(),
        );
        Self {
            registry: Arc::new(registry),
            published,
            events,
            conflicts,
            dead_letters,
            latency,
            lag,
        }
    }

    /// A change of `entity_type` was published.
    pub fn published(&self, entity_type: &str) {
        self.published
            .get_or_create(&vec![("entity_type", entity_type.to_string())])
            .inc();
    }

    /// A received event from `origin` had `effect`.
    pub fn event(&self, origin: &str, entity_type: &str, effect: &str) {
        self.events
            .get_or_create(&vec![
                ("origin", origin.to_string()),
                ("entity_type", entity_type.to_string()),
                ("effect", effect.to_string()),
            ])
            .inc();
    }

    /// A conflict on `entity_type` resolved by `policy`.
    pub fn conflict(&self, entity_type: &str, policy: &str) {
        self.conflicts
            .get_or_create(&vec![
                ("entity_type", entity_type.to_string()),
                ("policy", policy.to_string()),
            ])
            .inc();
    }

    /// An event dead-lettered for `reason`.
    pub fn dead_letter(&self, reason: &str) {
        self.dead_letters
            .get_or_create(&vec![("reason", reason.to_string())])
            .inc();
    }

    /// End-to-end latency of an event from `origin`.
    pub fn latency(&self, origin: &str, latency: Duration) {
        self.latency
            .get_or_create(&vec![("origin", origin.to_string())])
            .observe(latency.as_secs_f64());
    }

    /// Consumer lag of the changes from `origin`.
    pub fn lag(&self, origin: &str, messages: i64) {
        self.lag
            .get_or_create(&vec![("origin", origin.to_string())])
            .set(messages);
    }

    /// The Prometheus text exposition.
    pub fn encode(&self) -> String {
        let mut out = String::new();
        // Writing into a String cannot fail.
        let _ = encode(&mut out, &self.registry);
        out
    }
}
