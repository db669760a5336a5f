//! Smooth weighted round robin (the nginx algorithm).
//!
//! Each pick adds every candidate's weight to its "current weight", takes the largest and
//! subtracts the total from it. Over `total` picks each candidate is chosen exactly `weight`
//! times, interleaved (weights 5, 1, 1 → a a b a c a a, not a a a a a b c). The current
//! weights live in each instance's [`InstanceStats`](super::InstanceStats), so the sequence
//! stays fair when instances join or leave between picks: a newcomer starts at 0, and a stale
//! value is clamped to `[-total, total]`.

use std::sync::atomic::Ordering;

use super::stats::Candidate;

/// Picks the next candidate; the caller holds the balancer's round-robin lock.
pub(crate) fn pick(candidates: &[Candidate<'_>]) -> Option<usize> {
    let total: i64 = candidates.iter().map(|c| i64::from(c.weight)).sum();
    if total == 0 {
        return None;
    }
    let mut best: Option<(usize, i64)> = None;
    for (i, c) in candidates.iter().enumerate() {
        if c.weight == 0 {
            continue;
        }
        let current = c
            .stats
            .rr_current
            .load(Ordering::Relaxed)
            .clamp(-total, total)
            + i64::from(c.weight);
        c.stats.rr_current.store(current, Ordering::Relaxed);
        if best.is_none_or(|(_, b)| current > b) {
            best = Some((i, current));
        }
    }
    let (index, current) = best?;
    candidates[index]
        .stats
        .rr_current
        .store(current - total, Ordering::Relaxed);
    Some(index)
}
