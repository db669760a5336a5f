//! Applying changes of different entities at once, each entity's changes still in order, and
//! knowing which offsets are safe to commit.
//!
//! Processing a consumer's messages one at a time makes every change wait for the one before
//! it, even when they concern other entities and the wait is the target's I/O. Here each message
//! goes to one of [`LANES`] lanes chosen by its key (`type/id`), so one entity's changes always
//! take the same lane and are applied in partition order, while other lanes run. Messages are
//! handed over in bulk: the consumer passes each lane its share of what it polled as one `Vec`,
//! and a lane passes back what it finished as one `Vec` (a channel operation and a task wake-up
//! per message each way cost more than applying a change to an in-memory target). A partition's
//! offset may only be committed up to its oldest message still in a lane: [`Lanes::finish`]
//! says how far that is, so commit-after-apply holds although messages finish out of order.

use std::collections::{BTreeSet, HashMap};
use std::future::Future;
use std::hash::{Hash, Hasher};
use std::sync::Arc;
use std::task::Poll;

use tokio::sync::mpsc;
use tokio::task::JoinSet;

use crate::process::{Source, process};
use crate::runtime::Shared;
use crate::status::Ack;
use crate::target::SyncTarget;

/// Lanes per consumer.
pub(crate) const LANES: usize = 8;
/// Most messages the consumer takes in one go and hands over (one hand-over per lane).
pub(crate) const BATCH: usize = 256;
/// Hand-overs waiting per lane before the consumer stops reading (back pressure).
const LANE_QUEUE: usize = 4;

/// A message handed to a lane.
pub(crate) struct Work {
    pub(crate) source: Source,
    pub(crate) payload: Vec<u8>,
}

/// A finished message, and the acknowledgement it owes its origin.
pub(crate) struct Done {
    pub(crate) topic: Arc<str>,
    pub(crate) partition: i32,
    pub(crate) offset: i64,
    /// Origin cluster and ack ([`crate::process::Processed::ack`]).
    pub(crate) ack: Option<(String, Ack)>,
}

/// Messages of one partition in the lanes, and the last one handed to a lane.
#[derive(Default)]
struct Progress {
    in_lanes: BTreeSet<i64>,
    last_dispatched: i64,
}

/// The lanes of one consumer. Dropping it aborts the lanes (messages in hand are not finished).
pub(crate) struct Lanes {
    senders: Vec<mpsc::Sender<Vec<Work>>>,
    done: mpsc::UnboundedReceiver<Vec<Done>>,
    _workers: JoinSet<()>,
    /// By topic, then partition: looked up by `&str`, no key allocated per message.
    progress: HashMap<Arc<str>, HashMap<i32, Progress>>,
}

impl Lanes {
    /// Start the lanes, applying into `target`.
    pub(crate) fn start(shared: &Arc<Shared>, target: &Arc<dyn SyncTarget>, origin: &str) -> Self {
        let (done_tx, done) = mpsc::unbounded_channel();
        let mut workers = JoinSet::new();
        let mut senders = Vec::with_capacity(LANES);
        for _ in 0..LANES {
            let (tx, rx) = mpsc::channel::<Vec<Work>>(LANE_QUEUE);
            senders.push(tx);
            let lane = Lane {
                shared: Arc::clone(shared),
                target: Arc::clone(target),
                origin: origin.to_string(),
                done: done_tx.clone(),
            };
            workers.spawn(lane.run(rx));
        }
        Self {
            senders,
            done,
            _workers: workers,
            progress: HashMap::new(),
        }
    }

    /// Hand `works` (in consumer order) to their keys' lanes, one hand-over per lane; waits
    /// while a lane is full.
    pub(crate) async fn dispatch(&mut self, works: Vec<Work>) {
        let mut by_lane: [Vec<Work>; LANES] = Default::default();
        for work in works {
            let source = &work.source;
            self.progress_of(&source.topic, source.partition)
                .dispatched(source.offset);
            if let Some(group) = by_lane.get_mut(lane_of(source.key.as_deref())) {
                group.push(work);
            }
        }
        for (sender, group) in self.senders.iter().zip(by_lane) {
            if !group.is_empty() {
                let _ = sender.send(group).await;
            }
        }
    }

    fn progress_of(&mut self, topic: &Arc<str>, partition: i32) -> &mut Progress {
        let of_topic = self.progress.entry(Arc::clone(topic)).or_default();
        of_topic.entry(partition).or_default()
    }

    /// The next finished messages (`None` once the lanes are closed and empty).
    pub(crate) async fn next_done(&mut self) -> Option<Vec<Done>> {
        self.done.recv().await
    }

    /// Record `done` finished; returns the offset of the partition's last message that may be
    /// committed (every message up to it finished), if any.
    pub(crate) fn finish(&mut self, done: &Done) -> Option<i64> {
        self.progress
            .get_mut(&*done.topic)?
            .get_mut(&done.partition)?
            .finished(done.offset)
    }

