//! Publishing a change: stamp it, send it to the local cluster's change topic, return once the
//! broker holds it durably.
//!
//! A change that is "sent" but not yet durable is lost when the broker fails, and a retry without
//! idempotence can duplicate or reorder it. The producer is idempotent with `acks=all`, the key is
//! `type/id` (one partition per entity, so order holds), and `publish` returns only after the
//! delivery report, or fails with a [`SyncErrorKind::Timeout`](crate::SyncErrorKind::Timeout)
//! naming the deadline when the broker is down. The stamp's clock first observes the base version,
//! so a change made after seeing version `v` always orders after `v`.

use std::time::Duration;

use rdkafka::error::{KafkaError, RDKafkaErrorCode};
use rdkafka::producer::future_producer::Delivery;
use rdkafka::producer::{FutureProducer, FutureRecord};
use rdkafka::util::Timeout;
use serde_json::{Map, Value};

use crate::error::{SyncError, SyncErrorKind};
use crate::model::{
    ChangeEvent, ENVELOPE_VERSION, EntityState, Operation, Record, Stamp, Window, decide, envelope,
};
use crate::runtime::Shared;

/// A change to publish.
#[derive(Clone, Debug)]
pub struct Change {
    /// A configured entity type.
    pub entity_type: String,
    /// The entity's id.
    pub entity_id: String,
    /// What the change does.
    pub operation: Operation,
    /// The record (a JSON object; ignored for deletes).
    pub data: Map<String, Value>,
    /// The state the writer based the change on, as read from its store (`None`: none stored).
    pub base: Option<EntityState>,
}

impl Change {
    /// A change with no base and no data.
    pub fn new(
        entity_type: impl Into<String>,
        entity_id: impl Into<String>,
        operation: Operation,
    ) -> Self {
        Self {
            entity_type: entity_type.into(),
            entity_id: entity_id.into(),
            operation,
            data: Map::new(),
            base: None,
        }
    }

    /// With this record. A JSON value that is not an object is stored under `"value"`.
    #[must_use]
    pub fn data(mut self, data: Value) -> Self {
        self.data = match data {
            Value::Object(map) => map,
            Value::Null => Map::new(),
            other => Map::from_iter([("value".to_string(), other)]),
        };
        self
    }

    /// Based on this stored state.
    #[must_use]
    pub fn base(mut self, base: Option<EntityState>) -> Self {
        self.base = base;
        self
    }
}

/// A published change.
#[derive(Clone, Debug)]
pub struct Published {
    /// Its stamp (event id, origin, HLC).
    pub stamp: Stamp,
    /// The event as sent (for [`FederatedDataSync::apply_local`](crate::FederatedDataSync::apply_local)).
    pub event: ChangeEvent,
    /// The entity's state after the change: store it with the record, and pass it as the base of
    /// the next change.
    pub state: EntityState,
    /// The partition it was written to.
    pub partition: i32,
    /// Its offset.
    pub offset: i64,
}

