//! Replaying dead letters: give every event on this cluster's dead-letter topic another run
//! through the normal path, once the cause (a bug in the handler, a missing entity type) is fixed.
//!
//! Replay reads the dead-letter topic with its own consumer group (`<group>.<cluster>.replay`),
//! from where the previous replay stopped up to the end as it was when the replay started, and
//! commits each message after processing it. An event that fails again is dead-lettered again
//! (after the snapshot end), so a replay always finishes and never loops.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;

use rdkafka::consumer::{CommitMode, Consumer, StreamConsumer};
use rdkafka::message::Message;
use rdkafka::{Offset, TopicPartitionList};
use serde::Serialize;

use crate::error::SyncError;
use crate::kafka::{Closing, consumer_config};
use crate::process::{Source, process};
use crate::runtime::Shared;
use crate::target::SyncTarget;

/// Timeout of the metadata and offset queries.
const QUERY: Duration = Duration::from_secs(30);

/// What a replay did.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize)]
pub struct ReplayReport {
    /// Dead letters read.
    pub replayed: usize,
    /// Of those, processed without error this time (or, for a replay to the source topics,
    /// published there again).
    pub succeeded: usize,
    /// Of those, dead-lettered again (or not republished: the send failed).
    pub failed_again: usize,
    /// Not republished because they can never apply (`not_json`, `oversized`) or their source
    /// topic is not a change topic of a configured cluster.
    pub skipped: usize,
}

/// What to do with each dead letter.
pub(crate) enum Mode {
    /// Process it here, into this target.
    Process(Arc<dyn SyncTarget>),
    /// Publish it again on the change topic it came from, so the subscribers (this cluster's
    /// service among them) receive it again; a cluster that applied it already ignores it.
    Republish,
}

/// Replay this cluster's dead letters.
pub(crate) async fn replay(shared: &Arc<Shared>, mode: Mode) -> Result<ReplayReport, SyncError> {
    let topic = shared.config.dead_letter_topic(&shared.local);
    let servers = shared
        .config
        .cluster(&shared.local)
        .map(|c| c.bootstrap_servers.clone())
        .unwrap_or_default();
    let group = format!("{}.replay", shared.config.group_id(&shared.local));
    let consumer: StreamConsumer = consumer_config(&servers, &group)
        .create()
        .map_err(|e| SyncError::kafka("creating the replay consumer", &e))?;
    let consumer = Arc::new(consumer);
    let (remaining, assignment) = {
        let (consumer, topic) = (Arc::clone(&consumer), topic.clone());
        tokio::task::spawn_blocking(move || plan(&consumer, &topic))
            .await
            .map_err(|e| SyncError::config(format!("replay planning task failed: {e}")))??
    };
    let mut report = ReplayReport::default();
    if remaining.is_empty() {
        return Ok(report);
    }
    consumer
        .assign(&assignment)
        .map_err(|e| SyncError::kafka(&format!("assigning {topic}"), &e))?;
    let mut remaining = remaining;
    while !remaining.is_empty() {
        let message = tokio::time::timeout(QUERY, consumer.recv())
            .await
            .map_err(|_| SyncError::timeout(&format!("reading {topic}"), QUERY))?
            .map_err(|e| SyncError::kafka(&format!("reading {topic}"), &e))?;
        let source = Source {
            topic: topic.as_str().into(),
            partition: message.partition(),
            offset: message.offset(),
            key: message.key().map(<[u8]>::to_vec),
        };
        report.replayed += 1;
        let payload = message.payload().unwrap_or_default();
        match &mode {
            Mode::Process(target) => {
                let processed = process(shared, target.as_ref(), payload, &source).await;
                let ack = processed.ack.map(|(origin, ack)| (origin.to_string(), ack));
                crate::acks::send_now(shared, ack).await;
                match processed.result {
                    Ok(_) => report.succeeded += 1,
                    Err(_) => report.failed_again += 1,
                }
            }
            Mode::Republish => match republish(shared, &message).await {
                Some(true) => report.succeeded += 1,
                Some(false) => report.failed_again += 1,
                None => report.skipped += 1,
            },
        }
        consumer
            .commit_message(&message, CommitMode::Async)
            .map_err(|e| SyncError::kafka("committing a replayed dead letter", &e))?;
        if remaining
            .get(&message.partition())
            .is_some_and(|end| message.offset() + 1 >= *end)
        {
            remaining.remove(&message.partition());
        }
    }
    let closing = Arc::try_unwrap(consumer).ok().map(Closing::new);
    let _ = tokio::task::spawn_blocking(move || {
        if let Some(owner) = &closing
            && let Some(consumer) = owner.get()
        {
            let _ = consumer.commit_consumer_state(CommitMode::Sync);
        }
        drop(closing);
    })
    .await;
    Ok(report)
}

