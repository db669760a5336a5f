//! Committing consumed offsets in batches, only ever past messages that were finished.
//!
//! Committing each message on its own is one `OffsetCommit` request and one write to
//! `__consumer_offsets` per change: under load the broker then spends more on commits than on
//! the changes, and its request queue delays every other client for many seconds (measured with
//! `federation bench --scenario sync`: a backlog of per-message commits left the next run's
//! events waiting 14–54 s). [`OffsetBatch`] keeps, per partition, the offset after the last
//! finished message and commits them together every [`COMMIT_INTERVAL`] or [`COMMIT_BATCH`]
//! messages, and on a clean stop. Only finished messages are noted, so a commit never covers a
//! message that was not written or dead-lettered; a crash loses at most one batch of progress,
//! whose redelivered events are recognised by their stamps.

use std::collections::HashMap;
use std::time::Duration;

use rdkafka::consumer::{CommitMode, Consumer, ConsumerContext};
use rdkafka::error::KafkaResult;
use rdkafka::{Offset, TopicPartitionList};
use tokio::time::Instant;

/// Longest time a finished message stays uncommitted.
pub const COMMIT_INTERVAL: Duration = Duration::from_millis(100);
/// Finished messages that trigger a commit before the interval is up.
pub const COMMIT_BATCH: usize = 1_000;

/// Offsets finished but not yet committed, per partition.
#[derive(Debug, Default)]
pub struct OffsetBatch {
    /// By topic (looked up by `&str`: no key allocated per message), then partition.
    next: HashMap<String, HashMap<i32, i64>>,
    noted: usize,
    due: Option<Instant>,
}

impl OffsetBatch {
    /// An empty batch.
    pub fn new() -> Self {
        Self::default()
    }

    /// The message at `offset` of `topic`/`partition` is finished (written or dead-lettered).
    pub fn finished(&mut self, topic: &str, partition: i32, offset: i64) {
        if self.due.is_none() {
            self.due = Some(Instant::now() + COMMIT_INTERVAL);
        }
        let of_topic = match self.next.get_mut(topic) {
            Some(of_topic) => of_topic,
            None => self.next.entry(topic.to_string()).or_default(),
        };
        let next = of_topic.entry(partition).or_default();
        *next = (*next).max(offset + 1);
        self.noted += 1;
    }

    /// When the oldest uncommitted offset must be committed (`None`: nothing to commit).
    pub fn due(&self) -> Option<Instant> {
        self.due
    }

    /// Whether to commit now (enough messages, or the interval is up).
    pub fn ready(&self) -> bool {
        self.noted >= COMMIT_BATCH || self.due.is_some_and(|d| d <= Instant::now())
    }

    /// Commit every noted offset of a partition still assigned to `consumer` and start a new
    /// batch. `CommitMode::Async` only queues the request; `Sync` waits (blocking: call it off
    /// the async workers).
    pub fn commit<C: ConsumerContext, K: Consumer<C>>(
        &mut self,
        consumer: &K,
        mode: CommitMode,
    ) -> KafkaResult<()> {
        self.due = None;
        self.noted = 0;
        if self.next.values().all(HashMap::is_empty) {
            return Ok(());
        }
        // A partition taken away by a rebalance is another member's now: committing our older
        // offset there would move the group back.
        let assigned = consumer.assignment()?;
        let mut list = TopicPartitionList::new();
        for (topic, of_topic) in &mut self.next {
            for (partition, next) in of_topic.drain() {
                if assigned.find_partition(topic, partition).is_some() {
                    list.add_partition_offset(topic, partition, Offset::Offset(next))?;
                }
            }
        }
        if list.count() == 0 {
            return Ok(());
        }
        consumer.commit(&list, mode)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test(start_paused = true)]
    async fn a_batch_is_due_an_interval_after_its_first_message_or_when_full() {
        let mut batch = OffsetBatch::new();
        assert_eq!(batch.due(), None);
        assert!(!batch.ready());
        let start = Instant::now();
        batch.finished("t", 0, 41);
        batch.finished("t", 0, 40);
        assert_eq!(
            batch.next.get("t").and_then(|t| t.get(&0)),
            Some(&42),
            "highest finished + 1"
        );
        assert_eq!(batch.due(), Some(start + COMMIT_INTERVAL));
        tokio::time::advance(COMMIT_INTERVAL / 2).await;
        batch.finished("t", 1, 7);
        assert_eq!(
            batch.due(),
            Some(start + COMMIT_INTERVAL),
            "the first message sets the time"
        );
        assert!(!batch.ready());
        tokio::time::advance(COMMIT_INTERVAL / 2).await;
        assert!(batch.ready(), "the interval is up");
        let mut full = OffsetBatch::new();
        for offset in 0..COMMIT_BATCH as i64 {
            full.finished("t", 0, offset);
        }
        assert!(full.ready(), "enough messages");
    }
}
