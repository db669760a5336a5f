//! Filling the cache: the body of one single-flight fetch (re-check, fetch, store, unregister).

use std::future::Future;
use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::Duration;

use tokio::time::Instant;

use super::Inner;
use crate::cache::control::{freshness, is_error_status};
use crate::cache::entry::{CachedResponse, FetchOutcome};
use crate::cache::flight::FlightOutput;
use crate::cache::key::CacheKey;
use crate::cache::l2::codec::now_ms;

/// The body of one flight: re-checks the cache (a flight may have finished just before this one
/// registered), fetches, stores, then unregisters.
pub(super) async fn run_fetch<F, Fut, E>(
    inner: Arc<Inner>,
    key: CacheKey,
    id: u64,
    fetch: F,
) -> FlightOutput<E>
where
    F: FnOnce() -> Fut + Send + 'static,
    Fut: Future<Output = Result<FetchOutcome, E>> + Send + 'static,
    E: Send + Sync + 'static,
{
    let epoch = inner.epoch.load(Ordering::Acquire);
    let result = match inner.entries.get(&key).await {
        Some(entry) if Instant::now() < entry.fresh_until => Ok(entry),
        _ => match inner.lease_or_wait(&key, epoch).await {
            Err(from_fleet) => Ok(from_fleet),
            Ok(token) => {
                inner.counters.fetch();
                let as_of = now_ms();
                match fetch().await {
                    Ok(outcome) => {
                        let response = inner.store(&key, outcome, epoch).await;
                        inner.share(&key, &response, as_of, epoch, token);
                        Ok(response)
                    }
                    Err(err) => {
                        inner.release(&key, token);
                        Err(Arc::new(err))
                    }
                }
            }
        },
    };
    inner.flights.finish::<E>(key, id);
    result
}

impl Inner {
    /// Wraps `outcome`, storing it when storable and no invalidation happened since `epoch`.
    pub(super) async fn store(
        &self,
        key: &CacheKey,
        outcome: FetchOutcome,
        epoch: u64,
    ) -> Arc<CachedResponse> {
        let now = Instant::now();
        let status = outcome.status;
        let fresh = freshness(
            status,
            &outcome.headers,
            self.ttl,
            self.respect_cache_control,
        );
        let Some(fresh) = fresh else {
            if !is_error_status(status) {
                // Upstream answered but says the old value is no longer reusable.
                self.entries.invalidate(key).await;
            }
            let zero = Duration::ZERO;
            return Arc::new(CachedResponse::new(
                outcome,
                Arc::clone(&self.service),
                now,
                zero,
                zero,
                zero,
            ));
        };
        let response = Arc::new(CachedResponse::new(
            outcome,
            Arc::clone(&self.service),
            now,
            fresh,
            self.swr,
            self.sie,
        ));
        self.keep(key, &response, epoch).await;
        response
    }
}
