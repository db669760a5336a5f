//! What a target stores next to each record: the version and what has been seen.
//!
//! Versions live with the data, so a restarted consumer or one that took over a partition in a
//! rebalance needs no second database to tell a redelivery from a new change or to detect a
//! conflict: it reads the entity's [`EntityState`] from the target and decides from that alone.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};
use serde_json::Value;

use super::clusters::ClusterMap;
use super::envelope::{ChangeEvent, Operation};
use super::hlc::Hlc;
use super::record::Record;
use super::stamp::Stamp;

/// A record and its sync metadata.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct EntityState {
    /// The record; `None` while the entity is deleted (a tombstone). Shared: the state holds
    /// it once although both `data` and the winning cluster's head refer to it, and reading or
    /// writing a state copies a pointer, not the record.
    pub data: Option<Record>,
    /// The current version: the stamp of the change that produced the record (for
    /// `merge_fields`, the largest stamp merged in).
    pub version: Stamp,
    /// `merge_fields` only: the stamp of each field's current value.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub fields: BTreeMap<String, Stamp>,
    /// `merge_fields` only: the latest delete; field values older than it are gone.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub tombstone: Option<Stamp>,
    /// The largest timestamp processed from each origin cluster: an event at or below it is a
    /// redelivery (events of one entity from one origin arrive in order). A writer passes it
    /// along with its change (the event's `seen`), which is how causality is known.
    #[serde(default)]
    pub seen: ClusterMap<Hlc>,
    /// Every policy but `merge_fields`: the latest version from each cluster that no other
    /// cluster's version was written after. One head: no conflict. Several: concurrent versions,
    /// resolved by the policy into `data`/`version` (the same heads give the same result on
    /// every side, whatever the arrival order).
    #[serde(default, skip_serializing_if = "ClusterMap::is_empty")]
    pub heads: ClusterMap<Head>,
}

/// The latest version from one cluster.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Head {
    /// Its stamp.
    pub stamp: Stamp,
    /// Its record (`None`: a delete).
    pub data: Option<Record>,
    /// What its writer had seen.
    #[serde(default)]
    pub seen: ClusterMap<Hlc>,
}

impl Head {
    /// The head of a single event.
    pub fn of(event: &ChangeEvent) -> Self {
        Head {
            stamp: event.stamp.clone(),
            data: (event.operation != Operation::Delete).then(|| event.data.clone()),
            seen: event.seen.clone(),
        }
    }

    /// Whether this version was written after seeing `other`.
    pub fn covers(&self, other: &Stamp) -> bool {
        super::stamp::written_after(&self.stamp, &self.seen, other)
    }
}

impl EntityState {
    /// The state a single event produces on its own (nothing stored before).
    pub fn from_event(event: &ChangeEvent) -> Self {
        let head = Head::of(event);
        let mut state = EntityState {
            data: head.data.clone(),
            version: event.stamp.clone(),
            fields: BTreeMap::new(),
            tombstone: None,
            seen: ClusterMap::new(),
            heads: [(&*event.stamp.origin, head)].into_iter().collect(),
        };
        state.saw(&event.stamp);
        state
    }

    /// An empty record to merge fields into (`merge_fields`).
    pub(crate) fn empty(version: Stamp) -> Self {
        EntityState {
            data: Some(Record::empty()),
            version,
            fields: BTreeMap::new(),
            tombstone: None,
            seen: ClusterMap::new(),
            heads: ClusterMap::new(),
        }
    }

    /// Whether the entity is currently deleted.
    pub fn is_deleted(&self) -> bool {
        self.data.is_none()
    }

    /// Whether an event with `stamp` was already processed here.
    pub fn has_seen(&self, stamp: &Stamp) -> bool {
        self.seen
            .get(&stamp.origin)
            .is_some_and(|h| *h >= stamp.hlc)
    }

    /// Record `stamp` as processed.
    pub fn saw(&mut self, stamp: &Stamp) {
        let entry = self.seen.get_or_insert_with(&stamp.origin, Hlc::default);
        *entry = (*entry).max(stamp.hlc);
    }

    /// The record and version, which both clusters must agree on once every change arrived.
    pub fn record(&self) -> (Option<&Record>, &Stamp) {
        (self.data.as_ref(), &self.version)
    }

