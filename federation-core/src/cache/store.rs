//! [`ResultCache`]: one service's byte-bounded result cache with single-flight fetches,
//! stale-while-revalidate and stale-if-error on top of `moka::future::Cache`.

use std::future::Future;
use std::sync::Arc;
use std::sync::atomic::AtomicU64;
use std::time::Duration;

use http::{HeaderMap, Method};
use moka::future::Cache;
use moka::notification::RemovalCause;
use tokio::time::Instant;

use super::control::is_error_status;
use super::entry::{CacheStatus, CachedResponse, FetchOutcome, Judged, judge};
use super::flight::{FlightOutput, Flights};
use super::key::{CacheKey, KeyBuf, KeyBuilder};
use super::stats::{CacheStats, Counters, WarmCounters};
use crate::cache::home::on_home;
use crate::cache::l2::L2;
use crate::config::model::CachePolicy;
use crate::telemetry::Metrics;
use fill::run_fetch;

mod fill;
mod tier;

/// How long moka keeps an entry after it was written: the TTL plus the longer stale window, the
/// longest any entry is usable (`Cache-Control: max-age` only shortens the TTL). One cache-wide
/// time-to-live instead of a per-entry expiry keeps moka from running an expiry callback on
/// every read; an entry whose `max-age` made it expire sooner is never served after its own
/// windows (freshness is judged on the entry's instants) and is reclaimed at this bound or by
/// the byte bound. Capped well below moka's 1000-year limit.
fn retention(ttl: Duration, swr: Duration, sie: Duration) -> Duration {
    const MAX: Duration = Duration::from_secs(100 * 365 * 24 * 3600);
    ttl.saturating_add(swr.max(sie)).min(MAX)
}

/// The result cache of one logical service. Cheap to clone (shared state).
///
/// See the [module docs](super) for the algorithm.
#[derive(Clone)]
pub struct ResultCache {
    inner: Arc<Inner>,
}

struct Inner {
    service: Arc<str>,
    methods: Vec<Method>,
    keys: KeyBuilder,
    ttl: Duration,
    swr: Duration,
    sie: Duration,
    respect_cache_control: bool,
    max_bytes: u64,
    entries: Cache<CacheKey, Arc<CachedResponse>>,
    flights: Flights,
    /// Bumped by every invalidation: a fetch that started before it does not store its result.
    epoch: AtomicU64,
    counters: Arc<Counters>,
    /// The shared Redis tier, when `cache.l2` is configured.
    l2: Option<L2>,
    /// Longest wait for another process's fetch of the same key (the call's total timeout).
    wait_limit: Duration,
    warm: WarmCounters,
}

impl ResultCache {
    /// A cache for `service` configured by `policy`, without Prometheus metrics.
    pub fn new(service: &str, policy: &CachePolicy) -> Self {
        Self::build(
            service,
            policy,
            Counters::with_metrics(None),
            None,
            Duration::ZERO,
        )
    }

    /// A cache for `service` whose hits, misses, stale serves and evictions also move
    /// `federation_cache_events_total{service=...}` in `metrics` (handles resolved once here, so
    /// the hit path stays lock-free).
    pub fn with_metrics(service: &str, policy: &CachePolicy, metrics: &Metrics) -> Self {
        Self::build(
            service,
            policy,
            Counters::with_metrics(Some(metrics.cache_counters(service))),
            None,
            Duration::ZERO,
        )
    }

    pub(super) fn build(
        service: &str,
        policy: &CachePolicy,
        counters: Counters,
        l2: Option<L2>,
        wait_limit: Duration,
    ) -> Self {
        let counters = Arc::new(counters);
        let listener_counters = Arc::clone(&counters);
        let swr = policy.stale_while_revalidate.unwrap_or_default();
        let sie = policy.stale_if_error.unwrap_or_default();
        let entries = Cache::builder()
            .name(service)
            .max_capacity(policy.max_bytes)
            .weigher(|k: &CacheKey, v: &Arc<CachedResponse>| {
                u32::try_from(k.weight() + v.weight()).unwrap_or(u32::MAX)
            })
            .time_to_live(retention(policy.ttl, swr, sie))
            .support_invalidation_closures()
            .eviction_listener(move |_k, _v, cause| {
                if cause == RemovalCause::Size {
                    listener_counters.eviction();
                }
            })
            .build();
        let methods = policy
            .methods
            .iter()
            .filter_map(|m| Method::from_bytes(m.trim().to_ascii_uppercase().as_bytes()).ok())
            .collect();
        Self {
            inner: Arc::new(Inner {
                service: Arc::from(service),
                methods,
                keys: KeyBuilder::new(&policy.vary_headers, l2.is_some()),
                ttl: policy.ttl,
                swr,
                sie,
                respect_cache_control: policy.respect_cache_control,
                max_bytes: policy.max_bytes,
                entries,
                flights: Flights::default(),
                epoch: AtomicU64::new(0),
                counters,
                l2,
                wait_limit,
                warm: WarmCounters::default(),
            }),
        }
    }

