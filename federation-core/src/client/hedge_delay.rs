//! When a hedge starts: the fixed delay, or a percentile of the service's recent attempts.
//!
//! **Failure prevented.** A fixed hedge delay that is right today is wrong after the service's
//! latency shifts: too short and every call is sent twice, too long and the hedge never helps.
//! With `percentile: p95` the delay follows the service: it is that percentile of the last
//! [`WINDOW`] successful attempt durations (recomputed every [`REFRESH`] samples, so a call
//! reads a cached value), and the fixed `delay` until [`MIN_SAMPLES`] have been seen.

use std::sync::Mutex;
use std::time::Duration;

use crate::config::HedgePolicy;

/// Successful attempt durations kept for the percentile.
pub(crate) const WINDOW: usize = 128;
/// Samples needed before the percentile replaces the fixed delay.
pub(crate) const MIN_SAMPLES: usize = 20;
/// New samples between two recomputations of the percentile.
const REFRESH: u32 = 16;
/// The shortest delay a percentile may give (a zero delay would hedge every call).
const FLOOR: Duration = Duration::from_millis(1);

/// The hedge settings of one service and its recent latencies.
pub(crate) struct HedgeTimer {
    fixed: Duration,
    percentile: Option<f64>,
    /// Extra requests per call at most.
    pub(crate) max_extra: u32,
    /// Whether a hedge may go to another cluster.
    pub(crate) cross_cluster: bool,
    recent: Mutex<Recent>,
}

struct Recent {
    samples: Vec<Duration>,
    next: usize,
    since_refresh: u32,
    cached: Option<Duration>,
}

impl HedgeTimer {
    pub(crate) fn new(policy: &HedgePolicy) -> Self {
        Self {
            fixed: policy.delay,
            percentile: policy.percentile,
            max_extra: policy.max_extra,
            cross_cluster: policy.cross_cluster,
            recent: Mutex::new(Recent {
                samples: Vec::new(),
                next: 0,
                since_refresh: 0,
                cached: None,
            }),
        }
    }

    /// How long an attempt may go unanswered before the next hedge.
    pub(crate) fn delay(&self) -> Duration {
        if self.percentile.is_none() {
            return self.fixed;
        }
        self.recent
            .lock()
            .ok()
            .and_then(|r| r.cached)
            .unwrap_or(self.fixed)
    }

    /// Records the duration of a successful attempt (only with a percentile delay).
    pub(crate) fn observe(&self, took: Duration) {
        let Some(percentile) = self.percentile else {
            return;
        };
        let Ok(mut recent) = self.recent.lock() else {
            return;
        };
        if recent.samples.len() < WINDOW {
            recent.samples.push(took);
        } else {
            let at = recent.next;
            recent.samples[at] = took;
        }
        recent.next = (recent.next + 1) % WINDOW;
        recent.since_refresh += 1;
        let enough = recent.samples.len() >= MIN_SAMPLES;
        if enough && (recent.cached.is_none() || recent.since_refresh >= REFRESH) {
            recent.since_refresh = 0;
            recent.cached = Some(percentile_of(&recent.samples, percentile).max(FLOOR));
        }
    }
}

/// The `percentile` (0–100) of `samples` (nearest rank).
fn percentile_of(samples: &[Duration], percentile: f64) -> Duration {
    let mut sorted = samples.to_vec();
    sorted.sort_unstable();
    let rank = (percentile / 100.0 * sorted.len() as f64).ceil() as usize;
    sorted[rank.clamp(1, sorted.len()) - 1]
}

#[cfg(test)]
mod tests {
    use super::*;

    fn timer(delay_ms: u64, percentile: Option<f64>) -> HedgeTimer {
        HedgeTimer::new(&HedgePolicy {
            delay: Duration::from_millis(delay_ms),
            percentile,
            ..HedgePolicy::default()
        })
    }

    #[test]
    fn a_fixed_delay_ignores_latencies() {
        let t = timer(40, None);
        for _ in 0..100 {
            t.observe(Duration::from_millis(500));
        }
        assert_eq!(t.delay(), Duration::from_millis(40));
    }

    #[test]
    fn a_percentile_delay_starts_fixed_then_follows_the_service() {
        let t = timer(40, Some(95.0));
        for ms in 1..MIN_SAMPLES as u64 {
            t.observe(Duration::from_millis(ms));
        }
        assert_eq!(t.delay(), Duration::from_millis(40), "too few samples yet");
        // 1..=100 ms: p95 is 95 ms once the window holds them all.
        for ms in MIN_SAMPLES as u64..=100 {
            t.observe(Duration::from_millis(ms));
        }
        let d = t.delay();
        assert!(
            d >= Duration::from_millis(90) && d <= Duration::from_millis(95),
            "{d:?}"
        );
        // The service gets faster: the old samples leave the window.
        for _ in 0..WINDOW {
            t.observe(Duration::from_millis(3));
        }
        assert_eq!(t.delay(), Duration::from_millis(3));
    }

    #[test]
    fn nearest_rank_percentile() {
        let s: Vec<Duration> = (1..=10).map(Duration::from_millis).collect();
        assert_eq!(percentile_of(&s, 50.0), Duration::from_millis(5));
        assert_eq!(percentile_of(&s, 99.0), Duration::from_millis(10));
        assert_eq!(percentile_of(&s, 0.1), Duration::from_millis(1));
    }
}
