//! Cache coherence of synced changes: [`CoherentTarget`] drops an entity's cached answers once a
//! change from the other cluster has been written.
//!
//! The failure prevented: a user updated in the other cluster is applied to this cluster's store,
//! yet every client keeps answering `GET /api/v1/users/42` from its cache (in process and in the
//! shared Redis tier) until the TTL runs out. The wrapper writes through to the service's own
//! [`SyncTarget`] and, only after that write succeeded, calls
//! [`FederatedServiceClient::invalidate_entity`] with the event's entity type and id; which paths
//! that drops is configured per service under `cache.entities` (e.g.
//! `user: ["/api/v1/users/{id}"]`). A failed write invalidates nothing (its retry will), and a
//! change that leaves the record as it was (`superseded`) keeps the cached answers.

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

use federation_core::client::FederatedServiceClient;
use futures_util::future::BoxFuture;

use crate::error::TargetError;
use crate::model::{Effect, EntityState};
use crate::target::{AppliedChange, SyncTarget};

/// A [`SyncTarget`] that, after each successful write that changed a record, invalidates the
/// entity's cached answers through `client` (in this process and, with `cache.l2`, in every
/// process sharing the tier). Subscribe with it in place of the plain target:
/// `sync.subscribe(Arc::new(CoherentTarget::new(store, client)))`.
pub struct CoherentTarget<T> {
    inner: T,
    client: FederatedServiceClient,
    invalidated: Arc<AtomicU64>,
}

impl<T: SyncTarget> CoherentTarget<T> {
    /// Wraps `inner`; `client` is the client whose caches serve the synced entities.
    pub fn new(inner: T, client: FederatedServiceClient) -> Self {
        Self {
            inner,
            client,
            invalidated: Arc::new(AtomicU64::new(0)),
        }
    }

    /// The wrapped target.
    pub fn inner(&self) -> &T {
        &self.inner
    }

    /// How many cached paths or prefixes applied changes have invalidated so far (an entity
    /// type no service maps under `cache.entities` adds nothing).
    pub fn invalidated(&self) -> u64 {
        self.invalidated.load(Ordering::Relaxed)
    }
}

/// Whether a written change altered the record (and so its cached answers are stale).
fn changes_record(effect: Effect) -> bool {
    matches!(effect, Effect::Applied | Effect::Merged)
}

impl<T: SyncTarget> SyncTarget for CoherentTarget<T> {
    fn read<'a>(
        &'a self,
        entity_type: &'a str,
        entity_id: &'a str,
    ) -> BoxFuture<'a, Result<Option<EntityState>, TargetError>> {
        self.inner.read(entity_type, entity_id)
    }

    fn write<'a>(&'a self, change: &'a AppliedChange) -> BoxFuture<'a, Result<(), TargetError>> {
        Box::pin(async move {
            self.inner.write(change).await?;
            if changes_record(change.effect) {
                let (entity_type, id) = (&change.event.entity_type, &change.event.entity_id);
                let dropped = self.client.invalidate_entity(entity_type, id);
                self.invalidated
                    .fetch_add(dropped as u64, Ordering::Relaxed);
                tracing::debug!(
                    entity_type = %entity_type,
                    entity_id = %id,
                    dropped,
                    "synced change invalidated cached answers"
                );
            }
            Ok(())
        })
    }
}
