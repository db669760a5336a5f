//! One received message, start to finish: decode, decide, write with retries, report.
//!
//! A consumer that stops on a bad message stalls its partition; one that skips silently loses
//! data. Every message here ends in exactly one of: written (or recognised as already written),
//! or on the dead-letter topic with its reason. Only then is the offset committed by the caller.

use std::time::Duration;

use rdkafka::message::{Header, OwnedHeaders};
use rdkafka::producer::FutureRecord;
use rdkafka::util::Timeout;

use crate::model::{ChangeEvent, Conflict, Decision, Effect, Poison, Window, decide, decode};
use crate::runtime::Shared;
use crate::status::{Ack, TargetStatus};
use crate::target::{AppliedChange, SyncTarget};

/// Where a message came from (for dead-letter headers and logs).
#[derive(Clone, Debug)]
pub(crate) struct Source {
    pub(crate) topic: std::sync::Arc<str>,
    pub(crate) partition: i32,
    pub(crate) offset: i64,
    pub(crate) key: Option<Vec<u8>>,
}

/// How long sends of dead letters, conflicts and acks may wait for the broker.
const REPORT_DEADLINE: Duration = Duration::from_secs(30);
/// Tries of a conflict record or an ack.
const REPORT_TRIES: u32 = 3;

/// What processing one message produced.
pub(crate) struct Processed {
    /// What the event did, or why it was dead-lettered.
    pub(crate) result: Result<Effect, Poison>,
    /// The origin cluster and the acknowledgement owed to it (none for a message that did not
    /// decode, or whose origin is not a configured cluster). The caller sends it before it
    /// commits the message's offset ([`crate::acks`]).
    pub(crate) ack: Option<(std::sync::Arc<str>, Ack)>,
}

/// Process one message payload.
pub(crate) async fn process(
    shared: &Shared,
    target: &dyn SyncTarget,
    payload: &[u8],
    source: &Source,
) -> Processed {
    let event = match decode(payload, &shared.config) {
        Ok(event) => event,
        Err(poison) => {
            dead_letter(shared, payload, source, &poison, None).await;
            return Processed {
                result: Err(poison),
                ack: None,
            };
        }
    };
    shared.clock.observe(event.stamp.hlc);
    let (event, applied) = apply_with_retries(shared, target, event).await;
    let (result, status) = match applied {
        Ok(decision) => {
            report(shared, &event, &decision).await;
            let effect = decision.effect.name().to_string();
            (Ok(decision.effect), TargetStatus::Completed { effect })
        }
        Err(poison) => {
            dead_letter(shared, payload, source, &poison, Some(&event)).await;
            let reason = poison.to_string();
            (Err(poison), TargetStatus::Failed { reason })
        }
    };
    Processed {
        result,
        ack: owed_ack(shared, event, status),
    }
}

/// The acknowledgement of `event` for its origin, if the origin is a configured cluster.
fn owed_ack(
    shared: &Shared,
    event: ChangeEvent,
    status: TargetStatus,
) -> Option<(std::sync::Arc<str>, Ack)> {
    shared.config.cluster(&event.stamp.origin)?;
    let ack = Ack {
        event_id: event.stamp.event_id.to_string(),
        hlc: event.stamp.hlc,
        entity_type: event.entity_type,
        entity_id: event.entity_id,
        cluster: shared.local.clone(),
        status,
    };
    Some((event.stamp.origin, ack))
}

/// Read, decide and write, retrying target errors with exponential backoff; gives the event
/// back with the outcome.
async fn apply_with_retries(
    shared: &Shared,
    target: &dyn SyncTarget,
    mut event: ChangeEvent,
) -> (ChangeEvent, Result<Decision, Poison>) {
    let retry = &shared.config.handler;
    let mut backoff = retry.initial_backoff;
    let mut attempt = 1;
    loop {
        let (back, outcome) = apply_once(shared, target, event, true).await;
        event = back;
        match outcome {
            Ok(decision) => return (event, Ok(decision)),
            Err(error) if attempt >= retry.max_attempts => {
                let poison = Poison::Handler {
                    attempts: attempt,
                    error,
                };
                return (event, Err(poison));
            }
            Err(error) => {
                tracing::warn!(
                    entity = %event.key(), event_id = %event.stamp.event_id, attempt, %error,
                    "sync handler failed; retrying after {backoff:?}"
                );
                tokio::time::sleep(backoff).await;
                backoff = (backoff * 2).min(retry.max_backoff);
                attempt += 1;
            }
        }
    }
}

