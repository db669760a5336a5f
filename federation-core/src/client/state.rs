//! The shared state of a client: its clusters and its services with everything a call needs.
//!
//! **Failure prevented.** Per-call lookups of configuration (hashing a service name, finding a
//! cluster's transport, building a breaker) would cost every call; everything a call reads is
//! resolved once when the client is built and kept here, behind one `Arc`.

use std::collections::HashMap;
use std::sync::Arc;

use http::HeaderMap;

use super::routing::{ClusterRoute, Failback, RankPolicy};
use crate::config::Policy;
use crate::discovery::ClusterDiscovery;
use crate::limit::{Bulkhead, RateLimiter};
use crate::retry::{Backoff, RetryBudget};
use crate::transport::Transport;

/// Shared state of a client.
pub(crate) struct Inner {
    /// Shared with the next generation when a reload leaves the service unchanged.
    pub(crate) services: Services<Arc<ServiceRoute>>,
    /// Shared with the next generation when a reload leaves the cluster unchanged.
    pub(crate) clusters: Vec<Arc<ClusterRuntime>>,
    pub(crate) cluster_names: Vec<String>,
    pub(crate) random: crate::rng::SplitMix,
    /// This client's metrics (own registry; issue 4).
    pub(crate) metrics: crate::telemetry::Metrics,
    /// How long after a service's discovery watches start (its first call, or `wait_ready`) a
    /// call waits for the first answer of the cluster it would rank highest (see
    /// `routing/startup.rs`).
    pub(crate) startup_grace: std::time::Duration,
    /// Keeps attempt timeouts from waking the timer driver (see `transport/timer_anchor.rs`).
    pub(crate) timer_anchor: crate::transport::timer_anchor::TimerAnchor,
    /// The configuration this generation was built from (compared on reload).
    pub(crate) config: Arc<crate::config::Config>,
    /// Which generation this is, when and from where it was loaded (`reload.rs`).
    pub(crate) generation: crate::telemetry::ConfigGeneration,
}

/// One cluster's transport, default headers and discovery.
pub(crate) struct ClusterRuntime {
    pub(crate) name: Arc<str>,
    pub(crate) transport: Transport,
    /// Default headers, values marked sensitive; never logged.
    pub(crate) headers: HeaderMap,
    pub(crate) discovery: ClusterDiscovery,
}

/// Everything the pipeline needs about one logical service.
pub(crate) struct ServiceRoute {
    pub(crate) name: Arc<str>,
    /// One route per cluster serving the service, in cluster declaration order.
    pub(crate) routes: Vec<ClusterRoute>,
    pub(crate) preferred: Option<usize>,
    /// The service's default tag filter, sorted and deduplicated (for cache keys).
    pub(crate) tags: Vec<String>,
    pub(crate) policy: Policy,
    pub(crate) budget: RetryBudget,
    pub(crate) backoff: Backoff,
    pub(crate) bulkhead: Option<Bulkhead>,
    pub(crate) rate: Option<RateLimiter>,
    pub(crate) failback: Failback,
    /// The service's result cache when its policy enables one (issue 4).
    pub(crate) cache: Option<crate::cache::ResultCache>,
    /// `federation_requests_total{cluster="none", outcome="success"}` handles of calls answered
    /// from the cache, resolved on the first such call (no series before its first event).
    pub(crate) cached_success: std::sync::OnceLock<crate::telemetry::CallHandles>,
    /// End of the startup grace, set when the service's discovery watches were started.
    pub(crate) watching: std::sync::OnceLock<tokio::time::Instant>,
    /// Backup requests, when the service's policy enables them.
    pub(crate) hedge: Option<super::hedge_delay::HedgeTimer>,
    /// The weighted split between arms, when the service has one.
    pub(crate) split: Option<super::routing::SplitRoute>,
    /// Load-aware spill, when the policy enables it and the service prefers a cluster.
    pub(crate) spill: Option<super::routing::Spill>,
}

impl ServiceRoute {
    /// Starts the discovery watches of every route of this service the first time it is
    /// needed (lazy watches: a configured service that is never called costs Consul nothing);
    /// returns the end of its startup grace. Later calls: one atomic load.
    pub(crate) fn watch(
        &self,
        clusters: &[Arc<ClusterRuntime>],
        grace: std::time::Duration,
    ) -> tokio::time::Instant {
        *self.watching.get_or_init(|| {
            for route in &self.routes {
                if let Some(cluster) = clusters.get(route.cluster_index) {
                    cluster.discovery.start(&route.consul_name);
                }
            }
            tokio::time::Instant::now() + grace
        })
    }

