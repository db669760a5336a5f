//! The retry budget: retries and failovers as a bounded share of real traffic.

use std::fmt;
use std::sync::{Arc, Mutex};

use tokio::time::Instant;

use super::window::SlidingPair;
use crate::config::RetryBudgetPolicy;

struct Inner {
    /// Deposits (calls) and withdrawals (retries, failovers) over the window.
    window: Mutex<SlidingPair>,
    /// Share of deposits that may be withdrawn (`percent / 100`).
    ratio: f64,
    /// Withdrawals always allowed per window (`min_per_second × window seconds`).
    reserve: f64,
}

/// A retry budget shared by every retry **and** failover of one service. Cheap to clone.
///
/// Over a sliding window (10 buckets), allowed extra attempts =
/// `percent % × calls + min_per_second × window seconds`; each retry or failover spends one.
/// When the budget is spent the caller returns the last error instead of adding load.
#[derive(Clone)]
pub struct RetryBudget {
    inner: Arc<Inner>,
}

impl RetryBudget {
    /// A budget following `policy` (`percent` is clamped to 0–1000).
    pub fn new(policy: &RetryBudgetPolicy) -> Self {
        let ratio = f64::from(policy.percent.min(1000)) / 100.0;
        let reserve = f64::from(policy.min_per_second) * policy.window.as_secs_f64();
        Self {
            inner: Arc::new(Inner {
                window: Mutex::new(SlidingPair::new(policy.window)),
                ratio,
                reserve,
            }),
        }
    }

    /// Records one call (first attempt) at `now`, a clock reading the caller already has (the
    /// call's start). Call once per logical call, not per attempt.
    pub fn deposit_at(&self, now: Instant) {
        if let Ok(mut window) = self.inner.window.lock() {
            window.add(now, 1, 0);
        }
    }

    /// Spends one retry or failover; `false` when the budget is exhausted (nothing is spent).
    pub fn try_withdraw(&self) -> bool {
        let Ok(mut window) = self.inner.window.lock() else {
            return false;
        };
        let now = Instant::now();
        if self.inner.available(window.sums(now)) >= 1.0 {
            window.add(now, 0, 1);
            true
        } else {
            false
        }
    }

    /// Retries currently available (may be fractional; never negative).
    pub fn available(&self) -> f64 {
        self.inner
            .window
            .lock()
            .map(|w| self.inner.available(w.sums(Instant::now())))
            .unwrap_or(0.0)
    }
}

impl Inner {
    fn available(&self, (deposits, withdrawals): (u64, u64)) -> f64 {
        (deposits as f64 * self.ratio + self.reserve - withdrawals as f64).max(0.0)
    }
}

impl fmt::Debug for RetryBudget {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("RetryBudget")
            .field("available", &self.available())
            .finish()
    }
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use super::*;

    fn policy(percent: u32, min_per_second: u32) -> RetryBudgetPolicy {
        RetryBudgetPolicy {
            percent,
            min_per_second,
            window: Duration::from_secs(10),
        }
    }

    fn drain(budget: &RetryBudget) -> u32 {
        let mut n = 0;
        while budget.try_withdraw() {
            n += 1;
            assert!(n < 100_000, "budget never ran out");
        }
        n
    }

    #[tokio::test(start_paused = true)]
    async fn allows_percent_of_calls_plus_the_reserve() {
        let budget = RetryBudget::new(&policy(20, 10));
        for _ in 0..1000 {
            budget.deposit_at(Instant::now());
        }
        // 20 % of 1000 + 10/s × 10 s
        assert_eq!(drain(&budget), 300);
        assert!(!budget.try_withdraw());
        assert_eq!(budget.available(), 0.0);
    }

    #[tokio::test(start_paused = true)]
    async fn without_traffic_only_the_reserve_is_available() {
        let budget = RetryBudget::new(&policy(20, 0));
        assert!(!budget.try_withdraw(), "no calls, no reserve: no retries");
        for _ in 0..10 {
            budget.deposit_at(Instant::now());
        }
        assert_eq!(drain(&budget), 2);
    }

    #[tokio::test(start_paused = true)]
    async fn refills_as_the_window_slides() {
        let budget = RetryBudget::new(&policy(20, 1));
        for _ in 0..100 {
            budget.deposit_at(Instant::now());
        }
        assert_eq!(drain(&budget), 30); // 20 + 1/s × 10 s
        tokio::time::advance(Duration::from_secs(5)).await;
        assert_eq!(drain(&budget), 0, "still inside the window");
        tokio::time::advance(Duration::from_secs(6)).await;
        // Deposits and withdrawals both slid out: only the reserve is left.
        assert_eq!(drain(&budget), 10);
        for _ in 0..50 {
            budget.deposit_at(Instant::now());
        }
        assert_eq!(drain(&budget), 10, "20 % of 50 new calls");
    }
}
