//! The result cache's side of the shared L2 tier: reading values from Redis into L1 (once per
//! key per process), turning wall-clock records into this process's instants, the fleet-wide
//! lease around a fetch, and invalidation: this process's entries dropped at once, every other
//! process's through the tier, and L1 entries dropped when another process invalidates.

use std::sync::Arc;
use std::sync::Weak;
use std::sync::atomic::Ordering;
use std::time::Duration;

use tokio::time::Instant;

use super::Counters;
use super::{Inner, ResultCache};
use crate::cache::control::freshness;
use crate::cache::entry::CachedResponse;
use crate::cache::home::on_home;
use crate::cache::key::CacheKey;
use crate::cache::l2::codec::{self, Record, now_ms};
use crate::cache::l2::{L2, Lease, Scope};
use crate::config::model::CachePolicy;
use crate::telemetry::Metrics;

/// The single-flight marker of an L2 lookup that found nothing usable.
pub(super) struct NothingInL2;

impl ResultCache {
    /// Like [`with_metrics`](Self::with_metrics), with the shared Redis tier when `policy.l2`
    /// is set (connected in the background; until then, and whenever Redis is away, the cache
    /// works from this process's memory). `wait_limit` bounds the wait for another process's
    /// fetch of the same key (give the call's total timeout).
    ///
    /// # Errors
    /// `cache.l2.password_env` names a variable that is unset, empty or not UTF-8.
    pub fn with_l2(
        service: &str,
        policy: &CachePolicy,
        metrics: &Metrics,
        wait_limit: Duration,
    ) -> Result<Self, crate::config::ConfigError> {
        let Some(l2_policy) = &policy.l2 else {
            return Ok(Self::with_metrics(service, policy, metrics));
        };
        let path = format!("services.{service}.cache.l2");
        let password = l2_policy.resolve_password(&path)?;
        let stale = policy
            .stale_while_revalidate
            .unwrap_or_default()
            .max(policy.stale_if_error.unwrap_or_default());
        let l2 = L2::new(
            service,
            l2_policy,
            password,
            policy.ttl,
            stale,
            Some(metrics.cache_l2_counters(service)),
        );
        let counters = Counters::with_metrics(Some(metrics.cache_counters(service)));
        let cache = Self::build(service, policy, counters, Some(l2.clone()), wait_limit);
        attach(&cache.inner, &l2);
        Ok(cache)
    }

    /// Progress counters of this cache's warm-ups.
    pub(crate) fn warm_counters(&self) -> &crate::cache::stats::WarmCounters {
        &self.inner.warm
    }

    /// Waits (at most `limit`) until the shared tier is connected and subscribed, so values
    /// fetched now are shared and not dropped by the first subscription's resync. At once
    /// without a tier.
    pub(crate) async fn l2_ready(&self, limit: Duration) {
        if let Some(l2) = &self.inner.l2 {
            l2.ready(limit).await;
        }
    }

    /// Warm-up progress, once one started.
    pub fn warm_health(&self) -> Option<crate::telemetry::WarmHealth> {
        self.inner.warm.health()
    }

    /// The value of `key` in the L2 tier, filled into L1; one Redis read per key per process at
    /// a time. `None` without a tier or a usable value.
    pub(super) async fn l2_lookup(&self, key: &CacheKey) -> Option<Arc<CachedResponse>> {
        let l2 = self.inner.l2.clone()?;
        let inner = Arc::clone(&self.inner);
        let flight_key = key.clone();
        let (flight, _) = self
            .inner
            .flights
            .join_or_start::<NothingInL2>(key, move |id| {
                on_home(async move {
                    let epoch = inner.epoch.load(Ordering::Acquire);
                    let found = match l2.get(flight_key.as_str(), flight_key.path()).await {
                        Some(record) => Ok(inner.fill_from_l2(&flight_key, record, epoch).await),
                        None => Err(Arc::new(NothingInL2)),
                    };
                    inner.flights.finish::<NothingInL2>(flight_key, id);
                    found
                })
            });
        flight.await.ok()
    }
}

impl Inner {
    /// A record read from L2 as this process's entry (instants derived from the wall-clock
    /// times), stored in L1 unless an invalidation happened since `epoch`.
    pub(super) async fn fill_from_l2(
        &self,
        key: &CacheKey,
        record: Record,
        epoch: u64,
    ) -> Arc<CachedResponse> {
        let now = Instant::now();
        let wall = now_ms();
        let fresh_until = if record.fresh_until_ms >= wall {
            let left = Duration::from_millis(record.fresh_until_ms - wall);
            now + left.min(self.ttl)
        } else {
            let overdue = Duration::from_millis(wall - record.fresh_until_ms);
            now.checked_sub(overdue).unwrap_or(now)
        };
        let age = Duration::from_millis(wall.saturating_sub(record.as_of_ms));
        let stored_at = now.checked_sub(age).unwrap_or(now);
        let response = Arc::new(CachedResponse::at(
            record.outcome,
            Arc::clone(&self.service),
            stored_at,
            fresh_until,
            self.swr,
            self.sie,
        ));
        self.keep(key, &response, epoch).await;
        response
    }