/// Stamp, encode and send `change`; wait for the durable acknowledgement up to `deadline`.
pub(crate) async fn publish(
    shared: &Shared,
    producer: &FutureProducer<crate::kafka_stats::StatsContext>,
    change: Change,
    deadline: Duration,
) -> Result<Published, SyncError> {
    let policy = shared.policy(&change.entity_type).ok_or_else(|| {
        SyncError::new(
            SyncErrorKind::InvalidChange,
            format!(
                "entity type {:?} is not configured under sync.entities (configured: {})",
                change.entity_type,
                shared.entity_names()
            ),
        )
    })?;
    let (event, base) = stamp(shared, change);
    envelope::check(&event, &shared.config)
        .map_err(|poison| SyncError::new(SyncErrorKind::InvalidChange, poison.to_string()))?;
    // Sized once for a typical envelope (the record plus ≈ 250 bytes of stamp and names), not
    // grown from serde_json's 128 bytes by doubling.
    let mut payload = Vec::with_capacity(512);
    // A struct of strings, numbers and JSON values always serializes.
    let _ = serde_json::to_writer(&mut payload, &event);
    if payload.len() as u64 > shared.config.max_message_bytes {
        return Err(SyncError::new(
            SyncErrorKind::InvalidChange,
            format!(
                "the encoded change is {} bytes; sync.max_message_bytes allows {}",
                payload.len(),
                shared.config.max_message_bytes
            ),
        ));
    }
    let window = Window {
        now_ms: event.published_at_ms,
        tombstone_ms: u64::MAX,
    };
    let state = decide(policy, base.as_ref(), &event, window)
        .next
        .unwrap_or_else(|| EntityState::from_event(&event));
    let topic = shared.changes_topic();
    let key = event.key();
    let record = FutureRecord::to(topic)
        .key(key.as_str())
        .payload(payload.as_slice());
    let delivery = deliver(shared, producer, record, deadline).await?;
    shared.metrics.published(&event.entity_type);
    shared.status.pending(&event, shared.remotes());
    Ok(Published {
        stamp: event.stamp.clone(),
        event,
        state,
        partition: delivery.partition,
        offset: delivery.offset,
    })
}

/// Send `record` and wait for its durable acknowledgement, up to `deadline`.
///
/// The deadline is ours, not only the producer's: librdkafka fails a message after
/// `message.timeout.ms` (= `sync.publish_timeout`), but it scans for expired messages about once
/// a second, so relying on it alone returned a 3 s deadline's error after 3 to 7 s. A caller's
/// deadline must hold to the timer's precision (`tests/sync_publish_deadline.rs`); the timer
/// costs about 1 µs per publish (docs/BENCHMARKS.md, G9 representation).
async fn deliver(
    shared: &Shared,
    producer: &FutureProducer<crate::kafka_stats::StatsContext>,
    record: FutureRecord<'_, str, [u8]>,
    deadline: Duration,
) -> Result<Delivery, SyncError> {
    let what = || format!("publishing to {}", shared.changes_topic());
    let send = producer.send(record, Timeout::After(deadline));
    match tokio::time::timeout(deadline, send).await {
        Err(_) => Err(SyncError::timeout(&what(), deadline)),
        Ok(Err((e, _))) => Err(send_error(&what(), &e, deadline)),
        Ok(Ok(delivery)) => Ok(delivery),
    }
}

/// A failed send: librdkafka's own timeouts (the message's, or a queue that stayed full) are
/// the caller's deadline passing; anything else is Kafka's error.
fn send_error(what: &str, error: &KafkaError, deadline: Duration) -> SyncError {
    match error.rdkafka_error_code() {
        Some(RDKafkaErrorCode::MessageTimedOut | RDKafkaErrorCode::QueueFull) => {
            SyncError::timeout(what, deadline)
        }
        _ => SyncError::kafka(what, error),
    }
}

/// The stamped event for `change` (its record moves into the event), and the change's base:
/// the clock first observes everything the base had seen.
fn stamp(shared: &Shared, change: Change) -> (ChangeEvent, Option<EntityState>) {
    let seen = change
        .base
        .as_ref()
        .map(|b| b.seen.clone())
        .unwrap_or_default();
    let latest_seen = seen
        .values()
        .copied()
        .chain(change.base.as_ref().map(|b| b.version.hlc))
        .max();
    let hlc = match latest_seen {
        Some(h) => shared.clock.observe(h),
        None => shared.clock.now(),
    };
    let deleted = change.operation == Operation::Delete;
    let event = ChangeEvent {
        v: ENVELOPE_VERSION,
        entity_type: change.entity_type,
        entity_id: change.entity_id,
        operation: change.operation,
        data: if deleted {
            Record::empty()
        } else {
            Record::from(change.data)
        },
        base: change.base.as_ref().map(|b| b.version.clone()),
        seen,
        stamp: Stamp::new(shared.local.clone(), hlc),
        published_at_ms: shared.clock.physical_ms(),
    };
    (event, change.base)
}
