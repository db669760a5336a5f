//! Hybrid logical clock: timestamps that order causally related changes correctly even when the
//! two clusters' wall clocks disagree.
//!
//! Wall-clock "last writer wins" loses updates when clocks drift: a change made after seeing
//! another can carry an earlier time and lose to it. A hybrid logical clock (Kulkarni et al.,
//! 2014) keeps wall-clock milliseconds when they move forward and otherwise counts in a logical
//! component, and every received timestamp pushes the local clock past it. So a change made after
//! seeing version `v` always carries a larger timestamp than `v`, on any machine, while
//! timestamps stay close to real time for latency measurement and the tombstone window.

use std::sync::{Arc, Mutex};
use std::time::{SystemTime, UNIX_EPOCH};

use serde::{Deserialize, Serialize};

/// A hybrid logical timestamp: wall-clock milliseconds since the Unix epoch, then a counter for
/// events within one millisecond. Ordered by `(wall_ms, logical)`.
#[derive(
    Clone, Copy, Debug, Default, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize,
)]
pub struct Hlc {
    /// Milliseconds since the Unix epoch (the largest physical time seen).
    pub wall_ms: u64,
    /// Orders events that share `wall_ms`.
    pub logical: u32,
}

impl std::fmt::Display for Hlc {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}.{:04}", self.wall_ms, self.logical)
    }
}

/// Source of physical time in ms since the epoch; injectable for tests.
pub type PhysicalClock = Arc<dyn Fn() -> u64 + Send + Sync>;

/// The system clock as a [`PhysicalClock`].
pub fn system_clock() -> PhysicalClock {
    Arc::new(|| {
        SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map_or(0, |d| u64::try_from(d.as_millis()).unwrap_or(u64::MAX))
    })
}

/// A hybrid logical clock shared by one process's publishers and subscribers. Cheap to clone.
#[derive(Clone)]
pub struct HybridClock {
    physical: PhysicalClock,
    last: Arc<Mutex<Hlc>>,
}

impl std::fmt::Debug for HybridClock {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("HybridClock")
            .field("last", &self.peek())
            .finish()
    }
}

impl Default for HybridClock {
    fn default() -> Self {
        Self::new(system_clock())
    }
}

impl HybridClock {
    /// A clock reading `physical` for wall time.
    pub fn new(physical: PhysicalClock) -> Self {
        Self {
            physical,
            last: Arc::new(Mutex::new(Hlc::default())),
        }
    }

    /// The last timestamp handed out or observed (does not advance the clock).
    pub fn peek(&self) -> Hlc {
        *self.last.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Physical time now (ms since the epoch).
    pub fn physical_ms(&self) -> u64 {
        (self.physical)()
    }

    /// A timestamp for a local event: larger than every timestamp this clock produced or
    /// observed before.
    pub fn now(&self) -> Hlc {
        let physical = self.physical_ms();
        let mut last = self.last.lock().unwrap_or_else(|p| p.into_inner());
        *last = if physical > last.wall_ms {
            Hlc {
                wall_ms: physical,
                logical: 0,
            }
        } else {
            bump(*last)
        };
        *last
    }

    /// Merge a timestamp received from elsewhere; returns a timestamp larger than both it and
    /// everything this clock produced before (the receive rule of the HLC algorithm).
    pub fn observe(&self, remote: Hlc) -> Hlc {
        let physical = self.physical_ms();
        let mut last = self.last.lock().unwrap_or_else(|p| p.into_inner());
        let wall = physical.max(last.wall_ms).max(remote.wall_ms);
        *last = if wall == last.wall_ms && wall == remote.wall_ms {
            bump(Hlc {
                wall_ms: wall,
                logical: last.logical.max(remote.logical),
            })
        } else if wall == last.wall_ms {
            bump(*last)
        } else if wall == remote.wall_ms {
            bump(remote)
        } else {
            Hlc {
                wall_ms: wall,
                logical: 0,
            }
        };
        *last
    }
}

/// The next timestamp after `t` at the same wall time (moving to the next millisecond if the
/// counter is exhausted, which keeps the order strict).
fn bump(t: Hlc) -> Hlc {
    match t.logical.checked_add(1) {
        Some(logical) => Hlc {
            wall_ms: t.wall_ms,
            logical,
        },
        None => Hlc {
            wall_ms: t.wall_ms.saturating_add(1),
            logical: 0,
        },
    }
}

#[cfg(test)]
mod tests {
    use std::sync::atomic::{AtomicU64, Ordering};

    use super::*;

    fn manual(start: u64) -> (HybridClock, Arc<AtomicU64>) {
        let time = Arc::new(AtomicU64::new(start));
        let source = Arc::clone(&time);
        (
            HybridClock::new(Arc::new(move || source.load(Ordering::SeqCst))),
            time,
        )
    }

    #[test]
    fn follows_wall_time_and_counts_within_a_millisecond() {
        let (clock, time) = manual(1_000);
        assert_eq!(
            clock.now(),
            Hlc {
                wall_ms: 1_000,
                logical: 0
            }
        );
        assert_eq!(
            clock.now(),
            Hlc {
                wall_ms: 1_000,
                logical: 1
            }
        );
        time.store(1_005, Ordering::SeqCst);
        assert_eq!(
            clock.now(),
            Hlc {
                wall_ms: 1_005,
                logical: 0
            }
        );
    }

    #[test]
    fn never_goes_backwards_when_the_wall_clock_does() {
        let (clock, time) = manual(2_000);
        let a = clock.now();
        time.store(1_000, Ordering::SeqCst);
        let b = clock.now();
        assert!(b > a, "{b} must follow {a}");
    }

    #[test]
    fn a_timestamp_after_observing_a_remote_one_is_larger_even_with_a_slow_clock() {
        let (slow, _) = manual(1_000);
        let remote = Hlc {
            wall_ms: 5_000,
            logical: 7,
        };
        let merged = slow.observe(remote);
        assert!(merged > remote);
        assert!(slow.now() > merged);
        // A remote timestamp in the past does not move the clock back.
        let (fast, _) = manual(9_000);
        let before = fast.now();
        assert!(fast.observe(remote) > before);
    }
}
