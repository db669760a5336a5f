//! Where synced changes land: the service's own store, through the [`SyncTarget`] trait.
//!
//! Keeping versions in a second database beside the service's records means two writes that can
//! disagree after a crash. Instead the service stores each entity's [`EntityState`] (record and
//! sync stamp) itself and lets the subscriber read it back: conflict checks and redelivery
//! detection then survive restarts and rebalances with no extra store. [`MemoryTarget`] is the
//! ready in-memory target for tests; [`RedisTarget`](crate::RedisTarget) keeps one Redis hash
//! per entity with its stamp.

use std::collections::{BTreeMap, HashMap};
use std::sync::atomic::{AtomicU32, Ordering};
use std::sync::{Arc, Mutex};

use futures_util::future::BoxFuture;

use crate::error::TargetError;
use crate::model::{ChangeEvent, Effect, EntityState};
use crate::purge::{PurgeTombstones, TombstoneCutoff};

/// A change the subscriber decided to write.
#[derive(Clone, Debug)]
pub struct AppliedChange {
    /// The event that caused it.
    pub event: ChangeEvent,
    /// What the event did (`applied`, `merged` or `superseded`: the last only records the event
    /// as seen).
    pub effect: Effect,
    /// The entity's new state: store it whole, next to (or as) the record.
    pub state: EntityState,
    /// The state this decision was made from. A target that can compare-and-set should write
    /// only if the stored state is still this one, and else return [`TargetError::stale`].
    pub previous: Option<EntityState>,
}

/// The service's store as the subscriber sees it. Implementations must be safe to call
/// concurrently for different entities; calls for one entity never overlap.
pub trait SyncTarget: Send + Sync + 'static {
    /// The stored state of an entity, `None` if the target has never stored it.
    fn read<'a>(
        &'a self,
        entity_type: &'a str,
        entity_id: &'a str,
    ) -> BoxFuture<'a, Result<Option<EntityState>, TargetError>>;

    /// Store `change.state` for `change.event`'s entity (and do whatever the service does on a
    /// change). An error is retried with backoff, then the event is dead-lettered.
    fn write<'a>(&'a self, change: &'a AppliedChange) -> BoxFuture<'a, Result<(), TargetError>>;
}

#[derive(Debug, Default)]
struct Inner {
    /// By entity type, then id: looked up by `&str`, with no key allocated per read or write.
    states: HashMap<String, HashMap<String, EntityState>>,
    /// Writes per event id, with their effect (tests assert "applied exactly once").
    writes: Vec<(String, Effect)>,
}

/// An in-memory [`SyncTarget`]. Cheap to clone; clones share the store. Can be told to fail the
/// next writes (for retry and dead-letter tests).
#[derive(Clone, Debug, Default)]
pub struct MemoryTarget {
    inner: Arc<Mutex<Inner>>,
    failures: Arc<AtomicU32>,
}

impl MemoryTarget {
    /// An empty target.
    pub fn new() -> Self {
        Self::default()
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Inner> {
        self.inner.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// The stored state of an entity.
    pub fn get(&self, entity_type: &str, entity_id: &str) -> Option<EntityState> {
        self.lock()
            .states
            .get(entity_type)
            .and_then(|of_type| of_type.get(entity_id))
            .cloned()
    }

    /// Store a state directly, unconditionally.
    pub fn put(&self, entity_type: &str, entity_id: &str, state: EntityState) {
        self.lock()
            .states
            .entry(entity_type.to_owned())
            .or_default()
            .insert(entity_id.to_owned(), state);
    }

    /// Every stored entity, ordered by type and id.
    pub fn snapshot(&self) -> BTreeMap<(String, String), EntityState> {
        let inner = self.lock();
        let entities = inner.states.iter().flat_map(|(entity_type, of_type)| {
            of_type
                .iter()
                .map(|(id, state)| ((entity_type.clone(), id.clone()), state.clone()))
        });
        entities.collect()
    }

    /// How many times the event `event_id` was written with `effect`.
    pub fn writes_of(&self, event_id: &str, effect: Effect) -> usize {
        self.lock()
            .writes
            .iter()
            .filter(|(id, e)| id == event_id && *e == effect)
            .count()
    }

    /// Every write so far, in order: event id and effect.
    pub fn writes(&self) -> Vec<(String, Effect)> {
        self.lock().writes.clone()
    }

    /// Fail the next `n` writes with an error.
    pub fn fail_next_writes(&self, n: u32) {
        self.failures.store(n, Ordering::SeqCst);
    }
}

impl SyncTarget for MemoryTarget {
    fn read<'a>(
        &'a self,
        entity_type: &'a str,
        entity_id: &'a str,
    ) -> BoxFuture<'a, Result<Option<EntityState>, TargetError>> {
        let state = self.get(entity_type, entity_id);
        Box::pin(async move { Ok(state) })
    }

    fn write<'a>(&'a self, change: &'a AppliedChange) -> BoxFuture<'a, Result<(), TargetError>> {
        let failing = self
            .failures
            .fetch_update(Ordering::SeqCst, Ordering::SeqCst, |n| n.checked_sub(1))
            .is_ok();
        let (entity_type, id) = (&change.event.entity_type, &change.event.entity_id);
        let result = {
            let mut inner = self.lock();
            let stored = inner.states.get(entity_type).and_then(|t| t.get(id));
            if failing {
                Err(TargetError::new(
                    "injected write failure (MemoryTarget::fail_next_writes)",
                ))
            } else if stored != change.previous.as_ref() {
                Err(TargetError::stale())
            } else {
                let state = change.state.clone();
                if let Some(of_type) = inner.states.get_mut(entity_type) {
                    match of_type.get_mut(id) {
                        Some(slot) => *slot = state,
                        None => {
                            of_type.insert(id.clone(), state);
                        }
                    }
                } else {
                    let of_type = HashMap::from([(id.clone(), state)]);
                    inner.states.insert(entity_type.clone(), of_type);
                }
                inner
                    .writes
                    .push((change.event.stamp.event_id.clone(), change.effect));
                Ok(())
            }
        };
        Box::pin(async move { result })
    }
}

impl PurgeTombstones for MemoryTarget {
    fn purge_tombstones(&self, cutoff: TombstoneCutoff) -> BoxFuture<'_, Result<u64, TargetError>> {
        let mut inner = self.lock();
        let mut purged = 0;
        for of_type in inner.states.values_mut() {
            let before = of_type.len();
            of_type.retain(|_, state| !cutoff.allows(state));
            purged += (before - of_type.len()) as u64;
        }
        Box::pin(async move { Ok(purged) })
    }
}
