//! Power of two choices: draw two candidates by weight, keep the cheaper one.

use super::stats::Candidate;
use crate::rng::SplitMix;

/// Sum of the candidates' weights (saturating; the list is short).
fn total_weight(candidates: &[Candidate<'_>]) -> u64 {
    candidates.iter().map(|c| u64::from(c.weight)).sum()
}

/// The candidate whose cumulative weight range holds `ticket`, skipping `skip`.
fn by_ticket(candidates: &[Candidate<'_>], mut ticket: u64, skip: Option<usize>) -> Option<usize> {
    for (i, c) in candidates.iter().enumerate() {
        if Some(i) == skip {
            continue;
        }
        let w = u64::from(c.weight);
        if ticket < w {
            return Some(i);
        }
        ticket -= w;
    }
    None
}

/// Picks by P2C with `cost(candidate) → f64` (lower is better). Candidates are drawn
/// proportionally to weight, the second one distinct from the first; weight 0 is never drawn.
pub(crate) fn pick(
    rng: &SplitMix,
    candidates: &[Candidate<'_>],
    cost: impl Fn(&Candidate<'_>) -> f64,
) -> Option<usize> {
    let total = total_weight(candidates);
    if total == 0 {
        return None;
    }
    let first = by_ticket(candidates, rng.below(total), None)?;
    let rest = total - u64::from(candidates[first].weight);
    if rest == 0 {
        return Some(first);
    }
    let Some(second) = by_ticket(candidates, rng.below(rest), Some(first)) else {
        return Some(first);
    };
    if cost(&candidates[second]) < cost(&candidates[first]) {
        Some(second)
    } else {
        Some(first)
    }
}