    /// The logical service this cache belongs to.
    pub fn service(&self) -> &str {
        &self.inner.service
    }

    /// Whether requests with this method are cached (policy `methods`; default GET and HEAD).
    pub fn is_cacheable(&self, method: &Method) -> bool {
        self.inner.methods.contains(method)
    }

    /// The cache key of a request (`path` is the logical path, `query` without the `?`), or `None`
    /// when the request must bypass the cache: its method is not cacheable, or it carries
    /// `Authorization`/`Cookie` and that header is not a configured vary-header.
    #[cfg(test)]
    pub(crate) fn key(
        &self,
        method: &Method,
        path: &str,
        query: Option<&str>,
        headers: &HeaderMap,
        body: &[u8],
    ) -> Option<CacheKey> {
        self.key_with_tags(method, path, query, headers, body, None)
    }

    /// Like [`key`](Self::key) for a call with a per-call tag filter (`RequestBuilder::tags`):
    /// `None` is the service's default filter; `Some(tags)` makes the key differ from the
    /// default's and from every other filter's (order and duplicates do not matter), so an
    /// answer for `model=v3` is never served for `model=v2`. The filter is not part of the path
    /// (`invalidate(path)` drops every filter's entries).
    pub(crate) fn key_with_tags(
        &self,
        method: &Method,
        path: &str,
        query: Option<&str>,
        headers: &HeaderMap,
        body: &[u8],
        tags: Option<&[String]>,
    ) -> Option<CacheKey> {
        if !self.is_cacheable(method) {
            return None;
        }
        self.inner
            .keys
            .build(method, path, query, headers, body, tags)
    }

    /// Returns the cached response for `key`, or runs `fetch` (once for all identical concurrent
    /// callers) and stores its result when storable.
    ///
    /// - fresh value → `Hit` (no fetch, no lock besides moka's);
    /// - past TTL, within stale-while-revalidate → the stale value as `Stale`, and exactly one
    ///   background refresh runs `fetch` (requires a tokio runtime; without one, none runs);
    /// - otherwise → fetch; `Miss` with the result (stored only if 2xx and Cache-Control allows);
    ///   if the fetch fails (error, or 500/502/503/504) and a value within its stale-if-error
    ///   window exists → that value as `Stale`; else the error, shared by every waiter as the
    ///   same `Arc<E>`, and nothing is cached.
    pub(crate) async fn get_or_fetch<F, Fut, E>(
        &self,
        key: CacheKey,
        fetch: F,
    ) -> Result<(Arc<CachedResponse>, CacheStatus), Arc<E>>
    where
        F: FnOnce() -> Fut + Send + 'static,
        Fut: Future<Output = Result<FetchOutcome, E>> + Send + 'static,
        E: Send + Sync + 'static,
    {
        let inner = &self.inner;
        let mut judged = judge(inner.entries.get(&key).await);
        if let Judged::Fetch(l1_fallback) = judged {
            judged = match self.l2_lookup(&key).await.map(|e| judge(Some(e))) {
                Some(Judged::Fetch(None)) | None => Judged::Fetch(l1_fallback),
                Some(from_l2) => from_l2,
            };
        }
        let fallback = match judged {
            Judged::Fresh(entry) => {
                inner.counters.hit();
                return Ok((entry, CacheStatus::Hit));
            }
            Judged::Revalidate(entry) => {
                if entry.claim_refresh() {
                    self.spawn_refresh(key, Arc::clone(&entry), fetch);
                }
                inner.counters.stale();
                return Ok((entry, CacheStatus::Stale));
            }
            Judged::Fetch(fallback) => fallback,
        };
        let result = self.fetch_shared(key, fetch).await;
        let failed = match &result {
            Ok(resp) => is_error_status(resp.status),
            Err(_) => true,
        };
        if failed && let Some(stale) = fallback.filter(|e| Instant::now() < e.error_until) {
            inner.counters.stale();
            return Ok((stale, CacheStatus::Stale));
        }
        match result {
            Ok(resp) => {
                inner.counters.miss();
                Ok((resp, CacheStatus::Miss))
            }
            Err(err) => {
                inner.counters.miss();
                Err(err)
            }
        }
    }

