//! The sync's Prometheus metrics (names listed in docs/sync.md), one registry per runtime.
//!
//! A sync that silently falls behind or dead-letters looks healthy until someone notices two
//! records disagree. These metrics make that visible: end-to-end latency, consumer lag, what each
//! event did, conflicts by policy and dead letters by reason.

use std::collections::HashMap;
use std::sync::atomic::AtomicI64;
use std::sync::{Arc, PoisonError, RwLock};
use std::time::Duration;

use prometheus_client::encoding::text::encode;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::{Family, MetricConstructor};
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::metrics::histogram::Histogram;
use prometheus_client::registry::Registry;

type Labels = Vec<(&'static str, String)>;

/// Metric handles resolved once per label value, so the per-event path builds no label vector
/// and allocates nothing: a shared lock and a map lookup by `&str`. A handle shares its value
/// with the family's, which the registry encodes.
struct Resolved<K> {
    cache: RwLock<HashMap<String, K>>,
}

impl<K: Clone> Resolved<K> {
    fn new() -> Self {
        Self {
            cache: RwLock::new(HashMap::new()),
        }
    }

    /// The handle for `key`, made by `make` the first time.
    fn get(&self, key: &str, make: impl FnOnce() -> K) -> K {
        let cached = self
            .cache
            .read()
            .unwrap_or_else(PoisonError::into_inner)
            .get(key)
            .cloned();
        cached.unwrap_or_else(|| {
            let mut cache = self.cache.write().unwrap_or_else(PoisonError::into_inner);
            cache.entry(key.to_owned()).or_insert_with(make).clone()
        })
    }
}

/// The family's metric for `labels`, as a handle that shares its value.
fn handle<M: Clone, C: MetricConstructor<M>>(family: &Family<Labels, M, C>, labels: Labels) -> M {
    family.get_or_create(&labels).clone()
}

/// The per-event handles: `published` by entity type; `events` by origin, entity type, then
/// effect name; `latency_seconds` by origin.
struct Handles {
    published: Resolved<Counter>,
    events: Resolved<Arc<Resolved<Arc<Resolved<Counter>>>>>,
    latency: Resolved<Histogram>,
}

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
    handles: Arc<Handles>,
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
            handles: Arc::new(Handles {
                published: Resolved::new(),
                events: Resolved::new(),
                latency: Resolved::new(),
            }),
        }
    }

    /// A change of `entity_type` was published.
    pub fn published(&self, entity_type: &str) {
        self.handles
            .published
            .get(entity_type, || {
                handle(
                    &self.published,
                    vec![("entity_type", entity_type.to_string())],
                )
            })
            .inc();
    }

    /// A received event from `origin` had `effect`.
    pub fn event(&self, origin: &str, entity_type: &str, effect: &str) {
        let by_type = self
            .handles
            .events
            .get(origin, || Arc::new(Resolved::new()));
        let by_effect = by_type.get(entity_type, || Arc::new(Resolved::new()));
        by_effect
            .get(effect, || {
                handle(
                    &self.events,
                    vec![
                        ("origin", origin.to_string()),
                        ("entity_type", entity_type.to_string()),
                        ("effect", effect.to_string()),
                    ],
                )
            })
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
        self.handles
            .latency
            .get(origin, || {
                handle(&self.latency, vec![("origin", origin.to_string())])
            })
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn resolved_handles_count_into_the_encoded_families_per_label_set() {
        let metrics = SyncMetrics::new();
        for _ in 0..3 {
            metrics.event("zervigo", "user", "applied");
        }
        metrics.event("zervigo", "user", "duplicate");
        metrics.event("looma", "user", "applied");
        metrics.published("user");
        metrics.published("user");
        metrics.latency("zervigo", Duration::from_millis(3));
        let text = metrics.encode();
        for line in [
            r#"federation_sync_events_total{origin="zervigo",entity_type="user",effect="applied"} 3"#,
            r#"federation_sync_events_total{origin="zervigo",entity_type="user",effect="duplicate"} 1"#,
            r#"federation_sync_events_total{origin="looma",entity_type="user",effect="applied"} 1"#,
            r#"federation_sync_published_total{entity_type="user"} 2"#,
            r#"federation_sync_latency_seconds_count{origin="zervigo"} 1"#,
        ] {
            assert!(text.contains(line), "missing {line} in\n{text}");
        }
    }
}
