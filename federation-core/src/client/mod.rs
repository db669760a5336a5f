//! The federated service client: one call API over services living in several clusters.
//!
//! **Failures prevented.** Calling services across two independently run clusters fails in many
//! small ways: a dead instance taking a share of the traffic, a whole cluster down while the
//! other is healthy, retries multiplying load during an outage, requests running past the
//! caller's deadline, routing that flaps between clusters. [`FederatedServiceClient`] runs every
//! call through one pipeline that handles all of them.
//!
//! **Algorithm.** For each call: validate the request (nothing is sent for bad input); apply the
//! service's bulkhead and rate limit; rank the clusters (explicit override, then the preferred
//! cluster while it is healthy enough, then health score, with a dwell time before failing back);
//! then loop over attempts bounded by the total deadline, `retry.max_attempts` per cluster and a
//! retry budget shared with failovers: pick an instance (P2C peak-EWMA by default, open breakers
//! skipped, never the instance that just failed when another exists), send with a per-attempt
//! timeout inside the breaker permit, classify the outcome, back off with jitter (not after a
//! fast connect failure on the way to another instance), and fail over to the next cluster when
//! the current one has no untried instance. A cluster left out by ranking (its registry had
//! not answered yet, or nothing was available) joins the failover order as soon as it can
//! serve, and a call whose ranked clusters are exhausted waits, within its deadline, for a
//! registry that has not answered yet (see `late.rs`). A call made before the highest-ranked
//! cluster's registry first answered waits briefly for it (startup grace, see `startup.rs`).
//! Each attempt carries the remaining deadline (`X-Federation-Deadline-Ms`) and a W3C
//! `traceparent`.
//!
//! ```no_run
//! use federation_core::client::FederatedServiceClient;
//! use federation_core::config::Config;
//!
//! # async fn demo() -> Result<(), federation_core::error::Error> {
//! let config = Config::from_file("federation.yaml")?;
//! let client = FederatedServiceClient::from_config(config)?;
//! let response = client.get("user", "/api/v1/users/42").send().await?;
//! println!("{} from {}", response.status(), response.served().cluster());
//! # Ok(())
//! # }
//! ```

mod attempt_url;
mod builder;
mod choose;
mod coherence;
pub(crate) mod http1_pool;
mod late;
mod observe;
mod outcome;
mod pipeline;
mod probe;
mod propagate;
mod registry;
mod report;
mod request;
mod response;
mod route_metrics;
mod routing;
mod select;
mod startup;
mod timer_anchor;
pub(crate) mod transport;

use std::collections::HashMap;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

use http::{HeaderMap, Method};

pub use builder::ClientBuilder;
pub use coherence::WarmReport;
pub use propagate::DEADLINE_HEADER;
pub use registry::Registered;
pub use request::{Request, RequestBuilder};
pub use response::{Attempt, AttemptOutcome, CacheStatus, Response, ServedBy};

pub(crate) use routing::ClusterRoute;

use crate::config::{Config, Policy};
use crate::discovery::ClusterDiscovery;
use crate::error::Error;
use crate::limit::{Bulkhead, RateLimiter};
use crate::retry::{Backoff, RetryBudget};
use select::Failback;
use transport::Transport;

/// A client for the logical services of a federation. Cheap to clone (one `Arc`); clones share
/// connection pools, discovery, breakers, statistics and retry budgets.
#[derive(Clone)]
pub struct FederatedServiceClient {
    inner: Arc<Inner>,
}

impl std::fmt::Debug for FederatedServiceClient {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let mut services: Vec<&str> = self.inner.services.keys().map(String::as_str).collect();
        services.sort_unstable();
        f.debug_struct("FederatedServiceClient")
            .field("clusters", &self.inner.cluster_names)
            .field("services", &services)
            .finish()
    }
}

/// Shared state of a client.
pub(crate) struct Inner {
    pub(crate) services: Services,
    pub(crate) clusters: Vec<ClusterRuntime>,
    pub(crate) cluster_names: Vec<String>,
    pub(crate) random: SplitMix,
    /// This client's metrics (own registry; issue 4).
    pub(crate) metrics: crate::telemetry::Metrics,
    /// End of the startup grace: until then a call waits for the first discovery answer of
    /// the cluster it would rank highest (see `startup.rs`).
    pub(crate) startup_until: tokio::time::Instant,
    /// Keeps attempt timeouts from waking the timer driver (see `timer_anchor.rs`).
    pub(crate) timer_anchor: timer_anchor::TimerAnchor,
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

/// A lock-free random source (splitmix64 over an atomic counter) for jitter and trace ids.
pub(crate) struct SplitMix(AtomicU64);

impl SplitMix {
    const GAMMA: u64 = 0x9E37_79B9_7F4A_7C15;

    pub(crate) fn new(seed: Option<u64>) -> Self {
        Self(AtomicU64::new(seed.unwrap_or_else(rand::random)))
    }

