//! Sync status: is a published change applied on every other cluster yet?
//!
//! Without it, "did my change reach looma?" has no answer short of reading looma's database. Each
//! consuming cluster, after deciding an event, writes an acknowledgement to the origin's acks
//! topic (on the origin's brokers; many per record, [`crate::acks`]): applied (with its effect)
//! or failed (with the reason). The
//! origin reads its acks topic from the beginning, so the status of the latest change of each
//! entity is `pending` until every other cluster acknowledged it, then `completed`, or `failed`
//! with the reason, and survives a restart of the origin process.

use std::collections::{BTreeMap, HashMap};
use std::sync::Mutex;

use serde::{Deserialize, Serialize};

pub(crate) use crate::ack_wire::AckView;
pub use crate::ack_wire::{Ack, TargetStatus};
use crate::model::{ChangeEvent, Hlc};

/// The status of the latest published change of one entity.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct SyncStatus {
    /// The change.
    pub event_id: String,
    /// Its timestamp.
    pub hlc: Hlc,
    /// Per target cluster.
    pub targets: BTreeMap<String, TargetStatus>,
}

/// The overall state of a [`SyncStatus`].
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Overall {
    /// Some cluster has not acknowledged yet.
    Pending,
    /// Every cluster processed it.
    Completed,
    /// Some cluster dead-lettered it.
    Failed,
}

impl SyncStatus {
    /// Failed if any target failed, else pending if any is pending, else completed.
    pub fn overall(&self) -> Overall {
        let states = self.targets.values();
        if states
            .clone()
            .any(|s| matches!(s, TargetStatus::Failed { .. }))
        {
            Overall::Failed
        } else if states.clone().any(|s| *s == TargetStatus::Pending) {
            Overall::Pending
        } else {
            Overall::Completed
        }
    }
}

/// Latest status per entity (type → id → status), fed by publishes and acknowledgements.
///
/// Every publish and every ack updates one entry; entities are published again and again, so an
/// existing entry is updated in place (its key, event id and target names reused) and a lookup
/// takes `&str`s: the steady state allocates nothing per publish.
#[derive(Debug, Default)]
pub(crate) struct StatusTracker {
    latest: Mutex<HashMap<String, HashMap<String, SyncStatus>>>,
}

type Latest = HashMap<String, HashMap<String, SyncStatus>>;

impl StatusTracker {
    fn lock(&self) -> std::sync::MutexGuard<'_, Latest> {
        self.latest.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// `event` was published: pending in every cluster of `targets`.
    pub(crate) fn pending(&self, event: &ChangeEvent, targets: &[String]) {
        let mut latest = self.lock();
        let (id, hlc) = (&event.stamp.event_id, event.stamp.hlc);
        match entry(&mut latest, &event.entity_type, &event.entity_id) {
            // An ack read before the publish returned (fast consumers) is kept.
            Some(known) if *known.event_id == **id => {
                for target in targets {
                    if !known.targets.contains_key(target) {
                        known.targets.insert(target.clone(), TargetStatus::Pending);
                    }
                }
            }
            Some(known) => reset(known, id, hlc, targets),
            None => insert(
                &mut latest,
                &event.entity_type,
                &event.entity_id,
                id,
                hlc,
                targets,
            ),
        }
    }

    /// An acknowledgement arrived. Acks of older changes of the entity are ignored; acks of
    /// changes this process did not publish (or published before a restart) are recorded.
    #[cfg(test)]
    pub(crate) fn ack(&self, ack: Ack, targets: &[String]) {
        let record = serde_json::to_vec(&[ack]).expect("an ack serializes");
        let views: Vec<AckView<'_>> = serde_json::from_slice(&record).expect("and reads back");
        self.acks(&views, targets);
    }