    /// Stop taking messages; the lanes finish what they hold. Finished messages keep arriving
    /// through [`next_done`](Self::next_done) until it returns `None`.
    pub(crate) fn close(&mut self) {
        self.senders.clear();
    }
}

/// One lane: applies its hand-overs' messages in order and hands back what it finished, in
/// bulk, whenever it would otherwise wait (for the next hand-over, or inside a message: the
/// target's I/O, a retry's backoff), so a finished message is never held while the lane waits.
struct Lane {
    shared: Arc<Shared>,
    target: Arc<dyn SyncTarget>,
    origin: String,
    done: mpsc::UnboundedSender<Vec<Done>>,
}

impl Lane {
    async fn run(self, mut rx: mpsc::Receiver<Vec<Work>>) {
        let mut finished = Vec::new();
        while let Some(works) = rx.recv().await {
            for work in works {
                let processed = {
                    let (shared, target) = (&self.shared, self.target.as_ref());
                    let mut processing =
                        std::pin::pin!(process(shared, target, &work.payload, &work.source));
                    match poll_once(processing.as_mut()).await {
                        Poll::Ready(processed) => processed,
                        Poll::Pending => {
                            self.report(&mut finished);
                            processing.await
                        }
                    }
                };
                let source = work.source;
                finished.push(Done {
                    topic: source.topic,
                    partition: source.partition,
                    offset: source.offset,
                    ack: processed.ack,
                });
            }
            if rx.is_empty() {
                self.report(&mut finished);
            }
        }
        self.report(&mut finished);
    }

    fn report(&self, finished: &mut Vec<Done>) {
        if finished.is_empty() {
            return;
        }
        self.shared.health.consumed(&self.origin, finished.len());
        let _ = self.done.send(std::mem::take(finished));
    }
}

/// Poll `future` once: its output if it completes without waiting.
async fn poll_once<F: Future + Unpin>(mut future: F) -> Poll<F::Output> {
    std::future::poll_fn(|cx| Poll::Ready(std::pin::Pin::new(&mut future).poll(cx))).await
}

impl Progress {
    fn dispatched(&mut self, offset: i64) {
        self.in_lanes.insert(offset);
        self.last_dispatched = offset;
    }

    /// The last offset that may be committed once `offset` finished: just before the oldest
    /// message still in a lane, and never past the last one dispatched (after a rebalance gave
    /// the partition back at an earlier offset, older-assignment messages may still be in the
    /// lanes with higher offsets than the new ones).
    fn finished(&mut self, offset: i64) -> Option<i64> {
        self.in_lanes.remove(&offset);
        let last = self.last_dispatched;
        Some(match self.in_lanes.first() {
            Some(oldest) => (oldest - 1).min(last),
            None => last,
        })
    }
}

/// The lane of a message key (messages without a key: lane 0).
fn lane_of(key: Option<&[u8]>) -> usize {
    let Some(key) = key else {
        return 0;
    };
    let mut hasher = std::collections::hash_map::DefaultHasher::new();
    key.hash(&mut hasher);
    usize::try_from(hasher.finish() % LANES as u64).unwrap_or(0)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn one_key_always_takes_one_lane() {
        assert_eq!(lane_of(Some(b"user/42")), lane_of(Some(b"user/42")));
        assert_eq!(lane_of(None), 0);
        let lanes: BTreeSet<usize> = (0..100)
            .map(|i| lane_of(Some(format!("user/{i}").as_bytes())))
            .collect();
        assert!(lanes.len() > 1, "keys spread over the lanes");
        // tests/sync_backlog.rs relies on these four entities taking four different lanes.
        let backlog: BTreeSet<usize> = ["user/b1", "user/b2", "user/b3", "user/b4"]
            .iter()
            .map(|k| lane_of(Some(k.as_bytes())))
            .collect();
        assert_eq!(backlog.len(), 4, "{backlog:?}");
    }

    #[test]
    fn a_partition_commits_only_up_to_its_oldest_unfinished_message() {
        let mut p = Progress::default();
        for offset in 10..=13 {
            p.dispatched(offset);
        }
        assert_eq!(p.finished(12), Some(9), "10 and 11 still in lanes");
        assert_eq!(p.finished(10), Some(10), "11 still in a lane");
        assert_eq!(p.finished(11), Some(12));
        assert_eq!(p.finished(13), Some(13), "all finished");
        // The partition comes back at offset 5 while 20 (an earlier assignment) is in a lane.
        p.dispatched(20);
        p.dispatched(5);
        assert_eq!(
            p.finished(5),
            Some(5),
            "not past what this assignment dispatched"
        );
        p.dispatched(6);
        assert_eq!(p.finished(20), Some(5), "6 still in a lane");
        assert_eq!(p.finished(6), Some(6));
    }
}