    /// What ranking reads of this service; `all_clusters` are the client's clusters (for
    /// "not configured" reasons).
    pub(crate) fn rank_policy<'a>(&'a self, all_clusters: &'a [String]) -> RankPolicy<'a> {
        RankPolicy {
            routes: &self.routes,
            preferred: self.preferred,
            healthy_threshold: self.policy.failover.healthy_threshold,
            dwell: self.policy.failover.dwell,
            panic_threshold: self.policy.failover.panic_threshold,
            failback: &self.failback,
            all_clusters,
        }
    }
}

/// The configured services, in a `Vec` so a request builder can keep a service's index (no
/// name to allocate, no hash to compute per call) plus a name → index map for many services.
pub(crate) struct Services<R = ServiceRoute> {
    names: Vec<String>,
    routes: Vec<R>,
    index: HashMap<String, usize>,
}

impl<R> Services<R> {
    /// Up to this many services, a name is found by comparing names (cheaper than hashing one).
    const SCAN: usize = 8;

    /// An empty set with room for `n` services.
    pub(crate) fn with_capacity(n: usize) -> Self {
        Self {
            names: Vec::with_capacity(n),
            routes: Vec::with_capacity(n),
            index: HashMap::with_capacity(n),
        }
    }

    /// Adds `name`'s route (replacing an earlier route of the same name).
    pub(crate) fn insert(&mut self, name: String, route: R) {
        if let Some(&i) = self.index.get(&name)
            && let Some(slot) = self.routes.get_mut(i)
        {
            *slot = route;
            return;
        }
        self.index.insert(name.clone(), self.routes.len());
        self.names.push(name);
        self.routes.push(route);
    }

    /// The index of `name`, when configured.
    pub(crate) fn index_of(&self, name: &str) -> Option<usize> {
        if self.names.len() <= Self::SCAN {
            self.names.iter().position(|n| n == name)
        } else {
            self.index.get(name).copied()
        }
    }

    /// The route at `index` (from [`index_of`](Self::index_of)).
    pub(crate) fn at(&self, index: usize) -> Option<&R> {
        self.routes.get(index)
    }

    /// The name at `index`.
    pub(crate) fn name_at(&self, index: usize) -> Option<&str> {
        self.names.get(index).map(String::as_str)
    }

    /// The route of `name`, when configured.
    pub(crate) fn get(&self, name: &str) -> Option<&R> {
        self.index_of(name).and_then(|i| self.at(i))
    }

    /// The configured names, in insertion order.
    pub(crate) fn keys(&self) -> impl Iterator<Item = &String> {
        self.names.iter()
    }

    /// The routes, in insertion order.
    pub(crate) fn values(&self) -> impl Iterator<Item = &R> {
        self.routes.iter()
    }

    /// How many services are configured.
    pub(crate) fn len(&self) -> usize {
        self.routes.len()
    }
}

#[cfg(test)]
mod tests {
    use super::Services;

    #[test]
    fn services_are_found_by_name_with_few_and_with_many() {
        for count in [2usize, 12] {
            let mut services = Services::with_capacity(count);
            for i in 0..count {
                services.insert(format!("svc{i}"), i * 10);
            }
            for i in 0..count {
                let index = services.index_of(&format!("svc{i}")).expect("configured");
                assert_eq!(services.at(index), Some(&(i * 10)));
                assert_eq!(services.name_at(index), Some(format!("svc{i}").as_str()));
            }
            assert_eq!(services.index_of("nope"), None);
            assert_eq!(services.get("svc1"), Some(&10));
            assert_eq!(services.len(), count);
        }
    }

    #[test]
    fn inserting_a_name_again_replaces_its_route() {
        let mut services = Services::with_capacity(1);
        services.insert("a".to_owned(), 1);
        services.insert("a".to_owned(), 2);
        assert_eq!(services.len(), 1);
        assert_eq!(services.get("a"), Some(&2));
        assert_eq!(services.keys().collect::<Vec<_>>(), ["a"]);
        assert_eq!(services.values().collect::<Vec<_>>(), [&2]);
    }
}