/// How often a write may find the state changed under it before that counts as a failure.
const STALE_RETRIES: u32 = 100;

/// Read, decide, write; a stale write (the state changed since it was read) reads and decides
/// again at once. The event moves into the [`AppliedChange`] the target sees and comes back
/// with the outcome (no copy of its record per write).
pub(crate) async fn apply_once(
    shared: &Shared,
    target: &dyn SyncTarget,
    mut event: ChangeEvent,
    tombstone_window: bool,
) -> (ChangeEvent, Result<Decision, String>) {
    let Some(policy) = shared.policy(&event.entity_type) else {
        let error = format!("no policy for {:?}", event.entity_type);
        return (event, Err(error));
    };
    let window = Window {
        now_ms: shared.clock.physical_ms(),
        tombstone_ms: if tombstone_window {
            u64::try_from(shared.config.tombstone_window.as_millis()).unwrap_or(u64::MAX)
        } else {
            u64::MAX
        },
    };
    for _ in 0..STALE_RETRIES {
        let current = match target.read(&event.entity_type, &event.entity_id).await {
            Ok(current) => current,
            Err(e) => return (event, Err(format!("reading the stored state: {e}"))),
        };
        let mut decision = decide(policy, current.as_ref(), &event, window);
        let Some(state) = decision.next.take() else {
            return (event, Ok(decision));
        };
        let change = AppliedChange {
            event,
            effect: decision.effect,
            state,
            previous: current,
        };
        let written = target.write(&change).await;
        let AppliedChange {
            event: back, state, ..
        } = change;
        event = back;
        match written {
            Ok(()) => {
                decision.next = Some(state);
                return (event, Ok(decision));
            }
            Err(e) if e.is_stale() => continue,
            Err(e) => return (event, Err(format!("writing: {e}"))),
        }
    }
    let error = format!("writing: the stored state changed {STALE_RETRIES} times in a row");
    (event, Err(error))
}

/// Metrics and conflict record of a decided event.
async fn report(shared: &Shared, event: &ChangeEvent, decision: &Decision) {
    let origin = &event.stamp.origin;
    shared
        .metrics
        .event(origin, &event.entity_type, decision.effect.name());
    if matches!(decision.effect, Effect::Applied | Effect::Merged) {
        let now = shared.clock.physical_ms();
        let latency = Duration::from_millis(now.saturating_sub(event.published_at_ms));
        shared.metrics.latency(origin, latency);
    }
    if decision.effect == Effect::TooOld {
        tracing::warn!(
            entity = %event.key(), event_id = %event.stamp.event_id,
            "change older than sync.tombstone_window for an entity with no stored state: not applied"
        );
    }
    if let Some(conflict) = &decision.conflict {
        record_conflict(shared, conflict).await;
    }
}

async fn record_conflict(shared: &Shared, conflict: &Conflict) {
    shared
        .metrics
        .conflict(&conflict.entity_type, &conflict.policy);
    tracing::warn!(
        entity_type = %conflict.entity_type, entity_id = %conflict.entity_id,
        policy = %conflict.policy, winner = ?conflict.winner,
        stored = %conflict.stored.stamp, incoming = %conflict.incoming.stamp,
        "sync conflict resolved"
    );
    let topic = shared.config.conflict_topic(&shared.local);
    let key = crate::model::entity_key(&conflict.entity_type, &conflict.entity_id);
    let payload = serde_json::to_vec(conflict).unwrap_or_default();
    send(
        shared,
        &shared.local,
        &topic,
        &key,
        &payload,
        OwnedHeaders::new(),
    )
    .await;
}

