//! What the cache stores and returns: a response plus the instants that govern its reuse.

use std::fmt;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use bytes::Bytes;
use http::HeaderMap;
use tokio::time::Instant;

/// How a call was served with respect to the cache. Reported on every `Response`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, serde::Serialize)]
#[serde(rename_all = "snake_case")]
#[non_exhaustive]
pub enum CacheStatus {
    /// Served from a fresh cached value; no upstream call, no balancer or breaker statistics.
    Hit,
    /// Fetched upstream (possibly by another caller whose identical request was in flight).
    Miss,
    /// Served from a value past its TTL: within the stale-while-revalidate window (a background
    /// refresh was started) or within the stale-if-error window because the fetch failed.
    Stale,
    /// The cache was not consulted (caching off, method not cacheable, or personal request).
    Bypass,
}

impl CacheStatus {
    /// Lower-case name used in metrics, spans and bindings: `hit`, `miss`, `stale`, `bypass`.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Hit => "hit",
            Self::Miss => "miss",
            Self::Stale => "stale",
            Self::Bypass => "bypass",
        }
    }
}

impl fmt::Display for CacheStatus {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// What a fetch (one full pipeline run: routing, attempts, failover) produced.
#[derive(Clone, Debug)]
pub struct FetchOutcome {
    /// HTTP status.
    pub status: u16,
    /// Response headers.
    pub headers: HeaderMap,
    /// Response body.
    pub body: Bytes,
    /// Cluster that answered, reported again on later hits. Default: none.
    pub cluster: Option<Arc<str>>,
    /// Instance that answered, reported again on later hits. Default: none.
    pub instance: Option<Arc<str>>,
}

impl FetchOutcome {
    /// An outcome with the given status, headers and body, and no origin information.
    pub fn new(status: u16, headers: HeaderMap, body: Bytes) -> Self {
        Self {
            status,
            headers,
            body,
            cluster: None,
            instance: None,
        }
    }
}

/// A response as the cache hands it out (shared: clone the `Arc`, not the body).
pub struct CachedResponse {
    /// HTTP status.
    pub status: u16,
    /// Response headers as upstream sent them (shared by every response served from it).
    pub headers: Arc<HeaderMap>,
    /// Response body.
    pub body: Bytes,
    /// Cluster that produced it, when the fetch said so.
    pub cluster: Option<Arc<str>>,
    /// Instance that produced it, when the fetch said so.
    pub instance: Option<Arc<str>>,
    /// When it was fetched.
    pub stored_at: Instant,
    /// Served as a hit until this instant.
    pub fresh_until: Instant,
    /// Served stale (with one background refresh) until this instant.
    pub revalidate_until: Instant,
    /// Served stale when the fetch fails until this instant.
    pub error_until: Instant,
    /// The end of the later of the two stale windows: never served after it (memory is
    /// reclaimed by the cache-wide retention or the byte bound).
    pub stale_until: Instant,
    /// Set while the one background refresh of this value runs.
    refreshing: AtomicBool,
    /// The logical service of the cache that stored it (a response served from it names it,
    /// without a reference count of its own).
    pub(crate) service: Arc<str>,
}

impl CachedResponse {
    /// Wraps a fetch result of `service` fetched at `now`, fresh for `fresh` (zero when not
    /// storable).
    pub(crate) fn new(
        outcome: FetchOutcome,
        service: Arc<str>,
        now: Instant,
        fresh: Duration,
        swr: Duration,
        sie: Duration,
    ) -> Self {
        Self::at(outcome, service, now, now + fresh, swr, sie)
    }

    /// Wraps a fetch result stored at `stored_at` and fresh until `fresh_until` (possibly in the
    /// past: a value read from the L2 tier), with the stale windows after it.
    pub(crate) fn at(
        outcome: FetchOutcome,
        service: Arc<str>,
        stored_at: Instant,
        fresh_until: Instant,
        swr: Duration,
        sie: Duration,
    ) -> Self {
        Self {
            status: outcome.status,
            headers: Arc::new(outcome.headers),
            body: outcome.body,
            cluster: outcome.cluster,
            instance: outcome.instance,
            stored_at,
            fresh_until,
            revalidate_until: fresh_until + swr,
            error_until: fresh_until + sie,
            stale_until: fresh_until + swr.max(sie),
            refreshing: AtomicBool::new(false),
            service,
        }
    }

    /// Approximate bytes held (body, headers, fixed overhead) for the byte bound.
    pub(crate) fn weight(&self) -> usize {
        let headers: usize = self
            .headers
            .iter()
            .map(|(n, v)| n.as_str().len() + v.len() + 32)
            .sum();
        self.body.len() + headers + std::mem::size_of::<Self>()
    }

    /// Claims the right to run the single background refresh; true for exactly one caller until
    /// [`release_refresh`](Self::release_refresh).
    pub(crate) fn claim_refresh(&self) -> bool {
        self.refreshing
            .compare_exchange(false, true, Ordering::AcqRel, Ordering::Acquire)
            .is_ok()
    }

    /// Lets a later request start another refresh (after a failed one).
    pub(crate) fn release_refresh(&self) {
        self.refreshing.store(false, Ordering::Release);
    }
}

impl fmt::Debug for CachedResponse {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("CachedResponse")
            .field("status", &self.status)
            .field("body_len", &self.body.len())
            .field("cluster", &self.cluster)
            .field("instance", &self.instance)
            .field("stored_at", &self.stored_at)
            .field("fresh_until", &self.fresh_until)
            .field("stale_until", &self.stale_until)
            .finish_non_exhaustive()
    }
}

/// What a stored value allows at a given instant.
pub(crate) enum Judged {
    Fresh(Arc<CachedResponse>),
    Revalidate(Arc<CachedResponse>),
    /// Fetch; the value (if any) may still answer if the fetch fails.
    Fetch(Option<Arc<CachedResponse>>),
}

pub(crate) fn judge(found: Option<Arc<CachedResponse>>) -> Judged {
    let Some(entry) = found else {
        return Judged::Fetch(None);
    };
    let now = Instant::now();
    if now < entry.fresh_until {
        Judged::Fresh(entry)
    } else if now < entry.revalidate_until {
        Judged::Revalidate(entry)
    } else {
        Judged::Fetch((now < entry.error_until).then_some(entry))
    }
}
