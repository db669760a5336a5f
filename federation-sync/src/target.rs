//! Where synced changes land: the service's own store, through the [`SyncTarget`] trait.
//!
//! Keeping versions in a second database beside the service's records means two writes that can
//! disagree after a crash. Instead the service stores each entity's [`EntityState`] (record and
//! sync stamp) itself and lets the subscriber read it back: conflict checks and redelivery
//! detection then survive restarts and rebalances with no extra store. [`MemoryTarget`] is the
//! ready in-memory target for tests; [`RedisTarget`](crate::RedisTarget) keeps one Redis hash
//! per entity with its stamp.

use std::collections::{BTreeMap, HashMap, VecDeque};
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
    /// The latest writes (at most [`WRITE_LOG`]): event id and effect (tests assert "applied
    /// exactly once").
    writes: VecDeque<(WriteId, Effect)>,
}

/// How many of the latest writes a [`MemoryTarget`] remembers.
pub const WRITE_LOG: usize = 65_536;

/// An event id in the write log: a generated id (32 lowercase hex digits) as its 128 bits, with
/// no allocation per write; any other id as its text.
#[derive(Debug, PartialEq, Eq)]
enum WriteId {
    Generated(u128),
    Other(Box<str>),
}

impl WriteId {
    fn of(event_id: &str) -> Self {
        let generated = event_id.len() == 32
            && event_id
                .bytes()
                .all(|b| matches!(b, b'0'..=b'9' | b'a'..=b'f'));
        match u128::from_str_radix(event_id, 16) {
            Ok(bits) if generated => WriteId::Generated(bits),
            _ => WriteId::Other(event_id.into()),
        }
    }

    fn text(&self) -> String {
        match self {
            WriteId::Generated(bits) => format!("{bits:032x}"),
            WriteId::Other(text) => text.to_string(),
        }
    }
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

    /// How many times the event `event_id` was written with `effect` (among the latest
    /// [`WRITE_LOG`] writes).
    pub fn writes_of(&self, event_id: &str, effect: Effect) -> usize {
        let wanted = WriteId::of(event_id);
        self.lock()
            .writes
            .iter()
            .filter(|(id, e)| *id == wanted && *e == effect)
            .count()
    }

    /// The latest writes (at most [`WRITE_LOG`]), in order: event id and effect.
    pub fn writes(&self) -> Vec<(String, Effect)> {
        let inner = self.lock();
        inner.writes.iter().map(|(id, e)| (id.text(), *e)).collect()
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
                if inner.writes.len() == WRITE_LOG {
                    inner.writes.pop_front();
                }
                let id = WriteId::of(&change.event.stamp.event_id);
                inner.writes.push_back((id, change.effect));
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

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::new_event_id;

    #[test]
    fn write_ids_read_back_as_written() {
        let generated = new_event_id();
        for id in [
            generated.as_str(),
            "replayed-7",
            "ABCDEF0123456789ABCDEF0123456789",
        ] {
            assert_eq!(WriteId::of(id).text(), id);
        }
        assert!(matches!(WriteId::of(&generated), WriteId::Generated(_)));
        assert!(matches!(
            WriteId::of("ABCDEF0123456789ABCDEF0123456789"),
            WriteId::Other(_)
        ));
    }

    #[tokio::test]
    async fn the_write_log_keeps_the_latest_writes_only() {
        let store = MemoryTarget::new();
        let event = |n: usize| ChangeEvent {
            v: crate::model::ENVELOPE_VERSION,
            entity_type: "user".into(),
            entity_id: n.to_string(),
            operation: crate::model::Operation::Create,
            data: crate::model::Record::empty(),
            base: None,
            seen: Default::default(),
            stamp: crate::model::Stamp::new("zervigo", crate::model::Hlc::default()),
            published_at_ms: 0,
        };
        let mut first = None;
        for n in 0..=WRITE_LOG {
            let event = event(n);
            first.get_or_insert_with(|| event.stamp.event_id.clone());
            let change = AppliedChange {
                state: EntityState::from_event(&event),
                event,
                effect: Effect::Applied,
                previous: None,
            };
            store.write(&change).await.expect("written");
        }
        let writes = store.writes();
        assert_eq!(writes.len(), WRITE_LOG);
        let first = first.expect("a first write");
        assert_eq!(
            store.writes_of(&first, Effect::Applied),
            0,
            "the oldest is gone"
        );
        assert_eq!(
            store.get("user", "0").map(|s| s.version.event_id),
            Some(first)
        );
    }
}
