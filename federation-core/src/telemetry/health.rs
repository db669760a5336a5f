//! The health snapshot: what `client.health()` returns, serializable to JSON for the CLI and the
//! bindings.
//!
//! Operators debugging "why did traffic move to looma?" need one view of every logical service in
//! every cluster: what discovery found, what the client can route to, which breakers are open,
//! each cluster's score and whether discovery is current. The client fills these types from its
//! routing tables; they carry no behaviour.

use serde::Serialize;

use super::record::BreakerStateValue;
use crate::discovery::Health;

/// Every logical service's health, in configuration order.
#[derive(Clone, Debug, Default, PartialEq, Serialize)]
pub struct HealthSnapshot {
    /// One entry per logical service.
    pub services: Vec<ServiceHealth>,
    /// The configuration generation the client runs (changes with every accepted reload).
    pub config: ConfigGeneration,
}

/// Which configuration a client runs: counted from 1 (the one it was built with), with when and
/// from where it was loaded and what it changed. A rejected reload leaves it as it was and is
/// reported in `last_rejected`.
#[derive(Clone, Debug, Default, PartialEq, Serialize)]
pub struct ConfigGeneration {
    /// 1 for the configuration the client was built with, +1 per accepted reload.
    pub generation: u64,
    /// When it was loaded, in seconds since the Unix epoch.
    pub loaded_at: f64,
    /// Where it came from: `build`, `reload`, or `file <path>` for the file watch.
    pub source: String,
    /// What it changed compared with the previous generation (`services.user: changed`,
    /// `clusters.looma: added`, ...); empty for the first one.
    pub changes: Vec<String>,
    /// The last reload that was rejected since this generation was loaded, with its errors.
    pub last_rejected: Option<String>,
}

impl HealthSnapshot {
    /// The snapshot as pretty-printed JSON.
    pub fn to_json_pretty(&self) -> String {
        // Serializing plain data with string keys cannot fail; keep the output well-formed anyway.
        serde_json::to_string_pretty(self).unwrap_or_else(|e| format!("{{\"error\":\"{e}\"}}"))
    }

    /// The entry of logical service `name`.
    pub fn service(&self, name: &str) -> Option<&ServiceHealth> {
        self.services.iter().find(|s| s.service == name)
    }
}

/// One logical service across clusters.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct ServiceHealth {
    /// Logical service name.
    pub service: String,
    /// Configured preferred cluster, if any.
    pub preferred: Option<String>,
    /// Cluster the next call would try first (after affinity, scores and hysteresis).
    pub selected: Option<String>,
    /// One entry per cluster the service is mapped to, in declaration order.
    pub clusters: Vec<ClusterHealth>,
    /// The shared cache tier (`cache.l2`), when configured.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub cache_l2: Option<L2Health>,
    /// The cache warm-up (`cache.warm` or `warm()`), once one started.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub cache_warm: Option<WarmHealth>,
    /// Load-aware spill (`spill` policy) of a service with a preferred cluster.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub spill: Option<SpillHealth>,
}

/// Load-aware spill of one service: which share of calls leaves the preferred cluster and why.
#[derive(Clone, Debug, Default, PartialEq, Serialize)]
pub struct SpillHealth {
    /// The preferred cluster.
    pub from: String,
    /// The least loaded other cluster with a reading, if any.
    pub to: Option<String>,
    /// Share of calls that go to `to` first (0 while not spilling; `max_share` while spilling).
    pub share: f64,
    /// The preferred cluster's load over `to`'s, when both are known.
    pub ratio: Option<f64>,
    /// Why, in words: the loads, the ratio and the thresholds.
    pub reason: String,
}

/// Warm-up of one service's cache: paths fetched into it ahead of traffic.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize)]
pub struct WarmHealth {
    /// Paths asked for, in every warm-up so far.
    pub planned: u64,
    /// Paths fetched with a 2xx answer.
    pub fetched: u64,
    /// Paths whose fetch failed or answered non-2xx.
    pub failed: u64,
    /// Fetches running now.
    pub in_flight: u64,
}

impl ServiceHealth {
    /// The entry of cluster `name`.
    pub fn cluster(&self, name: &str) -> Option<&ClusterHealth> {
        self.clusters.iter().find(|c| c.cluster == name)
    }
}

