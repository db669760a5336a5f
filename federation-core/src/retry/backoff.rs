//! Jittered exponential backoff between attempts on the same cluster.

use std::time::Duration;

use rand::RngExt;

use crate::config::BackoffPolicy;

/// Exponential backoff from `base` to `max` with "equal jitter": retry `n` waits a uniformly
/// random time in `[cap / 2, cap]` where `cap = min(max, base × 2^(n-1))`. Half the wait is
/// fixed (the backoff really grows), half is random (callers that failed together do not retry
/// together). Any durations work, including sub-millisecond and zero ones; nothing panics.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Backoff {
    base: Duration,
    max: Duration,
}

impl Backoff {
    /// A backoff following `policy`; a `max` below `base` is raised to `base`.
    pub fn new(policy: &BackoffPolicy) -> Self {
        Self {
            base: policy.base,
            max: policy.max.max(policy.base),
        }
    }

    /// The upper bound of the wait before retry `retry_number` (1 = first retry; 0 counts as 1).
    pub fn cap(&self, retry_number: u32) -> Duration {
        let doublings = retry_number.saturating_sub(1).min(32);
        self.base
            .checked_mul(1u32 << doublings.min(31))
            .map_or(self.max, |d| d.min(self.max))
    }

    /// The jittered wait before retry `retry_number` (1 = first retry).
    pub fn delay(&self, retry_number: u32, rng: &mut impl rand::Rng) -> Duration {
        let cap = u64::try_from(self.cap(retry_number).as_nanos()).unwrap_or(u64::MAX);
        let low = cap / 2;
        if low >= cap {
            return Duration::from_nanos(cap);
        }
        Duration::from_nanos(rng.random_range(low..=cap))
    }
}

#[cfg(test)]
mod tests {
    use rand::SeedableRng;
    use rand::rngs::SmallRng;

    use super::*;

    fn ms(n: u64) -> Duration {
        Duration::from_millis(n)
    }

    #[test]
    fn grows_exponentially_within_bounds() {
        let backoff = Backoff::new(&BackoffPolicy::default()); // 25 ms → 250 ms
        let mut rng = SmallRng::seed_from_u64(7);
        let caps: Vec<_> = (1..=6).map(|n| backoff.cap(n)).collect();
        assert_eq!(caps, [ms(25), ms(50), ms(100), ms(200), ms(250), ms(250)]);
        for n in 1..=40 {
            let cap = backoff.cap(n);
            for _ in 0..200 {
                let d = backoff.delay(n, &mut rng);
                assert!(
                    d >= cap / 2 && d <= cap,
                    "retry {n}: {d:?} outside [{:?}, {cap:?}]",
                    cap / 2
                );
            }
        }
        assert_eq!(backoff.cap(0), ms(25));
        assert_eq!(backoff.cap(u32::MAX), ms(250));
    }

    #[test]
    fn jitter_spreads_the_waits() {
        let backoff = Backoff::new(&BackoffPolicy::default());
        let mut rng = SmallRng::seed_from_u64(1);
        let waits: std::collections::BTreeSet<_> =
            (0..50).map(|_| backoff.delay(3, &mut rng)).collect();
        assert!(waits.len() > 40, "waits should differ: {waits:?}");
    }

    #[test]
    fn tiny_zero_and_inverted_policies_never_panic() {
        let mut rng = SmallRng::seed_from_u64(3);
        for (base, max) in [
            (Duration::ZERO, Duration::ZERO),
            (Duration::from_nanos(1), Duration::from_nanos(1)),
            (Duration::from_micros(3), ms(1)),
            (ms(500), ms(10)),
            (Duration::MAX, Duration::MAX),
        ] {
            let backoff = Backoff::new(&BackoffPolicy { base, max });
            for n in [0, 1, 2, 31, 32, 33, u32::MAX] {
                let d = backoff.delay(n, &mut rng);
                assert!(d <= base.max(max), "{base:?}/{max:?} retry {n}: {d:?}");
            }
        }
    }
}