    pub(crate) fn next(&self) -> u64 {
        let mut z = self
            .0
            .fetch_add(Self::GAMMA, Ordering::Relaxed)
            .wrapping_add(Self::GAMMA);
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }
}

impl FederatedServiceClient {
    /// A client for `config` with default settings (see [`ClientBuilder`]).
    ///
    /// # Errors
    /// [`crate::error::ErrorKind::Config`] when the configuration is invalid or a certificate or
    /// environment variable it names cannot be read.
    pub fn from_config(config: Config) -> Result<Self, Error> {
        Self::builder().config(config).build()
    }

    /// A builder for a client with non-default settings.
    pub fn builder() -> ClientBuilder {
        ClientBuilder::new()
    }

    /// Sends `request` to `service` through the pipeline.
    ///
    /// # Errors
    /// See [`crate::error::ErrorKind`]; a non-2xx final status is a `Response`, not an error.
    pub async fn call(&self, service: &str, request: Request) -> Result<Response, Error> {
        observe::call(&self.inner, service, request).await
    }

    /// The Prometheus text exposition of this client's metrics (names in `docs/metrics.md`).
    /// State gauges (breakers, discovery) are refreshed first.
    pub fn metrics_text(&self) -> String {
        report::metrics_text(&self.inner)
    }

    /// This client's metrics handle (its own registry; two clients never collide).
    pub fn metrics(&self) -> &crate::telemetry::Metrics {
        &self.inner.metrics
    }

    /// Per logical service × cluster: instances, breakers, availability, score, the preferred
    /// and selected cluster, and discovery freshness. Serializable to JSON.
    pub fn health(&self) -> crate::telemetry::HealthSnapshot {
        report::health(&self.inner)
    }

    /// Drops `service`'s cached responses for exactly `path` (any query, method or body).
    /// Returns false when the service has no cache.
    pub fn invalidate(&self, service: &str, path: &str) -> bool {
        self.cache(service).map(|c| c.invalidate(path)).is_some()
    }

    /// Drops `service`'s cached responses whose path starts with `prefix`.
    /// Returns false when the service has no cache.
    pub fn invalidate_prefix(&self, service: &str, prefix: &str) -> bool {
        self.cache(service)
            .map(|c| c.invalidate_prefix(prefix))
            .is_some()
    }

    /// Drops every cached response of every service.
    pub fn clear_cache(&self) {
        for svc in self.inner.services.values() {
            if let Some(cache) = &svc.cache {
                cache.clear();
            }
        }
    }

    /// The result cache of `service`, when its policy enables one.
    pub fn cache(&self, service: &str) -> Option<&crate::cache::ResultCache> {
        self.inner
            .services
            .get(service)
            .and_then(|s| s.cache.as_ref())
    }

    /// A request with `method` to `path` of `service`.
    pub fn request(&self, method: Method, service: &str, path: &str) -> RequestBuilder {
        // The service is looked up once here; the builder keeps its index (or the unknown name,
        // for the error `send` returns).
        let target = match self.inner.services.index_of(service) {
            Some(index) => request::Target::Known(index),
            None => request::Target::Unknown(service.to_owned()),
        };
        let request = Request::with_path(method, request::PathText::new(path));
        RequestBuilder::new(self.clone(), target, request)
    }

    /// A GET request to `path` of `service`.
    pub fn get(&self, service: &str, path: &str) -> RequestBuilder {
        self.request(Method::GET, service, path)
    }

    /// A POST request to `path` of `service` (not idempotent by default).
    pub fn post(&self, service: &str, path: &str) -> RequestBuilder {
        self.request(Method::POST, service, path)
    }

    /// A PUT request to `path` of `service`.
    pub fn put(&self, service: &str, path: &str) -> RequestBuilder {
        self.request(Method::PUT, service, path)
    }

    /// A DELETE request to `path` of `service`.
    pub fn delete(&self, service: &str, path: &str) -> RequestBuilder {
        self.request(Method::DELETE, service, path)
    }

    /// The configured logical service names.
    pub fn services(&self) -> Vec<String> {
        let mut names: Vec<String> = self.inner.services.keys().cloned().collect();
        names.sort_unstable();
        names
    }

    /// The routing tables, for health reporting: every `(service, route)` pair. The route gives
    /// the cluster, the Consul name, the current instance table (`current()`) with each
    /// instance's breaker and stats, and `health()` for counts and score.
    #[allow(dead_code, reason = "read by telemetry's health snapshot")]
    pub(crate) fn routes(&self) -> impl Iterator<Item = (&str, &ClusterRoute)> {
        self.inner
            .services
            .values()
            .flat_map(|s| s.routes.iter().map(move |r| (&*s.name, r)))
    }

    /// The discovery handle of every cluster, in declaration order.
    #[allow(dead_code, reason = "read by telemetry's health snapshot")]
    pub(crate) fn discoveries(&self) -> impl Iterator<Item = &ClusterDiscovery> {
        self.inner.clusters.iter().map(|c| &c.discovery)
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
