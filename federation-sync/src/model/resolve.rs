//! Deciding what an incoming change does to the stored entity: the pure core of the sync.
//!
//! Both clusters run this same function on the same inputs, so they reach the same result with
//! no coordination. For each event, in order:
//!
//! 1. **Redelivery** — the entity's `seen` timestamp for the event's origin is at or past the
//!    event: nothing to do ([`Effect::Duplicate`]).
//! 2. **Nothing stored** — apply, unless the event is older than the tombstone window (a forgotten
//!    delete may have followed it: [`Effect::TooOld`]).
//! 3. **Causal successor** — the event's base version is the stored version: the writer saw what
//!    is stored, so the change applies (its stamp is larger: the publisher's clock observed the
//!    base).
//! 4. **Conflict** — otherwise the writer did not see the stored version. The entity type's
//!    policy picks a result that depends only on the two versions, never on which side is local:
//!    `last_writer_wins` (larger stamp: hybrid time, then cluster name), `prefer_cluster` (the
//!    owner's version; between two of one cluster, last writer), `merge_fields` (newest value per
//!    field, deletes remove older fields) or a callback given the two versions in stamp order.
//!    Every conflict is reported with both versions.

use std::sync::Arc;

use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};

use super::clusters::ClusterMap;
use super::envelope::ChangeEvent;
use super::record::Record;
use super::stamp::Stamp;
use super::state::{EntityState, Head};

/// One version of an entity, as given to a conflict callback and recorded with a conflict.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Version {
    /// The stamp of the change that produced it.
    pub stamp: Stamp,
    /// The record; `None` for a delete.
    pub data: Option<Map<String, Value>>,
}

/// A conflict callback's answer.
#[derive(Clone, Debug, PartialEq)]
pub enum Resolution {
    /// Keep the first (older-stamped) version.
    First,
    /// Keep the second (newer-stamped) version.
    Second,
    /// A merged record; it takes the newer stamp.
    Merged(Map<String, Value>),
}

/// Decides a conflict between two versions, given in stamp order (older first) so that both
/// clusters ask the same question. Must be deterministic; for more than two concurrent versions
/// of one entity to converge, it must also be commutative and associative (a merge).
pub type ConflictCallback = Arc<dyn Fn(&Version, &Version) -> Resolution + Send + Sync>;

/// A conflict policy ready to run (the configured [`ConflictPolicy`], plus the callback).
///
/// [`ConflictPolicy`]: federation_core::config::ConflictPolicy
#[derive(Clone)]
pub enum Policy {
    /// Larger stamp wins.
    LastWriterWins,
    /// The owning cluster's version wins.
    PreferCluster(String),
    /// Field-level last writer wins.
    MergeFields,
    /// The callback decides.
    Callback(ConflictCallback),
}

impl std::fmt::Debug for Policy {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.name())
    }
}

impl Policy {
    /// The policy's configuration name (a metric label).
    pub fn name(&self) -> &'static str {
        match self {
            Policy::LastWriterWins => "last_writer_wins",
            Policy::PreferCluster(_) => "prefer_cluster",
            Policy::MergeFields => "merge_fields",
            Policy::Callback(_) => "callback",
        }
    }
}

/// What the event did.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Effect {
    /// The event's change is now the record.
    Applied,
    /// The record combines the event with what was stored.
    Merged,
    /// The stored version won; the event changed nothing but is remembered as seen.
    Superseded,
    /// Already processed (a redelivery); nothing written.
    Duplicate,
    /// Older than the tombstone window for an entity with no stored state; not applied.
    TooOld,
}

impl Effect {
    /// Lower-case name (a metric label).
    pub fn name(self) -> &'static str {
        match self {
            Effect::Applied => "applied",
            Effect::Merged => "merged",
            Effect::Superseded => "superseded",
            Effect::Duplicate => "duplicate",
            Effect::TooOld => "too_old",
        }
    }
}

/// Which version a conflict kept.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Winner {
    /// The stored version.
    Stored,
    /// The incoming event.
    Incoming,
    /// A combination of both.
    Merged,
}

