//! Result cache: reuse upstream answers without stampedes, stale reads or cross-user leaks.
//!
//! The failures it prevents: every concurrent caller going upstream when a popular entry expires
//! (a stampede), callers failing while a perfectly usable recent answer sits in memory (both
//! clusters down), one user's answer served to another, and a failover splitting the cache.
//!
//! The algorithm, per logical service ([`ResultCache`]):
//!
//! 1. **Key** ([`CacheKey`]): method + logical path + sorted query + a keyed 128-bit digest of the
//!    configured vary-headers and the body (POST inference requests are keyed by what they
//!    ask). Never the cluster or instance. Requests carrying `Authorization` or `Cookie` bypass
//!    the cache unless that header is a vary-header.
//! 2. **Lookup**: a moka `get`. A value before its TTL is a [`CacheStatus::Hit`]: no lock besides
//!    moka's, and the pipeline returns before routing, so balancer and breaker statistics are
//!    untouched. A client call's first lookup builds the key on the stack (no allocation) and
//!    polls moka once without waiting; only when that finds no fresh value does the call build
//!    a stored key and go through single flight.
//! 3. **Single-flight**: identical concurrent misses await one shared fetch; if it fails every
//!    waiter gets the same `Arc<E>` and nothing is stored.
//! 4. **Stale-while-revalidate**: within `stale_while_revalidate` past the TTL the old value is
//!    served at once as [`CacheStatus::Stale`] and exactly one background refresh runs.
//! 5. **Stale-if-error**: when the fetch fails (an error, or 500/502/503/504 after every cluster
//!    was tried) and a value within `stale_if_error` past its TTL exists, it is returned as
//!    [`CacheStatus::Stale`].
//! 6. **Storing**: only 2xx (not 206); `Cache-Control: no-store`/`no-cache`/`private` and
//!    `Vary: *` are not stored and `max-age` shortens the TTL when `respect_cache_control`;
//!    the cache is bounded in bytes (key + headers + body) through moka's weigher.
//! 7. **Invalidation**: [`ResultCache::invalidate`] (exact path), [`ResultCache::invalidate_prefix`]
//!    and [`ResultCache::clear`]; fetches in flight at that moment do not store their results.
//!
//! Freshness is judged on `tokio::time::Instant`, so behaviour over time is testable with a
//! paused clock; moka only reclaims memory after the last stale window.
//!
//! How the engine uses it (crate-internal, so not compiled as a doctest):
//!
//! ```ignore
//! use federation_core::cache::{CacheStatus, FetchOutcome, ResultCache};
//! use federation_core::config::model::CachePolicy;
//! # async fn demo() -> Result<(), std::sync::Arc<std::io::Error>> {
//! let cache = ResultCache::new("user", &CachePolicy::default());
//! let key = cache
//!     .key(&http::Method::GET, "/api/v1/users/42", None, &http::HeaderMap::new(), b"")
//!     .expect("GET is cacheable by default");
//! let (response, status) = cache
//!     .get_or_fetch(key, || async {
//!         Ok::<_, std::io::Error>(FetchOutcome::new(200, http::HeaderMap::new(), "{}".into()))
//!     })
//!     .await?;
//! assert_eq!((response.status, status), (200, CacheStatus::Miss));
//! # Ok(()) }
//! ```

mod control;
mod entry;
mod flight;
mod key;
mod stats;
mod store;

#[cfg(test)]
mod behaviour_tests;

pub use entry::{CacheStatus, CachedResponse, FetchOutcome};
pub use key::CacheKey;
pub(crate) use key::find_byte;
pub use stats::CacheStats;
pub use store::ResultCache;