/// Send a dead letter back to its source change topic; `None` when it should not be.
async fn republish(
    shared: &Shared,
    message: &rdkafka::message::BorrowedMessage<'_>,
) -> Option<bool> {
    use rdkafka::message::Headers;
    let header = |name: &str| {
        message
            .headers()
            .and_then(|h| h.iter().find(|h| h.key == name))
            .and_then(|h| h.value)
            .map(|v| String::from_utf8_lossy(v).into_owned())
    };
    if matches!(
        header("federation.reason_kind").as_deref(),
        Some("not_json" | "oversized")
    ) {
        return None;
    }
    let source = header("federation.source_topic")?;
    let origin = shared
        .config
        .clusters
        .iter()
        .find(|c| shared.config.changes_topic(&c.name) == source)?;
    let producer = shared.producer(&origin.name)?;
    let mut record =
        rdkafka::producer::FutureRecord::to(&source).payload(message.payload().unwrap_or_default());
    if let Some(key) = message.key() {
        record = record.key(key);
    }
    let sent = producer
        .send(record, rdkafka::util::Timeout::After(QUERY))
        .await;
    if let Err((error, _)) = &sent {
        tracing::error!(topic = %source, %error, "could not republish a dead letter");
    }
    Some(sent.is_ok())
}

/// Per partition with something to replay: its end offset now; and the assignment starting at
/// the group's committed offsets (the beginning for a new group). Blocking.
fn plan(
    consumer: &StreamConsumer,
    topic: &str,
) -> Result<(HashMap<i32, i64>, TopicPartitionList), SyncError> {
    let metadata = consumer
        .fetch_metadata(Some(topic), QUERY)
        .map_err(|e| SyncError::kafka(&format!("reading the metadata of {topic}"), &e))?;
    let partitions: Vec<i32> = metadata
        .topics()
        .iter()
        .flat_map(|t| t.partitions().iter().map(|p| p.id()))
        .collect();
    let mut wanted = TopicPartitionList::new();
    for p in &partitions {
        wanted.add_partition(topic, *p);
    }
    let committed = consumer
        .committed_offsets(wanted, QUERY)
        .map_err(|e| SyncError::kafka(&format!("reading committed offsets of {topic}"), &e))?;
    let mut remaining = HashMap::new();
    let mut assignment = TopicPartitionList::new();
    for p in partitions {
        let (low, high) = consumer
            .fetch_watermarks(topic, p, QUERY)
            .map_err(|e| SyncError::kafka(&format!("reading the end of {topic}/{p}"), &e))?;
        let start = match committed.find_partition(topic, p).map(|e| e.offset()) {
            Some(Offset::Offset(o)) => o,
            _ => low,
        };
        if start < high {
            remaining.insert(p, high);
            assignment
                .add_partition_offset(topic, p, Offset::Offset(start))
                .map_err(|e| SyncError::kafka("building the replay assignment", &e))?;
        }
    }
    Ok((remaining, assignment))
}
