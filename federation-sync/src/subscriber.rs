//! Consuming the other clusters' change topics: one consumer-group member per origin cluster.
//!
//! Order per entity comes from Kafka (one partition per key) and from applying one entity's
//! messages one at a time, in order, on the lane of its key ([`crate::lanes`]; other entities
//! run meanwhile); effect-once comes from committing a partition's offset only up to messages
//! that were all written or dead-lettered (in batches, [`crate::commits`]), and from recognising
//! a redelivered event by the stamp stored with the entity. A stop lets the lanes finish the
//! messages they hold and commits; an abort (as a crash would) drops them uncommitted, so the
//! group delivers them again.

use std::sync::Arc;

use futures_util::{FutureExt, StreamExt};
use rdkafka::consumer::{CommitMode, Consumer, ConsumerContext, StreamConsumer};
use rdkafka::message::{BorrowedMessage, Message};
use rdkafka::producer::Producer;
use rdkafka::statistics::Statistics;
use rdkafka::util::Timeout;
use rdkafka::{ClientContext, error::KafkaError};
use tokio::sync::watch;
use tokio::task::JoinHandle;

use crate::acks::OwedAcks;
use crate::commits::OffsetBatch;
use crate::error::SyncError;
use crate::kafka::{Closing, consumer_config};
use crate::lanes::{Done, Lanes, Work, apply};
use crate::process::Source;
use crate::runtime::Shared;
use crate::target::SyncTarget;

/// Consumer context that turns librdkafka statistics into the lag gauge.
struct LagContext {
    shared: Arc<Shared>,
    origin: String,
}

impl ClientContext for LagContext {
    fn stats(&self, statistics: Statistics) {
        crate::kafka_stats::record(&statistics);
        let lag: i64 = statistics
            .topics
            .values()
            .flat_map(|t| t.partitions.values())
            .filter(|p| p.partition >= 0)
            .map(|p| p.consumer_lag.max(0))
            .sum();
        self.shared.metrics.lag(&self.origin, lag);
        self.shared.health.lag(&self.origin, lag);
    }
}

impl ConsumerContext for LagContext {}

/// Running consumers. Dropping it aborts them (like [`abort`](Self::abort)).
#[derive(Debug)]
pub struct Subscription {
    stop: watch::Sender<bool>,
    tasks: Vec<JoinHandle<()>>,
}

impl Subscription {
    /// Stop after the messages in hand are finished and committed.
    pub async fn stop(mut self) {
        let _ = self.stop.send(true);
        for task in self.tasks.drain(..) {
            let _ = task.await;
        }
    }

    /// Stop at once, as a crash would: messages in hand are neither finished nor committed.
    pub fn abort(mut self) {
        for task in self.tasks.drain(..) {
            task.abort();
        }
    }
}

impl Drop for Subscription {
    fn drop(&mut self) {
        for task in &self.tasks {
            task.abort();
        }
    }
}

/// Start one consumer per other cluster, writing to `target`.
pub(crate) fn start(
    shared: &Arc<Shared>,
    target: Arc<dyn SyncTarget>,
) -> Result<Subscription, SyncError> {
    let (stop, stopped) = watch::channel(false);
    let mut tasks = Vec::new();
    for origin in shared.remote_clusters() {
        let Some(cluster) = shared.config.cluster(&origin) else {
            continue;
        };
        let mut config = consumer_config(
            &cluster.bootstrap_servers,
            &shared.config.group_id(&shared.local),
        );
        config.set("statistics.interval.ms", "1000");
        config.set("client.id", format!("{}.subscriber.{origin}", shared.local));
        crate::kafka_stats::configure(&mut config);
        let context = LagContext {
            shared: Arc::clone(shared),
            origin: origin.clone(),
        };
        let consumer: StreamConsumer<LagContext> = config
            .create_with_context(context)
            .map_err(|e| SyncError::kafka(&format!("creating the consumer of {origin}"), &e))?;
        let topic = shared.config.changes_topic(&origin);
        consumer
            .subscribe(&[&topic])
            .map_err(|e| SyncError::kafka(&format!("subscribing to {topic}"), &e))?;
        let task = tokio::spawn(consume(
            Arc::clone(shared),
            Arc::clone(&target),
            consumer,
            origin,
            stopped.clone(),
        ));
        tasks.push(task);
    }
    Ok(Subscription { stop, tasks })
}