    /// Field-level merge of `event` into this state (`merge_fields`): each field keeps its
    /// newest value, a delete removes fields older than it. Order-independent and idempotent, so
    /// both sides end equal whatever order changes arrive in.
    pub(crate) fn merge_fields(&mut self, event: &ChangeEvent) {
        let mut live: BTreeMap<String, (Stamp, Value)> = BTreeMap::new();
        if let Some(data) = self.data.take() {
            for (key, value) in data.to_map() {
                let stamp = self
                    .fields
                    .get(&key)
                    .cloned()
                    .unwrap_or_else(|| self.version.clone());
                live.insert(key, (stamp, value));
            }
        }
        let mut tombstone = self.tombstone.take();
        if event.operation == Operation::Delete {
            if tombstone.as_ref().is_none_or(|t| *t < event.stamp) {
                tombstone = Some(event.stamp.clone());
            }
        } else if tombstone.as_ref().is_none_or(|t| *t < event.stamp) {
            for (key, value) in event.data.to_map() {
                let newer = live.get(&key).is_none_or(|(s, _)| *s < event.stamp);
                if newer {
                    live.insert(key, (event.stamp.clone(), value));
                }
            }
        }
        if let Some(t) = &tombstone {
            live.retain(|_, (s, _)| *s > *t);
        }
        if event.stamp > self.version {
            self.version = event.stamp.clone();
        }
        self.fields = live
            .iter()
            .map(|(k, (s, _))| (k.clone(), s.clone()))
            .collect();
        let deleted = tombstone.as_ref() == Some(&self.version);
        self.data = (!deleted).then(|| {
            let record: serde_json::Map<String, Value> =
                live.into_iter().map(|(k, (_, v))| (k, v)).collect();
            Record::from(record)
        });
        self.tombstone = tombstone;
        self.saw(&event.stamp);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::hlc::Hlc;

    fn event(origin: &str, ms: u64) -> ChangeEvent {
        ChangeEvent {
            v: crate::model::ENVELOPE_VERSION,
            entity_type: "user".into(),
            entity_id: "1".into(),
            operation: Operation::Update,
            data: Record::parse(r#"{"name": "Ada"}"#).expect("an object"),
            base: None,
            seen: ClusterMap::new(),
            stamp: Stamp::new(
                origin,
                Hlc {
                    wall_ms: ms,
                    logical: 0,
                },
            ),
            published_at_ms: ms,
        }
    }

    #[test]
    fn the_record_is_held_once_and_stored_as_before() {
        let state = EntityState::from_event(&event("zervigo", 10));
        let head = state.heads.get("zervigo").and_then(|h| h.data.as_ref());
        let (Some(data), Some(head)) = (state.data.as_ref(), head) else {
            panic!("record and head: {state:?}");
        };
        assert!(Record::ptr_eq(data, head), "one record, two references");
        let copy = state.clone();
        assert!(
            copy.data.as_ref().is_some_and(|d| Record::ptr_eq(d, data)),
            "a copied state shares its record"
        );
        // The stored form is the plain object under `data` and under the head, as before.
        let json = serde_json::to_value(&state).expect("encodes");
        assert_eq!(json["data"], serde_json::json!({"name": "Ada"}));
        assert_eq!(
            json["heads"]["zervigo"]["data"],
            serde_json::json!({"name": "Ada"})
        );
        let back: EntityState = serde_json::from_value(json).expect("decodes");
        assert_eq!(back, state);
    }

    #[test]
    fn a_decided_state_shares_its_record_with_its_head() {
        use crate::model::resolve::{Policy, Window, decide};
        let current = EntityState::from_event(&event("zervigo", 10));
        let window = Window {
            now_ms: 20,
            tombstone_ms: u64::MAX,
        };
        let next = decide(
            &Policy::LastWriterWins,
            Some(&current),
            &event("zervigo", 20),
            window,
        )
        .next
        .expect("a later change of the same cluster applies");
        let head = next.heads.get("zervigo").and_then(|h| h.data.as_ref());
        assert!(
            next.data
                .as_ref()
                .zip(head)
                .is_some_and(|(d, h)| Record::ptr_eq(d, h)),
            "the kept head's record is the state's record: {next:?}"
        );
    }
}