/// A detected conflict, with both versions and the outcome (logged, counted, and written to the
/// conflict topic).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Conflict {
    /// Entity type.
    pub entity_type: String,
    /// Entity id.
    pub entity_id: String,
    /// The policy that resolved it.
    pub policy: String,
    /// The version stored when the event arrived.
    pub stored: Version,
    /// The incoming event's version.
    pub incoming: Version,
    /// Which one was kept.
    pub winner: Winner,
    /// The resulting version.
    pub resolved: Version,
}

/// The outcome of [`decide`].
#[derive(Clone, Debug, PartialEq)]
pub struct Decision {
    /// What the event did.
    pub effect: Effect,
    /// The state to store, when it changed (`None`: write nothing).
    pub next: Option<EntityState>,
    /// The conflict, when there was one.
    pub conflict: Option<Conflict>,
}

/// Time inputs of [`decide`].
#[derive(Clone, Copy, Debug)]
pub struct Window {
    /// Now, physical ms since the epoch.
    pub now_ms: u64,
    /// The tombstone window in ms.
    pub tombstone_ms: u64,
}

/// Decide what `event` does to `current` under `policy` (see the module docs).
pub fn decide(
    policy: &Policy,
    current: Option<&EntityState>,
    event: &ChangeEvent,
    window: Window,
) -> Decision {
    let Some(current) = current else {
        let too_old = event.stamp.hlc.wall_ms.saturating_add(window.tombstone_ms) < window.now_ms;
        if too_old {
            return decision(Effect::TooOld, None, None);
        }
        let next = match policy {
            Policy::MergeFields => merged_into(&EntityState::empty(event.stamp.clone()), event),
            _ => EntityState::from_event(event),
        };
        return decision(Effect::Applied, Some(next), None);
    };
    if current.has_seen(&event.stamp) {
        return decision(Effect::Duplicate, None, None);
    }
    match policy {
        Policy::MergeFields => decide_merge(current, event),
        _ => decide_heads(policy, current, event),
    }
}

fn decision(effect: Effect, next: Option<EntityState>, conflict: Option<Conflict>) -> Decision {
    Decision {
        effect,
        next,
        conflict,
    }
}

fn merged_into(current: &EntityState, event: &ChangeEvent) -> EntityState {
    let mut next = current.clone();
    next.merge_fields(event);
    next
}

fn version_of(state: &EntityState) -> Version {
    Version {
        stamp: state.version.clone(),
        data: state.data.as_ref().map(Record::to_map),
    }
}

fn version_of_head(head: &Head) -> Version {
    Version {
        stamp: head.stamp.clone(),
        data: head.data.as_ref().map(Record::to_map),
    }
}

/// The version a resolution keeps: a stamp and the shared record (no copy of it).
struct Kept {
    stamp: Stamp,
    data: Option<Record>,
}

impl Kept {
    fn of(head: &Head) -> Self {
        Kept {
            stamp: head.stamp.clone(),
            data: head.data.clone(),
        }
    }
}

/// `merge_fields`: a field-level join; a conflict when the writer had not seen the stored
/// version.
fn decide_merge(current: &EntityState, event: &ChangeEvent) -> Decision {
    let next = merged_into(current, event);
    if event.covers(&current.version) {
        return decision(Effect::Applied, Some(next), None);
    }
    let incoming = Version {
        stamp: event.stamp.clone(),
        data: (event.operation != super::envelope::Operation::Delete).then(|| event.data.to_map()),
    };
    let winner = if next.record() == current.record() {
        Winner::Stored
    } else if next.data.as_ref().map(Record::to_map) == incoming.data {
        Winner::Incoming
    } else {
        Winner::Merged
    };
    let conflict = conflict(
        Policy::MergeFields.name(),
        current,
        (event, incoming),
        winner,
        &next,
    );
    decision(effect_of(winner), Some(next), Some(conflict))
}

