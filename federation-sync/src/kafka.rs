//! Kafka client settings in one place, so every producer and consumer of the sync gets the
//! guarantees the design relies on.
//!
//! A producer left at its defaults can reorder or duplicate a retried batch, and a consumer left
//! at its defaults commits offsets on a timer, before the handler finished, so a crash loses the
//! change. Here: producers are idempotent with `acks=all` (no duplicates, no reordering, a send
//! completes only once the write is durable); consumers never auto-commit (the subscriber commits
//! each message after its handler succeeded) and start from the earliest offset when the group
//! is new, so nothing published before the first subscriber is missed.

use std::time::Duration;

use federation_core::config::SyncConfig;
use rdkafka::ClientConfig;
use rdkafka::admin::{AdminClient, AdminOptions, NewTopic, TopicReplication};
use rdkafka::client::DefaultClientContext;
use rdkafka::types::RDKafkaErrorCode;

use crate::error::SyncError;

/// Producer settings for `servers` with a delivery deadline of `timeout`.
pub fn producer_config(servers: &[String], timeout: Duration, max_bytes: u64) -> ClientConfig {
    let mut config = ClientConfig::new();
    config
        .set("bootstrap.servers", servers.join(","))
        .set("enable.idempotence", "true")
        .set("acks", "all")
        .set("linger.ms", "1")
        .set("message.timeout.ms", millis(timeout))
        // A broker that is down is retried at least every second (default: up to 10 s), so a
        // queued message's `message.timeout.ms` is enforced within about a second of it.
        .set("reconnect.backoff.max.ms", "1000")
        // Room for the envelope around a record of `max_message_bytes`.
        .set("message.max.bytes", (max_bytes + 4096).to_string());
    crate::kafka_stats::configure(&mut config);
    config
}

/// Consumer settings: group `group`, manual commits, earliest offset for a new group.
pub fn consumer_config(servers: &[String], group: &str) -> ClientConfig {
    let mut config = ClientConfig::new();
    config
        .set("bootstrap.servers", servers.join(","))
        .set("group.id", group)
        .set("enable.auto.commit", "false")
        .set("auto.offset.reset", "earliest")
        .set("enable.partition.eof", "false")
        .set("session.timeout.ms", "6000")
        .set("heartbeat.interval.ms", "1000")
        // Pick up topics created after the subscription quickly.
        .set("topic.metadata.refresh.interval.ms", "1000")
        .set("allow.auto.create.topics", "false");
    crate::kafka_stats::configure(&mut config);
    config
}

fn millis(d: Duration) -> String {
    d.as_millis().max(1).to_string()
}

/// Create the sync topics of `cluster` on its brokers (changes, acks, dead letters, conflicts),
/// with `config.partitions` partitions; existing topics are fine.
pub async fn ensure_topics(config: &SyncConfig, cluster: &str) -> Result<(), SyncError> {
    let servers = &config
        .cluster(cluster)
        .ok_or_else(|| SyncError::config(format!("no sync cluster named {cluster:?}")))?
        .bootstrap_servers;
    let admin: AdminClient<DefaultClientContext> = ClientConfig::new()
        .set("bootstrap.servers", servers.join(","))
        .create()
        .map_err(|e| SyncError::kafka("creating the Kafka admin client", &e))?;
    let names = [
        config.changes_topic(cluster),
        config.acks_topic(cluster),
        config.dead_letter_topic(cluster),
        config.conflict_topic(cluster),
    ];
    let partitions = i32::try_from(config.partitions).unwrap_or(i32::MAX);
    let topics: Vec<NewTopic<'_>> = names
        .iter()
        .map(|name| NewTopic::new(name, partitions, TopicReplication::Fixed(-1)))
        .collect();
    let options = AdminOptions::new().operation_timeout(Some(Duration::from_secs(30)));
    let results = admin
        .create_topics(&topics, &options)
        .await
        .map_err(|e| SyncError::kafka(&format!("creating topics on {}", servers.join(",")), &e))?;
    for result in results {
        match result {
            Ok(_) | Err((_, RDKafkaErrorCode::TopicAlreadyExists)) => {}
            Err((topic, code)) => {
                return Err(SyncError::new(
                    crate::error::SyncErrorKind::Kafka,
                    format!("creating topic {topic}: {code}"),
                ));
            }
        }
    }
    Ok(())
}

/// Owns a consumer and closes it on a thread of its own when dropped.
///
/// Closing a group consumer blocks until the coordinator answered (leave the group, last
/// commits); with the broker gone that can take minutes (rust-rdkafka issues #509, #611). Done
/// on an async worker it stalls the runtime, and at runtime shutdown it can hang the process, so
/// the close always runs on a detached thread.
pub(crate) struct Closing<C: rdkafka::consumer::ConsumerContext + 'static>(
    Option<rdkafka::consumer::StreamConsumer<C>>,
);

impl<C: rdkafka::consumer::ConsumerContext + 'static> Closing<C> {
    pub(crate) fn new(consumer: rdkafka::consumer::StreamConsumer<C>) -> Self {
        Self(Some(consumer))
    }

    /// The consumer (present until drop).
    pub(crate) fn get(&self) -> Option<&rdkafka::consumer::StreamConsumer<C>> {
        self.0.as_ref()
    }
}

impl<C: rdkafka::consumer::ConsumerContext + 'static> Drop for Closing<C> {
    fn drop(&mut self) {
        if let Some(consumer) = self.0.take() {
            let spawned = std::thread::Builder::new()
                .name("sync-consumer-close".into())
                .spawn(move || drop(consumer));
            if let Err(error) = spawned {
                tracing::warn!(%error, "no thread to close a Kafka consumer on; it is leaked");
            }
        }
    }
}
