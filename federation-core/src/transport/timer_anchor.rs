//! Keeps the runtime's timer driver from being woken by every attempt's timeout.
//!
//! Failure prevented: a thread wake-up per call. Each attempt arms a timeout. When tokio's
//! timer wheel is empty while a worker sleeps in the driver, inserting a timer wakes that
//! worker so it can shorten its sleep (tokio 1.x `time::Driver::reregister`: unpark when
//! `next_wake` is unset or later than the new deadline). With calls answered faster than their
//! timeouts the wheel is empty between calls, so at low concurrency every attempt paid an
//! eventfd write plus a wake-up and re-park of another worker thread: measured as a large part
//! of the SDK's latency overhead over plain reqwest at concurrency 1.
//!
//! The fix: while the client is in use, one background task sleeps in steps of half the
//! shortest attempt timeout. Its deadline is always earlier than any new attempt's deadline, so
//! the driver never needs waking for one. The task stops after [`IDLE_TICKS`] steps without a
//! call (an idle client costs nothing) and the next call starts it again. Correctness never
//! depends on it: without it (no runtime at hand, or it just stopped) timeouts work as before.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

/// Steps without a call before the task stops.
const IDLE_TICKS: u32 = 20;
/// The shortest step: anchoring attempts with very short timeouts is not worth more wake-ups.
const MIN_STEP: Duration = Duration::from_millis(20);
/// The longest step.
const MAX_STEP: Duration = Duration::from_secs(1);

/// Shared state of one client's anchor task.
#[derive(Debug)]
pub(crate) struct TimerAnchor {
    shared: Arc<Shared>,
    step: Duration,
}

#[derive(Debug, Default)]
struct Shared {
    /// A task is running (or being started).
    running: AtomicBool,
    /// A call happened since the task's last step.
    used: AtomicBool,
}

impl TimerAnchor {
    /// An anchor stepping at half of `shortest_attempt_timeout` (clamped to 20 ms – 1 s).
    pub(crate) fn new(shortest_attempt_timeout: Duration) -> Self {
        Self {
            shared: Arc::default(),
            step: (shortest_attempt_timeout / 2).clamp(MIN_STEP, MAX_STEP),
        }
    }

    /// Marks the client as in use and starts the task if it is not running. Costs two relaxed
    /// loads on the common path (no shared write while the task runs and knows of recent use).
    pub(crate) fn touch(&self) {
        if !self.shared.used.load(Ordering::Relaxed) {
            self.shared.used.store(true, Ordering::Relaxed);
        }
        if self.shared.running.load(Ordering::Relaxed)
            || self.shared.running.swap(true, Ordering::AcqRel)
        {
            return;
        }
        let Some(runtime) = crate::driven::spawn_handle() else {
            self.shared.running.store(false, Ordering::Release);
            return;
        };
        let shared = Arc::clone(&self.shared);
        let step = self.step;
        runtime.spawn(async move {
            let mut idle = 0;
            loop {
                tokio::time::sleep(step).await;
                if shared.used.swap(false, Ordering::Relaxed) {
                    idle = 0;
                } else {
                    idle += 1;
                    if idle >= IDLE_TICKS {
                        break;
                    }
                }
            }
            shared.running.store(false, Ordering::Release);
        });
    }

    /// Whether the task is running (for tests).
    #[cfg(test)]
    fn running(&self) -> bool {
        self.shared.running.load(Ordering::Acquire)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test(start_paused = true)]
    async fn runs_while_used_and_stops_when_idle() {
        let anchor = TimerAnchor::new(Duration::from_secs(1));
        assert!(!anchor.running());
        anchor.touch();
        assert!(anchor.running());
        // Used every step: keeps running well past the idle limit.
        for _ in 0..(IDLE_TICKS * 2) {
            tokio::time::sleep(Duration::from_millis(500)).await;
            anchor.touch();
        }
        assert!(anchor.running());
        // Idle: stops after IDLE_TICKS steps (plus one for the step in progress).
        tokio::time::sleep(Duration::from_millis(500) * (IDLE_TICKS + 2)).await;
        assert!(!anchor.running());
        // The next call starts it again.
        anchor.touch();
        assert!(anchor.running());
    }

    #[test]
    fn without_a_runtime_nothing_starts_and_nothing_panics() {
        let anchor = TimerAnchor::new(Duration::from_secs(1));
        anchor.touch();
        assert!(!anchor.running());
    }

    #[test]
    fn the_step_is_half_the_shortest_timeout_within_bounds() {
        assert_eq!(
            TimerAnchor::new(Duration::from_secs(1)).step,
            Duration::from_millis(500)
        );
        assert_eq!(TimerAnchor::new(Duration::from_millis(1)).step, MIN_STEP);
        assert_eq!(TimerAnchor::new(Duration::from_secs(60)).step, MAX_STEP);
    }
}
