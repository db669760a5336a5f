//! The client handle: what a user holds and calls.
//!
//! **Failure prevented.** A client that is expensive to clone gets wrapped in locks and shared
//! badly; [`FederatedServiceClient`] is one `Arc` over the shared state (`reload.rs`), so
//! clones share pools, discovery, breakers, statistics and budgets, and see every reload.

use std::sync::Arc;

use http::Method;

use super::call;
use super::generation::Shared;
use super::report;
use super::request::{PathText, Request};
use super::request_builder::{RequestBuilder, Target};
use super::response::Response;
use super::state::Inner;
use crate::error::Error;

/// A client for the logical services of a federation. Cheap to clone (one `Arc`); clones share
/// connection pools, discovery, breakers, statistics and retry budgets.
#[derive(Clone)]
pub struct FederatedServiceClient {
    pub(crate) shared: Arc<Shared>,
}

impl std::fmt::Debug for FederatedServiceClient {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let inner = self.inner();
        let mut services: Vec<&str> = inner.services.keys().map(String::as_str).collect();
        services.sort_unstable();
        f.debug_struct("FederatedServiceClient")
            .field("clusters", &inner.cluster_names)
            .field("services", &services)
            .field("generation", &inner.generation.generation)
            .finish()
    }
}

impl FederatedServiceClient {
    /// The current configuration generation (a call keeps the one it started with).
    pub(crate) fn inner(&self) -> Arc<Inner> {
        self.shared.current()
    }

    /// Sends `request` to `service` through the pipeline.
    ///
    /// # Errors
    /// See [`crate::error::ErrorKind`]; a non-2xx final status is a `Response`, not an error.
    pub async fn call(&self, service: &str, request: Request) -> Result<Response, Error> {
        call::call(&self.inner(), service, request).await
    }

    /// The Prometheus text exposition of this client's metrics (names in `docs/metrics.md`).
    /// State gauges (breakers, discovery) are refreshed first.
    pub fn metrics_text(&self) -> String {
        report::metrics_text(&self.inner())
    }

    /// This client's metrics handle (its own registry; two clients never collide).
    pub fn metrics(&self) -> &crate::telemetry::Metrics {
        &self.shared.metrics
    }

    /// Per logical service × cluster: instances, breakers, availability, score, the preferred
    /// and selected cluster, and discovery freshness; and the configuration generation.
    /// Serializable to JSON.
    pub fn health(&self) -> crate::telemetry::HealthSnapshot {
        let mut snapshot = report::health(&self.inner());
        snapshot.config = self.shared.generation();
        snapshot
    }

    /// The configuration generation the client runs: its number (1 at build, +1 per accepted
    /// reload), when and from where it was loaded, what it changed, and the last rejected
    /// reload since.
    pub fn config_generation(&self) -> crate::telemetry::ConfigGeneration {
        self.shared.generation()
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
        for svc in self.inner().services.values() {
            if let Some(cache) = &svc.cache {
                cache.clear();
            }
        }
    }

    /// The result cache of `service`, when its policy enables one (a handle on the cache of
    /// the current configuration generation).
    pub fn cache(&self, service: &str) -> Option<crate::cache::ResultCache> {
        self.inner()
            .services
            .get(service)
            .and_then(|s| s.cache.clone())
    }

    /// A request with `method` to `path` of `service`.
    pub fn request(&self, method: Method, service: &str, path: &str) -> RequestBuilder {
        // The service is looked up once here; the builder keeps its index (or the unknown name,
        // for the error `send` returns).
        let inner = self.inner();
        let target = match inner.services.index_of(service) {
            Some(index) => Target::Known(index),
            None => Target::Unknown(service.to_owned()),
        };
        let request = Request::with_path(method, PathText::new(path));
        RequestBuilder::new(inner, target, request)
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
        let mut names: Vec<String> = self.inner().services.keys().cloned().collect();
        names.sort_unstable();
        names
    }
}
