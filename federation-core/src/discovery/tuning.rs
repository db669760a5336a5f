//! Pacing of discovery loops: jittered exponential backoff on errors and a token bucket.
//!
//! Failures this prevents: a thundering herd of watchers reconnecting in lock-step after an agent
//! restart (backoff with "equal jitter": half the delay fixed, half random), and a busy loop
//! against a server that answers a blocking query at once with an unchanged index (a request
//! after an answer that changed nothing takes a token from a small bucket, so a misbehaving
//! server is polled at most `1 / pace_refill` times per second once the burst is spent; a
//! request after a real change takes none, so a storm of changes is never delayed by pacing).

use std::time::Duration;

use tokio::time::Instant;

/// Internal timing knobs of discovery. The defaults suit production; tests shrink them.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct DiscoveryTuning {
    /// First backoff after a failed poll. Default: 250 ms.
    pub backoff_base: Duration,
    /// Largest backoff (it doubles per consecutive failure). Default: 30 s.
    pub backoff_max: Duration,
    /// Added to `wait + wait/16` to get the HTTP timeout of a blocking query. Default: 5 s.
    pub request_margin: Duration,
    /// TCP connect timeout to the agent. Default: 2 s.
    pub connect_timeout: Duration,
    /// Requests a watcher may issue back to back before pacing starts. Default: 8.
    pub pace_burst: u32,
    /// One more request is allowed per this period once the burst is spent. Default: 250 ms.
    pub pace_refill: Duration,
}

impl Default for DiscoveryTuning {
    fn default() -> Self {
        Self {
            backoff_base: Duration::from_millis(250),
            backoff_max: Duration::from_secs(30),
            request_margin: Duration::from_secs(5),
            connect_timeout: Duration::from_secs(2),
            pace_burst: 8,
            pace_refill: Duration::from_millis(250),
        }
    }
}

/// Exponential backoff with equal jitter: the n-th delay is in `[d/2, d)` with
/// `d = min(base * 2^n, max)`.
#[derive(Debug)]
pub(crate) struct Backoff {
    base: Duration,
    max: Duration,
    failures: u32,
}

impl Backoff {
    pub(crate) fn new(tuning: &DiscoveryTuning) -> Self {
        Self {
            base: tuning.backoff_base,
            max: tuning.backoff_max.max(tuning.backoff_base),
            failures: 0,
        }
    }

    /// The delay before the next attempt after one more failure.
    pub(crate) fn next_delay(&mut self) -> Duration {
        let factor = 1u32.checked_shl(self.failures.min(30)).unwrap_or(u32::MAX);
        self.failures = self.failures.saturating_add(1);
        let d = self.base.saturating_mul(factor).min(self.max);
        let half = d / 2;
        let nanos = u64::try_from(half.as_nanos()).unwrap_or(u64::MAX);
        let jitter = if nanos == 0 {
            0
        } else {
            rand::random_range(0..nanos)
        };
        half + Duration::from_nanos(jitter)
    }

    /// Forget failures after a success.
    pub(crate) fn reset(&mut self) {
        self.failures = 0;
    }
}

/// A token bucket on tokio's clock (so paused-clock tests control it).
#[derive(Debug)]
pub(crate) struct TokenBucket {
    burst: f64,
    tokens: f64,
    refill: Duration,
    last: Instant,
}

impl TokenBucket {
    pub(crate) fn new(tuning: &DiscoveryTuning) -> Self {
        let burst = f64::from(tuning.pace_burst.max(1));
        Self {
            burst,
            tokens: burst,
            refill: tuning.pace_refill,
            last: Instant::now(),
        }
    }

    /// Waits until a token is available and takes it. Never waits while tokens remain.
    pub(crate) async fn acquire(&mut self) {
        loop {
            let now = Instant::now();
            if self.refill.is_zero() {
                return;
            }
            let gained = now.duration_since(self.last).as_secs_f64() / self.refill.as_secs_f64();
            self.tokens = (self.tokens + gained).min(self.burst);
            self.last = now;
            if self.tokens >= 1.0 {
                self.tokens -= 1.0;
                return;
            }
            let missing = 1.0 - self.tokens;
            tokio::time::sleep(self.refill.mul_f64(missing)).await;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn backoff_doubles_with_jitter_up_to_the_cap() {
        let tuning = DiscoveryTuning {
            backoff_base: Duration::from_millis(100),
            backoff_max: Duration::from_millis(700),
            ..DiscoveryTuning::default()
        };
        let mut b = Backoff::new(&tuning);
        for full in [100u64, 200, 400, 700, 700, 700] {
            let d = b.next_delay();
            let full = Duration::from_millis(full);
            assert!(
                d >= full / 2 && d < full,
                "{d:?} not in [{:?}, {full:?})",
                full / 2
            );
        }
        b.reset();
        assert!(b.next_delay() < Duration::from_millis(100));
    }

    #[tokio::test(start_paused = true)]
    async fn bucket_allows_a_burst_then_paces() {
        let tuning = DiscoveryTuning {
            pace_burst: 3,
            pace_refill: Duration::from_millis(100),
            ..DiscoveryTuning::default()
        };
        let mut bucket = TokenBucket::new(&tuning);
        let start = Instant::now();
        for _ in 0..3 {
            bucket.acquire().await;
        }
        assert_eq!(start.elapsed(), Duration::ZERO, "the burst never waits");
        for _ in 0..5 {
            bucket.acquire().await;
        }
        let waited = start.elapsed();
        assert!(
            waited >= Duration::from_millis(490) && waited <= Duration::from_millis(520),
            "five paced requests take ~500 ms, took {waited:?}"
        );
    }
}