/// One logical service in one cluster.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct ClusterHealth {
    /// Cluster name.
    pub cluster: String,
    /// The service's registry name in this cluster.
    pub consul_service: String,
    /// Instances discovery returned (any health).
    pub discovered: usize,
    /// Instances the balancer may pick now (registry-healthy, breaker not open, not ejected).
    pub available: usize,
    /// Instances currently ejected (breaker open).
    pub ejected: usize,
    /// Per-instance detail.
    pub instances: Vec<InstanceHealth>,
    /// Health score used to rank clusters (0.0 worst – 1.0 best).
    pub score: f64,
    /// Seconds since the Unix epoch of the last successful discovery update, if any.
    pub last_success: Option<f64>,
    /// True when discovery is failing and the instance set is the last known one.
    pub stale: bool,
    /// The last discovery error, if the last update failed.
    pub last_error: Option<String>,
}

/// One instance as the client sees it.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct InstanceHealth {
    /// Instance key (`node/id` or `id`).
    pub id: String,
    /// `host:port`.
    pub address: String,
    /// Registry health.
    pub health: Health,
    /// Breaker state.
    pub breaker: BreakerStateValue,
    /// Requests in flight from this client.
    pub in_flight: u64,
    /// Peak-EWMA latency estimate in milliseconds (0 before the first response).
    pub ewma_ms: f64,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn serializes_to_json() {
        let snapshot = HealthSnapshot {
            config: ConfigGeneration::default(),
            services: vec![ServiceHealth {
                service: "user".into(),
                preferred: Some("zervigo".into()),
                selected: Some("zervigo".into()),
                spill: None,
                clusters: vec![ClusterHealth {
                    cluster: "zervigo".into(),
                    consul_service: "user-service".into(),
                    discovered: 2,
                    available: 1,
                    ejected: 1,
                    instances: vec![InstanceHealth {
                        id: "u1".into(),
                        address: "127.0.0.1:8081".into(),
                        health: Health::Passing,
                        breaker: BreakerStateValue::Open,
                        in_flight: 0,
                        ewma_ms: 1.5,
                    }],
                    score: 0.5,
                    last_success: Some(1.0),
                    stale: false,
                    last_error: None,
                }],
                cache_l2: None,
                cache_warm: None,
            }],
        };
        let json: serde_json::Value =
            serde_json::from_str(&snapshot.to_json_pretty()).expect("valid JSON");
        let instance = &json["services"][0]["clusters"][0]["instances"][0];
        assert_eq!(instance["breaker"], "open");
        assert_eq!(instance["health"], "passing");
        assert_eq!(json["services"][0]["clusters"][0]["ejected"], 1);
        assert_eq!(
            snapshot
                .service("user")
                .and_then(|s| s.cluster("zervigo"))
                .map(|c| c.available),
            Some(1)
        );
    }
}

/// The L2 tier of one service as `client.health()` reports it (no address secrets).
#[derive(Clone, Debug, Default, PartialEq, Serialize)]
pub struct L2Health {
    /// `redis 127.0.0.1:6379`, `cluster [seeds]` or `unix <path>`.
    pub target: String,
    /// A connection to Redis is established.
    pub connected: bool,
    /// The invalidation subscription is active (other processes' invalidations arrive).
    pub subscribed: bool,
    /// Calls are served from L1 and upstream only (Redis unreachable, slow or unsubscribed).
    pub degraded: bool,
    /// Seconds spent degraded since the client started.
    pub degraded_seconds: f64,
    /// Values found in Redis.
    pub hits: u64,
    /// Lookups that found nothing usable.
    pub misses: u64,
    /// Values written to Redis (shared with the fleet from then on).
    pub stored: u64,
    /// Operations that failed (connection refused, reset, Redis error).
    pub errors: u64,
    /// Operations abandoned after the configured timeout.
    pub timeouts: u64,
    /// Values kept in L1 only because they exceed `max_value_bytes`.
    pub oversized: u64,
    /// Fleet-wide leases this process won (it fetched for the fleet).
    pub leases_won: u64,
    /// Misses that waited for another process's fetch.
    pub leases_waited: u64,
    /// Invalidations this process sent.
    pub invalidations_sent: u64,
    /// Invalidations received from other processes.
    pub invalidations_received: u64,
    /// Times L1 was dropped because invalidations may have been missed (subscription lost).
    pub resyncs: u64,
}