    /// The value for `key` when it is fresh at `now` (before its TTL), counted as a hit exactly
    /// as `get_or_fetch` counts one; `None`, counting nothing, when the key
    /// is absent or past its TTL (the caller then goes through `get_or_fetch`, which handles
    /// stale serves, refreshes and misses). The cheap first step of a call's cache lookup;
    /// `now` is the caller's clock reading (a call's start), saving a second one.
    pub async fn get_fresh(&self, key: &CacheKey, now: Instant) -> Option<Arc<CachedResponse>> {
        let entry = self.inner.entries.get(key).await?;
        if now < entry.fresh_until {
            self.inner.counters.hit();
            return Some(entry);
        }
        None
    }

    /// The fresh value for a request, looked up without allocating a key and without waiting:
    /// the synchronous first step of a call's cache lookup. Counted as a hit exactly as
    /// [`get_or_fetch`](Self::get_or_fetch) counts one. `None`, counting nothing, when the
    /// request is not cacheable, the value is absent or past its TTL, or moka's lookup would
    /// have to wait (it waits only on its own maintenance); the caller then goes through
    /// `get_or_fetch`, which handles all of those. `now` is the caller's clock reading.
    #[allow(
        clippy::too_many_arguments,
        reason = "the parts of a request that make its key"
    )]
    pub(crate) fn fresh_now(
        &self,
        method: &Method,
        path: &str,
        query: Option<&str>,
        headers: &HeaderMap,
        body: &[u8],
        tags: Option<&[String]>,
        now: Instant,
    ) -> Option<Arc<CachedResponse>> {
        if !self.is_cacheable(method) {
            return None;
        }
        let mut key = KeyBuf::new();
        if !self
            .inner
            .keys
            .build_buf(&mut key, method, path, query, headers, body, tags)
        {
            return None;
        }
        // Polled once where it lies (`now_or_never` would move moka's future first). Dropping a
        // pending moka future is safe (its operations are cancellation-safe).
        let get = std::pin::pin!(self.inner.entries.get(&key));
        let mut cx = std::task::Context::from_waker(std::task::Waker::noop());
        let std::task::Poll::Ready(entry) = get.poll(&mut cx) else {
            return None;
        };
        let entry = entry?;
        if now < entry.fresh_until {
            self.inner.counters.hit();
            return Some(entry);
        }
        None
    }

    /// Whether `name` is one of the configured vary-headers (part of every key's digest).
    pub(crate) fn varies_on(&self, name: &http::HeaderName) -> bool {
        self.inner.keys.varies_on(name)
    }

    /// The stored value for `key` whatever its freshness, without fetching or counting.
    #[cfg(test)]
    pub(crate) async fn peek(&self, key: &CacheKey) -> Option<Arc<CachedResponse>> {
        self.inner.entries.get(key).await
    }

    /// The shared tier's health, when `cache.l2` is configured.
    pub fn l2_health(&self) -> Option<crate::cache::L2Health> {
        self.inner.l2.as_ref().map(L2::health)
    }

    /// Counters and sizes (sizes are approximate until moka's maintenance has run).
    pub fn stats(&self) -> CacheStats {
        let e = &self.inner.entries;
        self.inner
            .counters
            .snapshot(e.entry_count(), e.weighted_size())
    }

    /// Runs moka's pending maintenance (evictions, expirations, invalidations) now, so
    /// [`stats`](Self::stats) is exact. Never needed for correctness.
    #[cfg(test)]
    pub(crate) async fn run_pending_tasks(&self) {
        self.inner.entries.run_pending_tasks().await;
    }

    /// Fetches currently in flight (registered single-flight groups).
    #[cfg(test)]
    pub(crate) fn in_flight(&self) -> usize {
        self.inner.flights.len()
    }

    /// Joins or starts the single flight for `key`.
    async fn fetch_shared<F, Fut, E>(&self, key: CacheKey, fetch: F) -> FlightOutput<E>
    where
        F: FnOnce() -> Fut + Send + 'static,
        Fut: Future<Output = Result<FetchOutcome, E>> + Send + 'static,
        E: Send + Sync + 'static,
    {
        let inner = Arc::clone(&self.inner);
        let flight_key = key.clone();
        let (flight, _started) = self.inner.flights.join_or_start::<E>(&key, move |id| {
            on_home(run_fetch(inner, flight_key, id, fetch))
        });
        flight.await
    }

    fn spawn_refresh<F, Fut, E>(&self, key: CacheKey, entry: Arc<CachedResponse>, fetch: F)
    where
        F: FnOnce() -> Fut + Send + 'static,
        Fut: Future<Output = Result<FetchOutcome, E>> + Send + 'static,
        E: Send + Sync + 'static,
    {
        let Some(runtime) = crate::driven::spawn_handle() else {
            entry.release_refresh();
            return;
        };
        let this = self.clone();
        runtime.spawn(async move {
            let _ = this.fetch_shared(key, fetch).await;
            // On success the entry was replaced by a new one; otherwise let a later request retry.
            entry.release_refresh();
        });
    }
}