/// Every other policy: keep the latest head per cluster, drop heads another head was written
/// after, and resolve what is left.
fn decide_heads(policy: &Policy, current: &EntityState, event: &ChangeEvent) -> Decision {
    // The stored record and the head the event replaces are not copied: both are replaced.
    let origin = &event.stamp.origin;
    let mut heads = current.heads.clone();
    heads.insert(origin, Head::of(event));
    // A head another head was written after is dropped (flags first: `retain` visits in order).
    let covered: smallvec::SmallVec<[bool; 4]> = heads
        .values()
        .map(|head| {
            heads
                .values()
                .any(|other| other.stamp != head.stamp && other.covers(&head.stamp))
        })
        .collect();
    let mut covered = covered.into_iter();
    heads.retain(|_, _| !covered.next().unwrap_or(false));
    let (resolved, winner) = resolve_heads(policy, &heads, event);
    let mut next = EntityState {
        data: resolved.data,
        version: resolved.stamp,
        fields: current.fields.clone(),
        tombstone: current.tombstone.clone(),
        seen: current.seen.clone(),
        heads,
    };
    next.saw(&event.stamp);
    let concurrent = next.heads.len() > 1 && next.heads.contains_key(&event.stamp.origin);
    if !concurrent {
        let effect = if next.version == event.stamp {
            Effect::Applied
        } else {
            Effect::Superseded
        };
        return decision(effect, Some(next), None);
    }
    let winner = match winner {
        Winner::Merged => Winner::Merged,
        _ if next.version == event.stamp => Winner::Incoming,
        _ if next.record() == current.record() => Winner::Stored,
        _ => Winner::Merged,
    };
    let incoming = version_of_head(next.heads.get(origin).unwrap_or(&Head::of(event)));
    let conflict = conflict(policy.name(), current, (event, incoming), winner, &next);
    decision(effect_of(winner), Some(next), Some(conflict))
}

fn effect_of(winner: Winner) -> Effect {
    match winner {
        Winner::Stored => Effect::Superseded,
        Winner::Incoming => Effect::Applied,
        Winner::Merged => Effect::Merged,
    }
}

fn conflict(
    policy: &str,
    current: &EntityState,
    incoming: (&ChangeEvent, Version),
    winner: Winner,
    next: &EntityState,
) -> Conflict {
    let (event, incoming) = incoming;
    Conflict {
        entity_type: event.entity_type.clone(),
        entity_id: event.entity_id.clone(),
        policy: policy.to_string(),
        stored: version_of(current),
        incoming,
        winner,
        resolved: version_of(next),
    }
}

/// The visible version of the heads under `policy`; depends only on the set of heads (never on
/// which is local). `event` is among them; it stands in if the set were empty.
fn resolve_heads(policy: &Policy, heads: &ClusterMap<Head>, event: &ChangeEvent) -> (Kept, Winner) {
    let mut sorted: Vec<&Head> = heads.values().collect();
    sorted.sort_by(|a, b| a.stamp.cmp(&b.stamp));
    let Some(newest) = sorted.last().copied() else {
        return (Kept::of(&Head::of(event)), Winner::Incoming);
    };
    let picked = match policy {
        Policy::PreferCluster(owner) => sorted
            .iter()
            .rev()
            .find(|h| *h.stamp.origin == **owner)
            .copied()
            .unwrap_or(newest),
        Policy::Callback(callback) => return fold_callback(callback, &sorted, newest),
        Policy::LastWriterWins | Policy::MergeFields => newest,
    };
    (Kept::of(picked), Winner::Incoming)
}

/// Fold the heads, oldest first, through the callback.
fn fold_callback(callback: &ConflictCallback, sorted: &[&Head], fallback: &Head) -> (Kept, Winner) {
    let mut iter = sorted.iter();
    let mut acc = version_of_head(iter.next().copied().unwrap_or(fallback));
    let mut winner = Winner::Incoming;
    for head in iter {
        let next = version_of_head(head);
        acc = match callback(&acc, &next) {
            Resolution::First => acc,
            Resolution::Second => next,
            Resolution::Merged(data) => {
                winner = Winner::Merged;
                Version {
                    stamp: next.stamp,
                    data: Some(data),
                }
            }
        };
    }
    let kept = Kept {
        stamp: acc.stamp,
        data: acc.data.map(Record::from),
    };
    (kept, winner)
}
