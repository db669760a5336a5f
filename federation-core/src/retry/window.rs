//! A sliding window of two counters, bucketed so old events fall out in steps.
//!
//! Used by the retry budget (deposits, withdrawals) and the breaker's failure-rate trigger
//! (calls, failures). The window is split into [`SLOTS`] buckets of `window / SLOTS`; a bucket is
//! reused (and cleared) once its slot number is a whole window old. Not thread-safe by itself:
//! callers keep it behind a short lock.

use std::time::Duration;

use tokio::time::Instant;

/// Number of buckets in a window.
pub(crate) const SLOTS: usize = 10;

#[derive(Clone, Copy, Debug, Default)]
struct Bucket {
    /// Absolute slot number this bucket holds counts for.
    slot: u64,
    a: u64,
    b: u64,
}

/// Two counters summed over the last `window`.
#[derive(Debug)]
pub(crate) struct SlidingPair {
    origin: Instant,
    slot_nanos: u64,
    buckets: [Bucket; SLOTS],
}

impl SlidingPair {
    /// A window of length `window` (at least 10 ns; shorter windows are rounded up).
    pub(crate) fn new(window: Duration) -> Self {
        let nanos = u64::try_from(window.as_nanos()).unwrap_or(u64::MAX);
        Self {
            origin: Instant::now(),
            slot_nanos: (nanos / SLOTS as u64).max(1),
            buckets: [Bucket::default(); SLOTS],
        }
    }

    fn slot_at(&self, now: Instant) -> u64 {
        let elapsed = now.saturating_duration_since(self.origin).as_nanos();
        let elapsed = u64::try_from(elapsed).unwrap_or(u64::MAX);
        // Slot numbers start at SLOTS so that a fresh (zeroed) bucket is never mistaken for a
        // live one.
        (elapsed / self.slot_nanos).saturating_add(SLOTS as u64)
    }

    fn bucket(&mut self, now: Instant) -> &mut Bucket {
        let slot = self.slot_at(now);
        let bucket = &mut self.buckets[(slot % SLOTS as u64) as usize];
        if bucket.slot != slot {
            *bucket = Bucket { slot, a: 0, b: 0 };
        }
        bucket
    }

    /// Adds `a` and `b` to the counters at `now`.
    pub(crate) fn add(&mut self, now: Instant, a: u64, b: u64) {
        let bucket = self.bucket(now);
        bucket.a = bucket.a.saturating_add(a);
        bucket.b = bucket.b.saturating_add(b);
    }

    /// The sums of both counters over the window ending at `now`.
    pub(crate) fn sums(&self, now: Instant) -> (u64, u64) {
        let current = self.slot_at(now);
        let oldest = current.saturating_sub(SLOTS as u64 - 1);
        self.buckets
            .iter()
            .filter(|b| b.slot >= oldest && b.slot <= current)
            .fold((0, 0), |(a, b), bucket| {
                (a.saturating_add(bucket.a), b.saturating_add(bucket.b))
            })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test(start_paused = true)]
    async fn events_leave_the_window_after_one_window() {
        let mut w = SlidingPair::new(Duration::from_secs(10));
        w.add(Instant::now(), 3, 1);
        tokio::time::advance(Duration::from_secs(5)).await;
        w.add(Instant::now(), 2, 0);
        assert_eq!(w.sums(Instant::now()), (5, 1));
        tokio::time::advance(Duration::from_secs(5)).await;
        assert_eq!(w.sums(Instant::now()), (2, 0), "first events slid out");
        tokio::time::advance(Duration::from_secs(5)).await;
        assert_eq!(w.sums(Instant::now()), (0, 0));
    }

    #[tokio::test(start_paused = true)]
    async fn a_long_idle_gap_clears_reused_buckets() {
        let mut w = SlidingPair::new(Duration::from_secs(1));
        w.add(Instant::now(), 7, 7);
        tokio::time::advance(Duration::from_secs(100)).await;
        w.add(Instant::now(), 1, 0);
        assert_eq!(w.sums(Instant::now()), (1, 0));
    }
}
