//! Applying changes of different entities at once, each entity's changes still in order, and
//! knowing which offsets are safe to commit.
//!
//! Processing a consumer's messages one at a time makes every change wait for the one before
//! it, even when they concern other entities and the wait is the target's I/O. Here each message
//! goes to one of [`LANES`] lanes chosen by its key (`type/id`), so one entity's changes always
//! take the same lane and are applied in partition order, one at a time, while other lanes run.
//! The lanes are futures polled by the consumer's own task, not tasks of their own: a message is
//! allocated, applied and freed on one thread, with no channel hop or task wake-up per hand-over
//! (docs/BENCHMARKS.md G9, "G9 pipeline": the allocator's share of the workers stayed the same,
//! so its cost is the many small allocations, not the thread that frees them). A lane waiting inside a message (the
//! target's I/O, a retry's backoff) holds back only its own later messages; the others, and the
//! commit of finished ones, go on. A partition's offset may only be committed up to its oldest
//! message still in a lane: [`Lanes::finish`] says how far that is, so commit-after-apply holds
//! although messages finish out of order.

use std::collections::{BTreeSet, HashMap, VecDeque};
use std::future::Future;
use std::hash::{Hash, Hasher};
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};

use rdkafka::message::{BorrowedMessage, Message};

use crate::process::{Source, process};
use crate::runtime::Shared;
use crate::status::Ack;
use crate::target::SyncTarget;

/// Lanes per consumer.
pub(crate) const LANES: usize = 8;
/// Most messages the consumer takes in one go, and most a poll of the lanes finishes.
pub(crate) const BATCH: usize = 256;
/// Messages waiting in the lanes before the consumer stops reading (back pressure).
const WAITING: usize = 4 * BATCH;

/// A message handed to a lane: the consumer's message itself (its payload is not copied; it
/// is released when the message is finished).
pub(crate) struct Work<'m> {
    pub(crate) source: Source,
    pub(crate) message: BorrowedMessage<'m>,
}

/// A finished message, and the acknowledgement it owes its origin.
pub(crate) struct Done {
    pub(crate) topic: Arc<str>,
    pub(crate) partition: i32,
    pub(crate) offset: i64,
    /// Origin cluster and ack ([`crate::process::Processed::ack`]).
    pub(crate) ack: Option<(Arc<str>, Ack)>,
}

/// Apply one message (what a lane runs per message).
pub(crate) async fn apply(shared: &Shared, target: &dyn SyncTarget, work: Work<'_>) -> Done {
    let payload = work.message.payload().unwrap_or_default();
    let processed = process(shared, target, payload, &work.source).await;
    let source = work.source;
    Done {
        topic: source.topic,
        partition: source.partition,
        offset: source.offset,
        ack: processed.ack,
    }
}

/// Messages of one partition in the lanes, and the last one handed to a lane.
#[derive(Default)]
struct Progress {
    in_lanes: BTreeSet<i64>,
    last_dispatched: i64,
}

/// One lane: its waiting messages and the one being applied (at most one: entity order).
struct Lane<'m, F> {
    waiting: VecDeque<Work<'m>>,
    /// Allocated once and reused for every message of the lane.
    running: Pin<Box<Option<F>>>,
}

/// The lanes of one consumer, applying each message with `start(work)`. Dropping it drops the
/// messages in hand unfinished.
pub(crate) struct Lanes<'m, F, S> {
    /// Exactly [`LANES`], so every index [`lane_of`] returns has its lane.
    lanes: [Lane<'m, F>; LANES],
    start: S,
    waiting: usize,
    /// By topic, then partition: looked up by `&str`, no key allocated per message.
    progress: HashMap<Arc<str>, HashMap<i32, Progress>>,
}

impl<'m, F: Future<Output = Done>, S: FnMut(Work<'m>) -> F> Lanes<'m, F, S> {
    /// Lanes that apply a message with `start` (e.g. `|work| apply(shared, target, work)`).
    pub(crate) fn new(start: S) -> Self {
        let lanes = std::array::from_fn(|_| Lane {
            waiting: VecDeque::new(),
            running: Box::pin(None),
        });
        Self {
            lanes,
            start,
            waiting: 0,
            progress: HashMap::new(),
        }
    }

    /// Whether the consumer may hand over more messages.
    pub(crate) fn has_room(&self) -> bool {
        self.waiting < WAITING
    }

    /// Whether no message is waiting or being applied.
    pub(crate) fn is_idle(&self) -> bool {
        self.waiting == 0 && self.lanes.iter().all(|lane| lane.running.is_none())
    }

    /// Hand `work` (in consumer order) to its key's lane.
    pub(crate) fn push(&mut self, work: Work<'m>) {
        let source = &work.source;
        let of_topic = match self.progress.get_mut(&*source.topic) {
            Some(of_topic) => of_topic,
            None => self.progress.entry(Arc::clone(&source.topic)).or_default(),
        };
        of_topic
            .entry(source.partition)
            .or_default()
            .dispatched(source.offset);
        // In bounds: `lane_of` reduces modulo `LANES`, the array's length.
        self.lanes[lane_of(source.key.as_deref())]
            .waiting
            .push_back(work);
        self.waiting += 1;
    }

    /// Apply what can be applied without waiting, moving finished messages to `out` (at most
    /// [`BATCH`] per call); ready once something finished. A lane that waits registers `cx`.
    pub(crate) fn poll_done(&mut self, cx: &mut Context<'_>, out: &mut Vec<Done>) -> Poll<()> {
        for lane in &mut self.lanes {
            while out.len() < BATCH {
                if lane.running.is_none() {
                    let Some(work) = lane.waiting.pop_front() else {
                        break;
                    };
                    self.waiting -= 1;
                    lane.running.set(Some((self.start)(work)));
                }
                let Some(running) = lane.running.as_mut().as_pin_mut() else {
                    break;
                };
                match running.poll(cx) {
                    Poll::Ready(done) => {
                        lane.running.set(None);
                        out.push(done);
                    }
                    Poll::Pending => break,
                }
            }
        }
        if out.is_empty() {
            Poll::Pending
        } else {
            Poll::Ready(())
        }
    }

    /// Record `done` finished; returns the offset of the partition's last message that may be
    /// committed (every message up to it finished), if any.
    pub(crate) fn finish(&mut self, done: &Done) -> Option<i64> {
        self.progress
            .get_mut(&*done.topic)?
            .get_mut(&done.partition)?
            .finished(done.offset)
    }
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

/// The lane of a message key (messages without a key: lane 0), always below [`LANES`].
fn lane_of(key: Option<&[u8]>) -> usize {
    let Some(key) = key else {
        return 0;
    };
    let mut hasher = std::collections::hash_map::DefaultHasher::new();
    key.hash(&mut hasher);
    // Truncating the hash first keeps the result below `LANES` on every target.
    (hasher.finish() as usize) % LANES
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