    /// Inserts `response` into L1 when it fits and nothing was invalidated since `epoch`.
    pub(super) async fn keep(&self, key: &CacheKey, response: &Arc<CachedResponse>, epoch: u64) {
        let weight = (key.weight() + response.weight()) as u64;
        if weight <= self.max_bytes && self.epoch.load(Ordering::Acquire) == epoch {
            self.entries.insert(key.clone(), Arc::clone(response)).await;
            if self.epoch.load(Ordering::Acquire) != epoch {
                // An invalidation raced with the insert: do not keep what it meant to drop.
                self.entries.invalidate(key).await;
            }
        }
    }

    /// Before fetching `key`: the fleet-wide lease. `Ok(token)` to fetch (holding the lease
    /// when `Some`), `Err(entry)` when another process's fetch produced a fresh value meanwhile.
    pub(super) async fn lease_or_wait(
        &self,
        key: &CacheKey,
        epoch: u64,
    ) -> Result<Option<String>, Arc<CachedResponse>> {
        let Some(l2) = &self.l2 else {
            return Ok(None);
        };
        match l2.lease(key.as_str()).await {
            Lease::Won(token) => Ok(Some(token)),
            Lease::Unavailable => Ok(None),
            Lease::Held => match l2.wait(key.as_str(), key.path(), self.wait_limit).await {
                Some(record) if record.fresh_until_ms > now_ms() => {
                    Err(self.fill_from_l2(key, record, epoch).await)
                }
                _ => Ok(None),
            },
        }
    }

    /// After a fetch of `key` that started at `as_of_ms`: stores `response` in L2 when it is
    /// storable and nothing was invalidated since `epoch`, and releases the lease `token`.
    pub(super) fn share(
        &self,
        key: &CacheKey,
        response: &CachedResponse,
        as_of_ms: u64,
        epoch: u64,
        token: Option<String>,
    ) {
        let Some(l2) = &self.l2 else {
            return;
        };
        let fresh = freshness(
            response.status,
            &response.headers,
            l2.fresh(),
            self.respect_cache_control,
        )
        .filter(|_| self.epoch.load(Ordering::Acquire) == epoch);
        let record = fresh.and_then(|fresh| {
            let until = as_of_ms.saturating_add(codec::px(fresh));
            codec::encode(
                as_of_ms,
                until,
                response.status,
                &response.headers,
                &response.body,
                (response.cluster.as_deref(), response.instance.as_deref()),
            )
        });
        l2.put(key.as_str(), record, fresh.unwrap_or_default(), token);
    }

    /// Releases the lease `token` of `key` after a failed fetch.
    pub(super) fn release(&self, key: &CacheKey, token: Option<String>) {
        if let (Some(l2), Some(token)) = (&self.l2, token) {
            l2.put(key.as_str(), None, Duration::ZERO, Some(token));
        }
    }
}

/// The L1 callback of a tier: drops what another process invalidated (or everything on a
/// resync) from the cache behind `weak`.
pub(super) fn l1_hook(weak: Weak<Inner>) -> Box<dyn Fn(&Scope) + Send + Sync> {
    Box::new(move |scope: &Scope| {
        if let Some(inner) = weak.upgrade() {
            inner.drop_local(scope.clone());
        }
    })
}

/// Connects the tier of a new cache to it.
pub(super) fn attach(inner: &Arc<Inner>, l2: &L2) {
    l2.set_l1_hook(l1_hook(Arc::downgrade(inner)));
    l2.start();
}

impl ResultCache {
    /// Drops every entry whose logical path is exactly `path` (any method, query or body), and
    /// keeps fetches already in flight from storing older results.
    ///
    /// With the shared tier, every other process drops them too (within the propagation
    /// delay), values of the path fetched before this call are never read back from Redis by
    /// this process, and they are deleted in Redis in the background.
    pub fn invalidate(&self, path: &str) {
        self.invalidate_scope(Scope::Path(path.to_owned()));
    }

    /// Drops every entry whose logical path starts with `prefix`.
    /// (Fleet-wide with the shared tier, as [`invalidate`](Self::invalidate).)
    pub fn invalidate_prefix(&self, prefix: &str) {
        self.invalidate_scope(Scope::Prefix(prefix.to_owned()));
    }

    /// Drops every entry (fleet-wide with the shared tier, as [`invalidate`](Self::invalidate)).
    pub fn clear(&self) {
        self.invalidate_scope(Scope::All);
    }

    fn invalidate_scope(&self, scope: Scope) {
        self.inner.drop_local(scope.clone());
        if let Some(l2) = &self.inner.l2 {
            l2.invalidate(scope);
        }
    }
}

impl Inner {
    /// Drops this process's entries `scope` covers, and keeps fetches in flight from storing.
    pub(super) fn drop_local(&self, scope: Scope) {
        self.epoch.fetch_add(1, Ordering::AcqRel);
        if let Scope::All = scope {
            self.entries.invalidate_all();
            return;
        }
        // Closures are enabled at build time, so this cannot fail; fall back to clearing
        // everything rather than leaving stale data if it ever does.
        if self
            .entries
            .invalidate_entries_if(move |k, _| scope.covers(k.path()))
            .is_err()
        {
            self.entries.invalidate_all();
        }
    }
}