async fn consume(
    shared: Arc<Shared>,
    target: Arc<dyn SyncTarget>,
    consumer: StreamConsumer<LagContext>,
    origin: String,
    mut stopped: watch::Receiver<bool>,
) {
    let owner = Closing::new(consumer);
    let Some(consumer) = owner.get() else {
        return;
    };
    let mut batch = OffsetBatch::new();
    let mut owed = OwedAcks::new(&shared);
    let (applier, target_ref) = (&*shared, &*target);
    let mut lanes = Lanes::new(|work| apply(applier, target_ref, work));
    let mut finished_now = Vec::with_capacity(crate::lanes::BATCH);
    let mut messages = consumer.stream();
    let mut topic: Arc<str> = Arc::from("");
    // One timer for the whole loop, armed when a batch starts: commits a batch left waiting
    // when no further message comes.
    let idle = tokio::time::sleep(crate::commits::COMMIT_INTERVAL);
    tokio::pin!(idle);
    loop {
        // Finished messages first, then a due commit, then new messages (while the lanes have
        // room): the lanes are polled by this task, so nothing else runs them.
        tokio::select! {
            biased;
            _ = stopped.changed() => break,
            () = std::future::poll_fn(|cx| lanes.poll_done(cx, &mut finished_now)) => {
                shared.health.consumed(&origin, finished_now.len());
                for done in finished_now.drain(..) {
                    finished(&mut lanes, done, &mut batch, &mut owed, idle.as_mut());
                }
                if batch.ready() {
                    commit(&shared, consumer, &mut batch, &mut owed, &origin).await;
                }
            }
            () = &mut idle, if batch.due().is_some() => {
                commit(&shared, consumer, &mut batch, &mut owed, &origin).await;
            }
            message = messages.next(), if lanes.has_room() => {
                // Take what else the consumer has ready (up to a batch) before applying any.
                let mut next = message;
                let mut taken = 0;
                while let Some(message) = next {
                    match message {
                        Ok(message) => lanes.push(work_of(message, &mut topic)),
                        Err(error) => note_error(&shared, &origin, &error),
                    }
                    taken += 1;
                    if taken >= crate::lanes::BATCH || !lanes.has_room() {
                        break;
                    }
                    next = messages.next().now_or_never().flatten();
                }
            }
        }
    }
    drop(messages);
    // A clean stop: the lanes finish the messages they hold, then the finished ones are
    // committed durably (blocking: off the async workers); `owner` then leaves the group on its
    // own thread.
    while !lanes.is_idle() {
        std::future::poll_fn(|cx| lanes.poll_done(cx, &mut finished_now)).await;
        shared.health.consumed(&origin, finished_now.len());
        for done in finished_now.drain(..) {
            finished(&mut lanes, done, &mut batch, &mut owed, idle.as_mut());
        }
    }
    drop(lanes);
    crate::acks::send(&shared, &mut owed).await;
    let committed = tokio::task::spawn_blocking(move || {
        flush_reports(&shared);
        if let Some(consumer) = owner.get()
            && let Err(error) = batch.commit(consumer, CommitMode::Sync)
        {
            tracing::warn!(%error, "final offset commit failed; the last messages may be delivered again");
        }
        owner
    });
    let _ = committed.await;
}

/// A received message as a lane's work; `topic` keeps the last topic name, so messages of one
/// topic share it instead of copying it each.
fn work_of<'m>(message: BorrowedMessage<'m>, topic: &mut Arc<str>) -> Work<'m> {
    if &**topic != message.topic() {
        *topic = Arc::from(message.topic());
    }
    let source = Source {
        topic: Arc::clone(topic),
        partition: message.partition(),
        offset: message.offset(),
        key: message.key().map(<[u8]>::to_vec),
    };
    Work { source, message }
}

/// Deliver the acks (and conflict records) the finished messages queued before their offsets
/// are committed: a producer dropped with records still queued loses them, and an ack lost
/// after its change was committed leaves the change `pending` at its origin for good.
fn flush_reports(shared: &Shared) {
    for cluster in &shared.config.clusters {
        if let Some(producer) = shared.producer(&cluster.name)
            && let Err(error) = producer.flush(Timeout::After(shared.config.publish_timeout))
        {
            tracing::warn!(cluster = %cluster.name, %error, "sync reports not all delivered before the stop");
        }
    }
}

/// Note a message finished by its lane: the partition's committable offset moves on, and its
/// ack is owed until the next commit.
fn finished<'m, F: std::future::Future<Output = Done>, S: FnMut(Work<'m>) -> F>(
    lanes: &mut Lanes<'m, F, S>,
    done: Done,
    batch: &mut OffsetBatch,
    owed: &mut OwedAcks,
    idle: std::pin::Pin<&mut tokio::time::Sleep>,
) {
    let last = lanes.finish(&done);
    if let Some((origin, ack)) = done.ack {
        owed.push(&origin, &ack);
    }
    let Some(last) = last else {
        return;
    };
    let starts = batch.due().is_none();
    batch.finished(&done.topic, done.partition, last);
    if let (true, Some(due)) = (starts, batch.due()) {
        idle.reset(due);
    }
}

/// Queue the owed acks, then commit: an ack is never behind the commit of its message.
async fn commit(
    shared: &Shared,
    consumer: &StreamConsumer<LagContext>,
    batch: &mut OffsetBatch,
    owed: &mut OwedAcks,
    origin: &str,
) {
    crate::acks::send(shared, owed).await;
    if let Err(error) = batch.commit(consumer, CommitMode::Async) {
        tracing::warn!(%origin, %error, "offset commit failed; the messages may be delivered again");
    }
}

fn note_error(shared: &Shared, origin: &str, error: &KafkaError) {
    tracing::debug!(%origin, %error, "sync consumer error");
    shared.health.error(origin, error.to_string());
}
