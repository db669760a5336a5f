//! Single-flight: identical concurrent misses share one upstream fetch.
//!
//! Without it, a popular entry expiring sends every concurrent caller upstream at once (a
//! stampede). The first caller for a key creates a shared future and registers a weak handle to
//! it; later callers find it and await the same future. Any holder drives it, so the fetch
//! survives the first caller being cancelled; when every holder is gone the fetch is dropped and
//! the next caller starts a new one. The future removes its own registration when it finishes.
//!
//! One table serves every error type: registrations are keyed by the cache key *and* the error's
//! `TypeId`, and the stored weak handle is downcast back to its concrete type, so every waiter
//! gets the leader's error as the same `Arc<E>` (nothing is cached on error).

use std::any::{Any, TypeId};
use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};

use futures_util::FutureExt;
use futures_util::future::{BoxFuture, Shared, WeakShared};

use super::entry::CachedResponse;
use super::key::CacheKey;

/// What a flight resolves to: the response, or the fetch error shared by every waiter.
pub(crate) type FlightOutput<E> = Result<Arc<CachedResponse>, Arc<E>>;

/// A flight every waiter can await.
pub(crate) type Flight<E> = Shared<BoxFuture<'static, FlightOutput<E>>>;

type FlightKey = (CacheKey, TypeId);

/// A registration: the flight's id and its erased weak handle.
type Slot = (u64, Box<dyn Registration>);

/// A weak flight handle with its concrete type erased.
trait Registration: Send {
    fn alive(&self) -> bool;
    fn as_any(&self) -> &dyn Any;
}

impl<E: Send + Sync + 'static> Registration for WeakShared<BoxFuture<'static, FlightOutput<E>>> {
    fn alive(&self) -> bool {
        self.upgrade().is_some()
    }

    fn as_any(&self) -> &dyn Any {
        self
    }
}

/// Registrations of flights in progress.
#[derive(Default)]
pub(crate) struct Flights {
    next_id: AtomicU64,
    map: Mutex<HashMap<FlightKey, Slot>>,
}

/// Above this many registrations, dead ones (every holder gone) are swept on the next insert.
const SWEEP_AT: usize = 1024;

impl Flights {
    /// Joins the flight for (`key`, `E`) or starts one with `start(id)`; the flag is true for the
    /// caller that started it. The started future must call [`Self::finish`] with `id` when done.
    pub(crate) fn join_or_start<E: Send + Sync + 'static>(
        &self,
        key: &CacheKey,
        start: impl FnOnce(u64) -> BoxFuture<'static, FlightOutput<E>>,
    ) -> (Flight<E>, bool) {
        let flight_key = (key.clone(), TypeId::of::<E>());
        let mut map = crate::lock::lock(&self.map);
        let existing = map.get(&flight_key).and_then(|(_, reg)| {
            reg.as_any()
                .downcast_ref::<WeakShared<BoxFuture<'static, FlightOutput<E>>>>()
                .and_then(WeakShared::upgrade)
        });
        if let Some(flight) = existing {
            return (flight, false);
        }
        let id = self.next_id.fetch_add(1, Ordering::Relaxed);
        let flight = start(id).shared();
        if map.len() >= SWEEP_AT {
            map.retain(|_, (_, reg)| reg.alive());
        }
        if let Some(weak) = flight.downgrade() {
            map.insert(flight_key, (id, Box::new(weak)));
        }
        (flight, true)
    }

    /// Removes the registration of flight `id` for (`key`, `E`) if it is still the current one.
    pub(crate) fn finish<E: 'static>(&self, key: CacheKey, id: u64) {
        let flight_key = (key, TypeId::of::<E>());
        let mut map = crate::lock::lock(&self.map);
        if map
            .get(&flight_key)
            .is_some_and(|(current, _)| *current == id)
        {
            map.remove(&flight_key);
        }
    }

    /// Flights currently registered.
    #[cfg(test)]
    pub(crate) fn len(&self) -> usize {
        crate::lock::lock(&self.map).len()
    }
}
