//! One lock-free, seedable random source (splitmix64 over an atomic counter).
//!
//! **Failure prevented.** Jitter, balancer picks and trace ids need cheap randomness from many
//! threads at once; a locked generator would serialise every call on one mutex, and two copies
//! of the generator drift apart. Each draw advances an atomic counter by the golden gamma and
//! mixes it: no lock, deterministic for a given seed in one thread, and well distributed.

use std::sync::atomic::{AtomicU64, Ordering};

const GAMMA: u64 = 0x9E37_79B9_7F4A_7C15;

/// A splitmix64 generator shared by reference.
#[derive(Debug)]
pub(crate) struct SplitMix {
    state: AtomicU64,
}

impl SplitMix {
    /// A generator from `seed`, or from the OS's randomness when `None`.
    pub(crate) fn new(seed: Option<u64>) -> Self {
        Self {
            state: AtomicU64::new(seed.unwrap_or_else(rand::random::<u64>)),
        }
    }

    /// The next 64 random bits.
    #[inline]
    pub(crate) fn next_u64(&self) -> u64 {
        let mut z = self
            .state
            .fetch_add(GAMMA, Ordering::Relaxed)
            .wrapping_add(GAMMA);
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }

    /// Uniform in `0..n` (`n > 0`), by multiply-shift (bias below 2^-32 for our sizes).
    #[inline]
    pub(crate) fn below(&self, n: u64) -> u64 {
        ((u128::from(self.next_u64()) * u128::from(n)) >> 64) as u64
    }
}

#[cfg(test)]
mod tests {
    use super::SplitMix;

    #[test]
    fn a_seed_gives_the_same_sequence_and_below_stays_in_range() {
        let (a, b) = (SplitMix::new(Some(7)), SplitMix::new(Some(7)));
        let first: Vec<u64> = (0..4).map(|_| a.next_u64()).collect();
        let second: Vec<u64> = (0..4).map(|_| b.next_u64()).collect();
        assert_eq!(first, second);
        assert!(first.windows(2).all(|w| w[0] != w[1]));
        assert!((0..1000).all(|_| a.below(3) < 3));
    }
}