    /// Acknowledgements arrived (one record's worth), each as in [`ack`](Self::ack).
    pub(crate) fn acks(&self, acks: &[AckView<'_>], targets: &[String]) {
        let mut latest = self.lock();
        for ack in acks {
            record_ack(&mut latest, ack, targets);
        }
    }

    /// The status of `entity_type`/`entity_id`'s latest change.
    pub(crate) fn get(&self, entity_type: &str, entity_id: &str) -> Option<SyncStatus> {
        self.lock().get(entity_type)?.get(entity_id).cloned()
    }

    /// How many entities have a change still pending somewhere.
    pub(crate) fn pending_count(&self) -> usize {
        self.lock()
            .values()
            .flat_map(HashMap::values)
            .filter(|s| s.overall() == Overall::Pending)
            .count()
    }
}

/// The entry of `entity_type`/`entity_id`, if any.
fn entry<'a>(
    latest: &'a mut Latest,
    entity_type: &str,
    entity_id: &str,
) -> Option<&'a mut SyncStatus> {
    latest.get_mut(entity_type)?.get_mut(entity_id)
}

/// A new entry: change `event_id` at `hlc`, pending in every cluster of `targets`.
fn insert(
    latest: &mut Latest,
    entity_type: &str,
    entity_id: &str,
    event_id: &str,
    hlc: Hlc,
    targets: &[String],
) {
    let status = SyncStatus {
        event_id: event_id.to_string(),
        hlc,
        targets: targets
            .iter()
            .map(|t| (t.clone(), TargetStatus::Pending))
            .collect(),
    };
    let by_id = match latest.get_mut(entity_type) {
        Some(by_id) => by_id,
        None => latest.entry(entity_type.to_string()).or_default(),
    };
    by_id.insert(entity_id.to_string(), status);
}

/// Make `status` the status of change `event_id` at `hlc`, pending in every cluster of
/// `targets`, reusing its strings where the clusters are the same.
fn reset(status: &mut SyncStatus, event_id: &str, hlc: Hlc, targets: &[String]) {
    status.event_id.clear();
    status.event_id.push_str(event_id);
    status.hlc = hlc;
    let same = status.targets.len() == targets.len()
        && targets.iter().all(|t| status.targets.contains_key(t));
    if same {
        for state in status.targets.values_mut() {
            *state = TargetStatus::Pending;
        }
    } else {
        status.targets = targets
            .iter()
            .map(|t| (t.clone(), TargetStatus::Pending))
            .collect();
    }
}