/// Send the original payload to the local dead-letter topic with the reason in headers.
pub(crate) async fn dead_letter(
    shared: &Shared,
    payload: &[u8],
    source: &Source,
    poison: &Poison,
    event: Option<&ChangeEvent>,
) {
    shared.metrics.dead_letter(poison.kind());
    tracing::error!(
        topic = %source.topic, partition = source.partition, offset = source.offset,
        reason = %poison, "sync event dead-lettered"
    );
    let reason = poison.to_string();
    let (partition, offset) = (source.partition.to_string(), source.offset.to_string());
    let headers = [
        ("federation.reason", reason.as_str()),
        ("federation.reason_kind", poison.kind()),
        ("federation.source_topic", &*source.topic),
        ("federation.source_partition", partition.as_str()),
        ("federation.source_offset", offset.as_str()),
    ]
    .into_iter()
    .fold(OwnedHeaders::new(), |headers, (key, value)| {
        headers.insert(Header {
            key,
            value: Some(value),
        })
    });
    let key = event
        .map(ChangeEvent::key)
        .or_else(|| {
            source
                .key
                .as_ref()
                .map(|k| String::from_utf8_lossy(k).into_owned())
        })
        .unwrap_or_default();
    let topic = shared.config.dead_letter_topic(&shared.local);
    // An oversized payload would be refused by the broker too: keep its head only.
    let limit = usize::try_from(shared.config.max_message_bytes).unwrap_or(usize::MAX);
    let body = &payload[..payload.len().min(limit)];
    send_until_written(shared, &topic, &key, body, headers).await;
}

/// Dead letters must not be lost: the message is committed after this returns, so the send is
/// retried (1 s apart, each try bounded by the report deadline) until the local broker takes it.
/// A broker that is down stalls this consumer, which is right: nothing can be applied safely.
async fn send_until_written(
    shared: &Shared,
    topic: &str,
    key: &str,
    payload: &[u8],
    headers: OwnedHeaders,
) {
    send_with_retries(
        shared,
        &shared.local,
        topic,
        key,
        payload,
        headers,
        u32::MAX,
    )
    .await;
}

/// Send to `cluster`'s brokers, trying up to `tries` times 1 s apart; whether it was written.
async fn send_with_retries(
    shared: &Shared,
    cluster: &str,
    topic: &str,
    key: &str,
    payload: &[u8],
    headers: OwnedHeaders,
    tries: u32,
) -> bool {
    let Some(producer) = shared.producer(cluster) else {
        tracing::error!(cluster, topic, "no producer for the cluster");
        return false;
    };
    for attempt in 1..=tries {
        let record = FutureRecord::to(topic)
            .key(key)
            .payload(payload)
            .headers(headers.clone());
        match producer.send(record, Timeout::After(REPORT_DEADLINE)).await {
            Ok(_) => return true,
            Err((error, _)) => {
                tracing::warn!(topic, attempt, %error, "could not write a sync record; retrying in 1 s");
                tokio::time::sleep(Duration::from_secs(1)).await;
            }
        }
    }
    false
}

/// Send a report record (conflict, ack) without waiting for the broker: it is queued in the
/// producer (which retries it until `publish_timeout`) and a task logs a failed delivery, so a
/// report costs no broker round trip on the message's path. Only when the queue refuses it is the
/// send retried in place (a few tries), then logged and dropped: the event itself is already
/// decided and written, and a lost ack only leaves the origin's status pending.
pub(crate) async fn send(
    shared: &Shared,
    cluster: &str,
    topic: &str,
    key: &str,
    payload: &[u8],
    headers: OwnedHeaders,
) {
    let Some(producer) = shared.producer(cluster) else {
        tracing::error!(
            cluster,
            topic,
            "no producer for the cluster; report dropped"
        );
        return;
    };
    let record = FutureRecord::to(topic)
        .key(key)
        .payload(payload)
        .headers(headers.clone());
    match producer.send_result(record) {
        Ok(delivery) => {
            let topic = topic.to_string();
            tokio::spawn(async move {
                if let Ok(Err((error, _))) = delivery.await {
                    tracing::error!(%topic, %error, "sync report record not delivered");
                }
            });
        }
        Err((error, _)) => {
            tracing::warn!(topic, %error, "producer queue refused a report; sending in place");
            if !send_with_retries(shared, cluster, topic, key, payload, headers, REPORT_TRIES).await
            {
                tracing::error!(
                    topic,
                    "sync report record dropped after {REPORT_TRIES} tries"
                );
            }
        }
    }
}
