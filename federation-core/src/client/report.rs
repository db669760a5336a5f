//! What the client reports about itself (issue 4): the health snapshot and the metrics text.
//!
//! Gauges that describe *state* (breaker state per instance, discovered instances by health,
//! discovery staleness) and the discovery error counter are refreshed from the routing tables
//! at scrape time, so they are exact whenever Prometheus looks and cost nothing per call; events
//! (calls, attempts, retries, failovers, breaker transitions, cache events) are recorded when they
//! happen.

use std::collections::BTreeMap;
use std::time::UNIX_EPOCH;

use super::routing;
use super::state::{Inner, ServiceRoute};
use crate::breaker::BreakerState;
use crate::discovery::Health;
use crate::telemetry::{
    BreakerStateValue, ClusterHealth, HealthSnapshot, InstanceHealth, ServiceHealth,
};

/// The breaker state as telemetry exports it.
pub(crate) fn breaker_value(state: BreakerState) -> BreakerStateValue {
    match state {
        BreakerState::Closed => BreakerStateValue::Closed,
        BreakerState::HalfOpen => BreakerStateValue::HalfOpen,
        BreakerState::Open { .. } => BreakerStateValue::Open,
    }
}

fn health_label(health: Health) -> &'static str {
    match health {
        Health::Passing => "passing",
        Health::Warning => "warning",
        Health::Critical => "critical",
    }
}

fn services_in_order(inner: &Inner) -> Vec<&ServiceRoute> {
    let mut services: Vec<&ServiceRoute> = inner.services.values().map(|s| &**s).collect();
    services.sort_by(|a, b| a.name.cmp(&b.name));
    services
}

/// The Prometheus text exposition after refreshing the state gauges.
pub(crate) fn metrics_text(inner: &Inner) -> String {
    let metrics = &inner.metrics;
    for svc in services_in_order(inner) {
        for route in &svc.routes {
            let snapshot = route.current();
            for endpoint in &snapshot.endpoints {
                let state = breaker_value(endpoint.state.breaker.state());
                metrics.breaker_state(&route.cluster, &svc.name, &endpoint.id, state);
            }
        }
    }
    for cluster in &inner.clusters {
        let stats = cluster.discovery.stats();
        for (consul_name, s) in &stats.services {
            metrics.discovery_errors_to(&stats.cluster, consul_name, s.errors);
        }
    }
    // Discovered instances by health and staleness, per (cluster, consul service) once.
    let mut seen = BTreeMap::new();
    for svc in services_in_order(inner) {
        for route in &svc.routes {
            let key = (route.cluster.to_string(), route.consul_name.clone());
            if seen.contains_key(&key) {
                continue;
            }
            let snapshot = route.current();
            let mut counts = [0u64; 3];
            for instance in snapshot.source.instances.iter() {
                let i = match instance.health {
                    Health::Passing => 0,
                    Health::Warning => 1,
                    Health::Critical => 2,
                };
                counts[i] += 1;
            }
            seen.insert(key, (counts, snapshot.source.last_success_at));
        }
    }
    for ((cluster, consul_name), (counts, last)) in seen {
        for (i, health) in [Health::Passing, Health::Warning, Health::Critical]
            .iter()
            .enumerate()
        {
            metrics.discovery_instances(&cluster, &consul_name, health_label(*health), counts[i]);
        }
        if let Some(at) = last {
            let age = std::time::Instant::now().saturating_duration_since(at);
            metrics.discovery_staleness(&cluster, &consul_name, age.as_secs_f64());
        }
    }
    metrics.encode()
}

/// The health snapshot behind `client.health()`.
pub(crate) fn health(inner: &Inner) -> HealthSnapshot {
    let mut services = Vec::with_capacity(inner.services.len());
    for svc in services_in_order(inner) {
        let policy = svc.rank_policy(&inner.cluster_names);
        let selected = routing::rank(&policy, None, None).ok().and_then(|order| {
            order
                .first()
                .map(|r| svc.routes[r.route].cluster.to_string())
        });
        let clusters = svc.routes.iter().map(|route| {
            let snapshot = route.current();
            let mut h = route.health(&snapshot, None);
            h.score = route.score(&snapshot, None, &h);
            let instances: Vec<InstanceHealth> = snapshot
                .endpoints
                .iter()
                .map(|e| InstanceHealth {
                    id: e.id.to_string(),
                    address: e.instance().authority(),
                    health: e.instance().health,
                    breaker: breaker_value(e.state.breaker.state()),
                    in_flight: u64::from(e.state.stats.in_flight()),
                    ewma_ms: e.state.stats.ewma_latency().as_secs_f64() * 1000.0,
                })
                .collect();
            let ejected = instances
                .iter()
                .filter(|i| i.breaker == BreakerStateValue::Open)
                .count();
            let source = &snapshot.source;
            ClusterHealth {
                cluster: route.cluster.to_string(),
                consul_service: route.consul_name.clone(),
                discovered: source.instances.len(),
                available: h.available,
                ejected,
                instances,
                score: h.score,
                last_success: source
                    .last_success
                    .and_then(|t| t.duration_since(UNIX_EPOCH).ok().map(|d| d.as_secs_f64())),
                stale: source.stale,
                last_error: source.last_error.clone(),
            }
        });
        services.push(ServiceHealth {
            service: svc.name.to_string(),
            preferred: svc.preferred.map(|i| svc.routes[i].cluster.to_string()),
            selected,
            clusters: clusters.collect(),
            cache_l2: svc
                .cache
                .as_ref()
                .and_then(crate::cache::ResultCache::l2_health),
            cache_warm: svc
                .cache
                .as_ref()
                .and_then(crate::cache::ResultCache::warm_health),
            spill: svc
                .spill
                .as_ref()
                .zip(svc.preferred)
                .map(|(spill, preferred)| spill.explain(&svc.routes, preferred)),
        });
    }
    HealthSnapshot {
        services,
        config: crate::telemetry::ConfigGeneration::default(),
    }
}