/// Record one acknowledgement into the latest statuses.
fn record_ack(latest: &mut Latest, ack: &AckView<'_>, targets: &[String]) {
    let (entity_type, entity_id) = (&*ack.entity_type, &*ack.entity_id);
    let known = latest
        .get(entity_type)
        .and_then(|by_id| by_id.get(entity_id));
    match known {
        Some(known) if known.event_id == ack.event_id => {}
        Some(known) if known.hlc > ack.hlc => return,
        Some(_) => {
            if let Some(known) = entry(latest, entity_type, entity_id) {
                reset(known, &ack.event_id, ack.hlc, targets);
            }
        }
        None => insert(
            latest,
            entity_type,
            entity_id,
            &ack.event_id,
            ack.hlc,
            targets,
        ),
    }
    let Some(status) = entry(latest, entity_type, entity_id) else {
        return;
    };
    match status.targets.get_mut(&*ack.cluster) {
        Some(state) if ack.is(state) => {}
        Some(state) => *state = ack.target_status(),
        None => {
            status
                .targets
                .insert(ack.cluster.to_string(), ack.target_status());
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::{ENVELOPE_VERSION, Operation, Stamp};

    fn event(ms: u64) -> ChangeEvent {
        ChangeEvent {
            v: ENVELOPE_VERSION,
            entity_type: "user".into(),
            entity_id: "1".into(),
            operation: Operation::Update,
            data: Default::default(),
            base: None,
            seen: Default::default(),
            stamp: Stamp::new(
                "zervigo",
                Hlc {
                    wall_ms: ms,
                    logical: 0,
                },
            ),
            published_at_ms: ms,
        }
    }

    fn ack(e: &ChangeEvent, cluster: &str, status: TargetStatus) -> Ack {
        Ack {
            event_id: e.stamp.event_id.to_string(),
            hlc: e.stamp.hlc,
            entity_type: "user".into(),
            entity_id: "1".into(),
            cluster: cluster.into(),
            status,
        }
    }

    fn done() -> TargetStatus {
        TargetStatus::Completed {
            effect: "applied".into(),
        }
    }

    #[test]
    fn pending_until_every_target_acknowledged_then_completed_or_failed() {
        let targets = vec!["looma".to_string(), "third".to_string()];
        let tracker = StatusTracker::default();
        let e = event(10);
        tracker.pending(&e, &targets);
        assert_eq!(
            tracker.get("user", "1").map(|s| s.overall()),
            Some(Overall::Pending)
        );
        tracker.ack(ack(&e, "looma", done()), &targets);
        assert_eq!(tracker.pending_count(), 1);
        tracker.ack(
            ack(
                &e,
                "third",
                TargetStatus::Failed {
                    reason: "boom".into(),
                },
            ),
            &targets,
        );
        assert_eq!(
            tracker.get("user", "1").map(|s| s.overall()),
            Some(Overall::Failed)
        );
        assert_eq!(tracker.pending_count(), 0);
    }

    #[test]
    fn an_ack_of_an_older_change_is_ignored_and_a_newer_change_replaces_the_status() {
        let targets = vec!["looma".to_string()];
        let tracker = StatusTracker::default();
        let (old, new) = (event(10), event(20));
        tracker.pending(&new, &targets);
        tracker.ack(ack(&old, "looma", done()), &targets);
        let status = tracker.get("user", "1").expect("status");
        assert_eq!(
            (status.event_id.as_str(), status.overall()),
            (&*new.stamp.event_id, Overall::Pending)
        );
        // After a restart, acks are read from the beginning: the newest change's status wins.
        let rebuilt = StatusTracker::default();
        rebuilt.ack(ack(&old, "looma", done()), &targets);
        rebuilt.ack(
            ack(&new, "looma", TargetStatus::Failed { reason: "x".into() }),
            &targets,
        );
        assert_eq!(
            rebuilt.get("user", "1").map(|s| s.event_id),
            Some(new.stamp.event_id.to_string())
        );
        // An ack read before its publish returned is kept when the publish records pending.
        let early = StatusTracker::default();
        early.ack(ack(&new, "looma", done()), &targets);
        early.pending(&new, &targets);
        assert_eq!(
            early.get("user", "1").map(|s| s.overall()),
            Some(Overall::Completed)
        );
    }

    #[test]
    fn a_new_change_of_an_acknowledged_entity_is_pending_again_in_every_target() {
        let targets = vec!["looma".to_string(), "third".to_string()];
        let tracker = StatusTracker::default();
        let (first, second) = (event(10), event(20));
        tracker.pending(&first, &targets);
        for cluster in &targets {
            tracker.ack(ack(&first, cluster, done()), &targets);
        }
        assert_eq!(
            tracker.get("user", "1").map(|s| s.overall()),
            Some(Overall::Completed)
        );
        tracker.pending(&second, &targets);
        let status = tracker.get("user", "1").expect("status");
        assert_eq!(*status.event_id, *second.stamp.event_id);
        assert!(
            status.targets.values().all(|s| *s == TargetStatus::Pending),
            "{status:?}"
        );
        // The same change acknowledged twice with the same status stays as it was.
        tracker.ack(ack(&second, "looma", done()), &targets);
        tracker.ack(ack(&second, "looma", done()), &targets);
        assert_eq!(tracker.pending_count(), 1);
        tracker.ack(ack(&second, "third", done()), &targets);
        assert_eq!(tracker.pending_count(), 0);
    }
}
