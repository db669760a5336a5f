//! Choosing where the next attempt goes: untried instances first, failover in rank order.
//!
//! Retrying on the instance that just failed mostly fails again, and retrying within a dead
//! cluster wastes the deadline. So the next attempt goes, in order of preference, to (1) an
//! instance not yet tried in this call, in the current cluster or a later-ranked one (failover),
//! within `retry.max_attempts` per cluster; (2) any available instance except the one that just
//! failed; (3) that instance itself, when it is the only one left. Fail-back probe entries only
//! admit instances waiting for their half-open probe.

use std::sync::Arc;

use tokio::time::Instant;

use super::rank::Ranked;
use super::table::{Endpoint, Snapshot};
use crate::breaker::{BreakerPermit, BreakerState};
use crate::client::state::ServiceRoute;

/// Picks the next (ranked position, endpoint, permit): first an untried instance in the current
/// or a later cluster (failover), then any instance but the one that just failed, then that one.
/// `now` is the caller's clock reading, for the balancer's latency decay.
#[allow(clippy::type_complexity, reason = "a private helper's tuple result")]
pub(crate) fn choose(
    svc: &ServiceRoute,
    order: &[Ranked],
    per_cluster: &[u32],
    max_per_cluster: u32,
    (tried, now): (&[(usize, Arc<str>)], Instant),
    tags: Option<&[String]>,
) -> Option<(usize, usize, BreakerPermit, Arc<Snapshot>)> {
    let start = order
        .iter()
        .position(|r| Some(r.route) == tried.last().map(|t| t.0))
        .unwrap_or(0);
    let last_failed = tried.last();
    for tier in 0..3 {
        for (pos, ranked) in order.iter().enumerate() {
            if (tier == 0 && pos < start) || per_cluster[pos] >= max_per_cluster {
                continue;
            }
            let route = &svc.routes[ranked.route];
            let snapshot = if tried.is_empty() && pos == 0 {
                Arc::clone(&ranked.snapshot)
            } else {
                route.current()
            };
            let skip = |e: &Endpoint| {
                let id = &*e.id;
                (ranked.probe_only && matches!(e.state.breaker.state(), BreakerState::Closed))
                    || match tier {
                        0 => tried.iter().any(|(r, t)| *r == ranked.route && &**t == id),
                        1 => last_failed.is_some_and(|(r, t)| *r == ranked.route && &**t == id),
                        _ => false,
                    }
            };
            if let Some((index, permit)) = route.pick(&snapshot, (tags, now), ranked.panics, skip) {
                return Some((pos, index, permit, snapshot));
            }
        }
    }
    None
}
