//! A token-bucket rate limit, lock-free (GCRA formulation) on tokio's clock.

use std::fmt;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use tokio::time::Instant;

use crate::config::RateLimitPolicy;

/// Admits `per_second` calls per second on average with bursts of up to `burst`.
///
/// Implemented as the generic cell rate algorithm: one atomic "theoretical arrival time"; a call
/// is admitted when it would not push that time more than `burst` intervals past now. Equivalent
/// to a token bucket of `burst` tokens refilled at `per_second`, without a lock.
pub struct RateLimiter {
    origin: Instant,
    /// Theoretical arrival time, in nanoseconds since `origin`.
    tat: AtomicU64,
    /// Nanoseconds per token.
    interval: u64,
    /// Nanoseconds of burst tolerance (`burst × interval`).
    capacity: u64,
}

impl RateLimiter {
    /// A limiter following `policy`. A `burst` of 0 counts as 1; a `per_second` that is not a
    /// positive finite number admits only the first `burst` calls.
    pub fn new(policy: &RateLimitPolicy) -> Self {
        let interval = if policy.per_second.is_finite() && policy.per_second > 0.0 {
            (1e9_f64 / policy.per_second).clamp(1.0, u64::MAX as f64 / 2.0) as u64
        } else {
            u64::MAX / 2
        };
        let burst = u64::from(policy.burst.max(1));
        Self {
            origin: Instant::now(),
            tat: AtomicU64::new(0),
            interval,
            capacity: interval.saturating_mul(burst),
        }
    }

    /// Takes one token; `false` (nothing taken) when the bucket is empty.
    pub fn try_acquire(&self) -> bool {
        let now = u64::try_from(
            Instant::now()
                .saturating_duration_since(self.origin)
                .as_nanos(),
        )
        .unwrap_or(u64::MAX);
        self.tat
            .fetch_update(Ordering::AcqRel, Ordering::Acquire, |tat| {
                let next = tat.max(now).saturating_add(self.interval);
                (next - now <= self.capacity).then_some(next)
            })
            .is_ok()
    }

    /// The time between tokens.
    pub fn interval(&self) -> Duration {
        Duration::from_nanos(self.interval)
    }
}

impl fmt::Debug for RateLimiter {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("RateLimiter")
            .field("interval", &self.interval())
            .field("burst", &(self.capacity / self.interval.max(1)))
            .finish()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn admitted(limiter: &RateLimiter, tries: u32) -> u32 {
        (0..tries).filter(|_| limiter.try_acquire()).count() as u32
    }

    #[tokio::test(start_paused = true)]
    async fn burst_then_steady_rate() {
        let limiter = RateLimiter::new(&RateLimitPolicy {
            per_second: 10.0,
            burst: 5,
        });
        assert_eq!(admitted(&limiter, 20), 5, "burst");
        tokio::time::advance(Duration::from_millis(100)).await;
        assert_eq!(admitted(&limiter, 20), 1, "one token per 100 ms");
        tokio::time::advance(Duration::from_secs(1)).await;
        assert_eq!(admitted(&limiter, 20), 5, "refill is capped at the burst");
        let mut total = 0;
        for _ in 0..100 {
            tokio::time::advance(Duration::from_millis(10)).await;
            total += admitted(&limiter, 3);
        }
        assert_eq!(total, 10, "10/s sustained over 1 s");
    }

    #[tokio::test(start_paused = true)]
    async fn invalid_rates_do_not_panic() {
        for per_second in [0.0, -1.0, f64::NAN, f64::INFINITY, 1e-300, 1e300] {
            let limiter = RateLimiter::new(&RateLimitPolicy {
                per_second,
                burst: 0,
            });
            assert!(
                limiter.try_acquire(),
                "{per_second}: the first call fits the burst"
            );
            tokio::time::advance(Duration::from_secs(1)).await;
            let _ = limiter.try_acquire();
        }
    }
}
