//! The change event on the wire (JSON), and the checks that turn bad input into a clear
//! dead-letter reason instead of a stalled partition or a crashed consumer.
//!
//! Anything can land on a topic: a truncated write, a message from a newer producer, a type one
//! side has not configured, a record missing a field the other side requires. Decoding therefore
//! never panics and never returns "skip": every message is either a valid [`ChangeEvent`] or a
//! [`Poison`] naming what is wrong, which the subscriber sends to the dead-letter topic.

use serde::{Deserialize, Serialize};

use federation_core::config::SyncConfig;

use super::clusters::ClusterMap;
use super::hlc::Hlc;
use super::record::Record;
use super::stamp::Stamp;

/// The envelope format version written and accepted.
pub const ENVELOPE_VERSION: u32 = 1;

/// What a change did.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Operation {
    /// A new entity.
    Create,
    /// A changed entity (for `merge_fields` types: the fields present in `data`).
    Update,
    /// A removed entity (leaves a tombstone).
    Delete,
}

impl Operation {
    /// `create`, `update` or `delete`.
    pub fn name(self) -> &'static str {
        match self {
            Operation::Create => "create",
            Operation::Update => "update",
            Operation::Delete => "delete",
        }
    }
}

/// One stamped change of one entity, as published.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct ChangeEvent {
    /// Envelope format version ([`ENVELOPE_VERSION`]).
    pub v: u32,
    /// Configured entity type (`user`).
    pub entity_type: String,
    /// The entity's id within its type.
    pub entity_id: String,
    /// What the change did.
    pub operation: Operation,
    /// The record (a JSON object) for create and update; empty for delete. Read from the
    /// envelope as checked JSON text, not parsed into a map ([`Record`]).
    #[serde(default)]
    pub data: Record,
    /// The version the writer based the change on (`None`: it saw no version).
    #[serde(default)]
    pub base: Option<Stamp>,
    /// What the writer had seen of this entity: the largest timestamp from each cluster
    /// (including its own earlier changes). An event whose `seen` covers a stored version was
    /// written after it; one that does not is concurrent with it: a conflict.
    #[serde(default)]
    pub seen: ClusterMap<Hlc>,
    /// This change's stamp.
    pub stamp: Stamp,
    /// Origin wall clock when published (ms since the epoch), for the end-to-end latency metric.
    #[serde(default)]
    pub published_at_ms: u64,
}

impl ChangeEvent {
    /// Whether this change was written after seeing `version` (same cluster and not older, or
    /// covered by what the writer had seen).
    pub fn covers(&self, version: &Stamp) -> bool {
        super::stamp::written_after(&self.stamp, &self.seen, version)
    }

    /// The Kafka message key: `type/id`, so every change of one entity lands in one partition.
    pub fn key(&self) -> String {
        entity_key(&self.entity_type, &self.entity_id)
    }

    /// The JSON encoding.
    pub fn encode(&self) -> Vec<u8> {
        // A struct of strings, numbers and JSON values always serializes.
        serde_json::to_vec(self).unwrap_or_default()
    }
}

/// The message key of an entity: `type/id`.
pub fn entity_key(entity_type: &str, entity_id: &str) -> String {
    format!("{entity_type}/{entity_id}")
}

/// Why a message cannot be applied; sent with it to the dead-letter topic.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum Poison {
    /// The payload is not JSON (or not UTF-8).
    #[error("not JSON: {0}")]
    NotJson(String),
    /// JSON, but not a change event of a known envelope version, or a field is wrong.
    #[error("schema violation: {0}")]
    Schema(String),
    /// A well-formed event of a type this cluster does not sync.
    #[error("unknown entity type {entity_type:?}; configured: {configured}")]
    UnknownType {
        /// The type in the event.
        entity_type: String,
        /// The configured types.
        configured: String,
    },
    /// Larger than `sync.max_message_bytes`.
    #[error("oversized: {size} bytes, limit {limit} (sync.max_message_bytes)")]
    Oversized {
        /// Message size.
        size: usize,
        /// The limit.
        limit: u64,
    },
    /// A handler kept failing (not a decoding problem: retried, then dead-lettered).
    #[error("handler failed after {attempts} attempts: {error}")]
    Handler {
        /// Attempts made.
        attempts: u32,
        /// The last error.
        error: String,
    },
}

impl Poison {
    /// A short machine-readable reason: `not_json`, `schema`, `unknown_type`, `oversized`,
    /// `handler` (the `reason` label of the dead-letter metric).
    pub fn kind(&self) -> &'static str {
        match self {
            Poison::NotJson(_) => "not_json",
            Poison::Schema(_) => "schema",
            Poison::UnknownType { .. } => "unknown_type",
            Poison::Oversized { .. } => "oversized",
            Poison::Handler { .. } => "handler",
        }
    }
}

/// Decode and check one message payload against the configuration.
pub fn decode(payload: &[u8], config: &SyncConfig) -> Result<ChangeEvent, Poison> {
    if payload.len() as u64 > config.max_message_bytes {
        return Err(Poison::Oversized {
            size: payload.len(),
            limit: config.max_message_bytes,
        });
    }
    // One pass straight into the event; only a payload that fails it is parsed again, to tell
    // JSON of the wrong shape (`schema`) from no JSON at all (`not_json`).
    let event: ChangeEvent = serde_json::from_slice(payload).map_err(|error| {
        match serde_json::from_slice::<serde::de::IgnoredAny>(payload) {
            Ok(_) => Poison::Schema(error.to_string()),
            Err(not_json) => Poison::NotJson(not_json.to_string()),
        }
    })?;
    check(&event, config)?;
    Ok(event)
}

/// The checks a decoded event must pass (also applied before publishing).
pub fn check(event: &ChangeEvent, config: &SyncConfig) -> Result<(), Poison> {
    if event.v != ENVELOPE_VERSION {
        return Err(Poison::Schema(format!(
            "envelope version {} is not supported (this build reads {ENVELOPE_VERSION})",
            event.v
        )));
    }
    let Some(entity) = config.entity(&event.entity_type) else {
        let configured: Vec<&str> = config.entities.iter().map(|e| e.name.as_str()).collect();
        return Err(Poison::UnknownType {
            entity_type: event.entity_type.clone(),
            configured: configured.join(", "),
        });
    };
    if event.entity_id.is_empty() {
        return Err(Poison::Schema("entity_id is empty".into()));
    }
    if event.stamp.origin.is_empty() || event.stamp.event_id.is_empty() {
        return Err(Poison::Schema(
            "stamp.origin and stamp.event_id must be non-empty".into(),
        ));
    }
    if event.operation != Operation::Delete {
        let missing = event.data.missing(&entity.required_fields);
        if !missing.is_empty() {
            return Err(Poison::Schema(format!(
                "{} of {:?} lacks required field(s) {}",
                event.operation.name(),
                event.entity_type,
                missing.join(", ")
            )));
        }
    }
    Ok(())
}
