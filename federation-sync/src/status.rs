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

use crate::model::{ChangeEvent, Hlc};

/// An apply acknowledgement, written by a consuming cluster to the origin's acks topic.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Ack {
    /// The change.
    pub event_id: String,
    /// Its timestamp (a newer change of the entity replaces an older one's status).
    pub hlc: Hlc,
    /// Its entity type.
    pub entity_type: String,
    /// Its entity id.
    pub entity_id: String,
    /// The cluster that processed it.
    pub cluster: String,
    /// What happened there.
    pub status: TargetStatus,
}

/// The state of one change in one target cluster.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case", tag = "state")]
pub enum TargetStatus {
    /// Not acknowledged yet.
    Pending,
    /// Processed: `effect` says what it did (`applied`, `merged`, `superseded`, `duplicate`).
    Completed {
        /// The effect.
        effect: String,
    },
    /// Dead-lettered there.
    Failed {
        /// Why.
        reason: String,
    },
}

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

/// Latest status per entity, fed by publishes and acknowledgements.
#[derive(Debug, Default)]
pub(crate) struct StatusTracker {
    latest: Mutex<HashMap<(String, String), SyncStatus>>,
}

impl StatusTracker {
    fn lock(&self) -> std::sync::MutexGuard<'_, HashMap<(String, String), SyncStatus>> {
        self.latest.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// `event` was published: pending in every cluster of `targets`.
    pub(crate) fn pending(&self, event: &ChangeEvent, targets: Vec<String>) {
        let status = SyncStatus {
            event_id: event.stamp.event_id.clone(),
            hlc: event.stamp.hlc,
            targets: targets
                .into_iter()
                .map(|t| (t, TargetStatus::Pending))
                .collect(),
        };
        let key = (event.entity_type.clone(), event.entity_id.clone());
        let mut latest = self.lock();
        // An ack read before the publish returned (fast consumers) is kept.
        if let Some(known) = latest.get(&key)
            && known.event_id == status.event_id
        {
            let mut merged = status;
            for (cluster, state) in &known.targets {
                merged.targets.insert(cluster.clone(), state.clone());
            }
            latest.insert(key, merged);
            return;
        }
        latest.insert(key, status);
    }

    /// An acknowledgement arrived. Acks of older changes of the entity are ignored; acks of
    /// changes this process did not publish (or published before a restart) are recorded.
    #[cfg(test)]
    pub(crate) fn ack(&self, ack: Ack, targets: &[String]) {
        self.acks(vec![ack], targets);
    }

    /// Acknowledgements arrived (one record's worth), each as in [`ack`](Self::ack).
    pub(crate) fn acks(&self, acks: Vec<Ack>, targets: &[String]) {
        let mut latest = self.lock();
        for ack in acks {
            record_ack(&mut latest, ack, targets);
        }
    }

    /// The status of `entity_type`/`entity_id`'s latest change.
    pub(crate) fn get(&self, entity_type: &str, entity_id: &str) -> Option<SyncStatus> {
        self.lock()
            .get(&(entity_type.to_string(), entity_id.to_string()))
            .cloned()
    }

    /// How many entities have a change still pending somewhere.
    pub(crate) fn pending_count(&self) -> usize {
        self.lock()
            .values()
            .filter(|s| s.overall() == Overall::Pending)
            .count()
    }
}

/// Record one acknowledgement into the latest statuses.
fn record_ack(latest: &mut HashMap<(String, String), SyncStatus>, ack: Ack, targets: &[String]) {
    let key = (ack.entity_type.clone(), ack.entity_id.clone());
    let fresh = || SyncStatus {
        event_id: ack.event_id.clone(),
        hlc: ack.hlc,
        targets: targets
            .iter()
            .map(|t| (t.clone(), TargetStatus::Pending))
            .collect(),
    };
    let entry = latest.entry(key).or_insert_with(fresh);
    if entry.event_id != ack.event_id {
        if entry.hlc > ack.hlc {
            return;
        }
        *entry = fresh();
    }
    entry.targets.insert(ack.cluster, ack.status);
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
            event_id: e.stamp.event_id.clone(),
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
        tracker.pending(&e, targets.clone());
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
        tracker.pending(&new, targets.clone());
        tracker.ack(ack(&old, "looma", done()), &targets);
        let status = tracker.get("user", "1").expect("status");
        assert_eq!(
            (status.event_id.as_str(), status.overall()),
            (new.stamp.event_id.as_str(), Overall::Pending)
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
            Some(new.stamp.event_id.clone())
        );
        // An ack read before its publish returned is kept when the publish records pending.
        let early = StatusTracker::default();
        early.ack(ack(&new, "looma", done()), &targets);
        early.pending(&new, targets.clone());
        assert_eq!(
            early.get("user", "1").map(|s| s.overall()),
            Some(Overall::Completed)
        );
    }
}
