//! Forgetting deleted entities, never before the tombstone window has passed.
//!
//! A delete is kept as a tombstone so that a late update written before it cannot bring the
//! entity back. Keeping tombstones forever grows the store without bound; dropping one too early
//! lets exactly that resurrection happen. The subscriber refuses changes older than
//! `sync.tombstone_window` for entities with nothing stored (`too_old`), so a tombstone may go
//! once it is older than that same window, by the same clock. A [`TombstoneCutoff`] is that
//! point in time; only the sync runtime makes one (from its configured window and its clock), so
//! no purge through this API can remove a tombstone the subscriber may still need.

use std::time::Duration;

use futures_util::future::BoxFuture;

use crate::error::TargetError;
use crate::model::EntityState;

/// Tombstones stamped before this wall-clock time (ms since the epoch) may be purged:
/// `now - sync.tombstone_window`, read from the sync runtime's clock. Obtain one from
/// [`FederatedDataSync::tombstone_cutoff`](crate::FederatedDataSync::tombstone_cutoff).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct TombstoneCutoff {
    before_ms: u64,
}

impl TombstoneCutoff {
    /// The cutoff at `now_ms` for a window of `window`. Crate-private on purpose: a caller-chosen
    /// cutoff could be later than the subscriber's window allows.
    pub(crate) fn new(now_ms: u64, window: Duration) -> Self {
        let window_ms = u64::try_from(window.as_millis()).unwrap_or(u64::MAX);
        Self {
            before_ms: now_ms.saturating_sub(window_ms),
        }
    }

    /// Tombstones whose stamp's wall time is strictly below this may be purged.
    pub fn before_ms(&self) -> u64 {
        self.before_ms
    }

    /// Whether `state` is a tombstone old enough to purge: the entity is deleted and its
    /// version (the delete) was stamped before the cutoff. The subscriber then treats any change
    /// written before that delete as `too_old` (same window, same comparison), so forgetting the
    /// tombstone changes no outcome.
    pub fn allows(&self, state: &EntityState) -> bool {
        state.is_deleted() && state.version.hlc.wall_ms < self.before_ms
    }
}

/// A target that can forget old tombstones (implemented by [`MemoryTarget`] and
/// [`RedisTarget`]); run it with
/// [`FederatedDataSync::purge_tombstones`](crate::FederatedDataSync::purge_tombstones).
///
/// [`MemoryTarget`]: crate::MemoryTarget
/// [`RedisTarget`]: crate::RedisTarget
pub trait PurgeTombstones: Send + Sync {
    /// Remove every stored entity for which [`TombstoneCutoff::allows`] holds, atomically per
    /// entity (an entity recreated or deleted again meanwhile is kept); returns how many went.
    fn purge_tombstones(&self, cutoff: TombstoneCutoff) -> BoxFuture<'_, Result<u64, TargetError>>;
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::{Hlc, Stamp};

    fn state(deleted: bool, wall_ms: u64) -> EntityState {
        EntityState {
            data: (!deleted).then(crate::model::Record::empty),
            version: Stamp::new(
                "zervigo",
                Hlc {
                    wall_ms,
                    logical: 3,
                },
            ),
            fields: Default::default(),
            tombstone: None,
            seen: Default::default(),
            heads: Default::default(),
        }
    }

    #[test]
    fn only_deleted_entities_older_than_the_window_go() {
        let cutoff = TombstoneCutoff::new(10_000, Duration::from_secs(7));
        assert_eq!(cutoff.before_ms(), 3_000);
        assert!(cutoff.allows(&state(true, 2_999)));
        assert!(
            !cutoff.allows(&state(true, 3_000)),
            "exactly at the window edge: kept"
        );
        assert!(
            !cutoff.allows(&state(false, 1)),
            "a live entity is never purged"
        );
    }

    #[test]
    fn a_window_longer_than_the_clock_purges_nothing() {
        let cutoff = TombstoneCutoff::new(5, Duration::from_secs(7));
        assert_eq!(cutoff.before_ms(), 0);
        assert!(!cutoff.allows(&state(true, 0)));
    }

    #[tokio::test]
    async fn memory_target_purges_old_tombstones_only() {
        let store = crate::MemoryTarget::new();
        store.put("user", "old", state(true, 2_999));
        store.put("user", "young", state(true, 3_000));
        store.put("user", "live", state(false, 1));
        let cutoff = TombstoneCutoff::new(10_000, Duration::from_secs(7));
        assert_eq!(store.purge_tombstones(cutoff).await, Ok(1));
        let left: Vec<String> = store.snapshot().into_keys().map(|(_, id)| id).collect();
        assert_eq!(left, ["live", "young"]);
        assert_eq!(
            store.purge_tombstones(cutoff).await,
            Ok(0),
            "nothing left to purge"
        );
    }
}
