//! Seeded randomness for error injection and latency distributions.
//!
//! A test that asserts "about 30 % of calls fail" is flaky unless the draws are reproducible, so
//! every instance owns a small seeded generator (xoshiro256++) instead of the thread RNG. The
//! same seed and the same request order give the same sequence of errors and delays.

use std::f64::consts::TAU;
use std::sync::Mutex;
use std::time::Duration;

use rand::rngs::Xoshiro256PlusPlus;
use rand::{RngExt, SeedableRng};

use super::behavior::Latency;

/// z-score of the 99th percentile of the standard normal distribution.
const Z_P99: f64 = 2.326_347_874_040_841;

/// A seeded generator shared by the connections of one instance.
#[derive(Debug)]
pub(crate) struct Sampler {
    rng: Mutex<Xoshiro256PlusPlus>,
}

impl Sampler {
    /// A generator seeded with `seed`.
    pub(crate) fn new(seed: u64) -> Self {
        Self {
            rng: Mutex::new(Xoshiro256PlusPlus::seed_from_u64(seed)),
        }
    }

    /// Restart the sequence from `seed`.
    pub(crate) fn reseed(&self, seed: u64) {
        *self.lock() = Xoshiro256PlusPlus::seed_from_u64(seed);
    }

    /// True with probability `p` (clamped to 0.0–1.0; NaN counts as 0).
    pub(crate) fn chance(&self, p: f64) -> bool {
        if p.is_nan() || p <= 0.0 {
            return false;
        }
        if p >= 1.0 {
            return true;
        }
        self.lock().random_bool(p)
    }

    /// One delay drawn from `latency`.
    pub(crate) fn delay(&self, latency: &Latency) -> Duration {
        match latency {
            Latency::None => Duration::ZERO,
            Latency::Fixed(d) => *d,
            Latency::Uniform(a, b) => {
                let (lo, hi) = if a <= b { (*a, *b) } else { (*b, *a) };
                if lo == hi {
                    return lo;
                }
                let nanos = self
                    .lock()
                    .random_range(duration_nanos(lo)..=duration_nanos(hi));
                Duration::from_nanos(nanos)
            }
            Latency::LogNormal { p50, p99 } => {
                let median = p50.as_secs_f64();
                if median <= 0.0 {
                    return Duration::ZERO;
                }
                let spread = (p99.as_secs_f64().max(median) / median).ln() / Z_P99;
                let z = self.standard_normal();
                Duration::try_from_secs_f64(median * (spread * z).exp()).unwrap_or(Duration::MAX)
            }
        }
    }

    /// A standard normal draw (Box–Muller).
    fn standard_normal(&self) -> f64 {
        let mut rng = self.lock();
        // 1 - u lies in (0, 1], so the logarithm is finite.
        let u1: f64 = 1.0 - rng.random::<f64>();
        let u2: f64 = rng.random::<f64>();
        (-2.0 * u1.ln()).sqrt() * (TAU * u2).cos()
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Xoshiro256PlusPlus> {
        // A panic while holding this lock cannot leave the generator invalid.
        self.rng
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }
}

fn duration_nanos(d: Duration) -> u64 {
    u64::try_from(d.as_nanos()).unwrap_or(u64::MAX)
}

/// A stable seed derived from text (FNV-1a), so each instance gets its own reproducible stream.
pub(crate) fn seed_from(parts: &[&str]) -> u64 {
    let mut hash: u64 = 0xcbf2_9ce4_8422_2325;
    for part in parts {
        for byte in part.bytes().chain(std::iter::once(0)) {
            hash ^= u64::from(byte);
            hash = hash.wrapping_mul(0x0100_0000_01b3);
        }
    }
    hash
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn same_seed_same_sequence() {
        let a = Sampler::new(7);
        let b = Sampler::new(7);
        let xs: Vec<bool> = (0..100).map(|_| a.chance(0.3)).collect();
        let ys: Vec<bool> = (0..100).map(|_| b.chance(0.3)).collect();
        assert_eq!(xs, ys);
    }

    #[test]
    fn uniform_stays_in_bounds_even_when_reversed() {
        let s = Sampler::new(1);
        let lat = Latency::Uniform(Duration::from_millis(20), Duration::from_millis(10));
        for _ in 0..1000 {
            let d = s.delay(&lat);
            assert!(d >= Duration::from_millis(10) && d <= Duration::from_millis(20));
        }
    }

    #[test]
    fn lognormal_median_and_tail_are_close_to_the_request() {
        let s = Sampler::new(3);
        let lat = Latency::LogNormal {
            p50: Duration::from_millis(10),
            p99: Duration::from_millis(100),
        };
        let mut draws: Vec<Duration> = (0..20_000).map(|_| s.delay(&lat)).collect();
        draws.sort();
        let p50 = draws[10_000].as_secs_f64() * 1000.0;
        let p99 = draws[19_800].as_secs_f64() * 1000.0;
        assert!((8.5..11.5).contains(&p50), "p50 {p50} ms");
        assert!((75.0..130.0).contains(&p99), "p99 {p99} ms");
    }

    #[test]
    fn chance_extremes_and_nan() {
        let s = Sampler::new(0);
        assert!(!s.chance(f64::NAN));
        assert!(!s.chance(-1.0));
        assert!(s.chance(2.0));
    }
}
