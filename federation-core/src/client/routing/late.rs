//! Clusters that could not serve when the call was ranked, but can by the time it fails over.
//!
//! Failure prevented: a call ranked while another cluster's registry had not answered yet (a
//! fresh client, or a process slowed down ~30x under valgrind) spends its attempts in the
//! preferred cluster and then fails with that cluster's transport error, although the other
//! cluster became available meanwhile and the deadline still allowed a failover.
//!
//! Algorithm: ranking leaves out clusters with no available instance. Before each retry the
//! loop admits every left-out cluster that has an available instance now (appended after the
//! ranked ones, so failover order is kept). When the ranked clusters are exhausted and some
//! left-out cluster's registry has neither answered nor failed yet, the call waits for that
//! first answer, at most until its deadline, and admits the cluster if it can serve. A call
//! that still fails reports why each left-out cluster could not take over
//! ([`Error::unavailable`](crate::error::Error::unavailable)); when the deadline ended the
//! wait, the error is a timeout. Calls pinned to one cluster (`cluster(name)`) never widen.

use futures_util::future::select_all;
use tokio::time::Instant;

use super::rank::{Order, Ranked};
use crate::client::state::ServiceRoute;
use crate::error::ClusterUnavailable;

/// Appends to `order` every route of `svc` absent from it that has an available instance now.
/// Returns whether one was added. Allocation-free when every route is ranked already.
pub(crate) fn admit(svc: &ServiceRoute, order: &mut Order, tags: Option<&[String]>) -> bool {
    let mut added = false;
    for (i, route) in svc.routes.iter().enumerate() {
        if order.iter().any(|r| r.route == i) {
            continue;
        }
        let snapshot = route.current();
        if route.health(&snapshot, tags).available > 0 {
            order.push(Ranked {
                route: i,
                probe_only: false,
                snapshot,
            });
            added = true;
        }
    }
    added
}

/// When the ranked clusters are exhausted: waits, until `deadline` at the latest, for the
/// registries of left-out clusters that have not answered yet, and admits those that can
/// serve. Returns whether a cluster was added (false at once when none is pending).
pub(crate) async fn await_more(
    svc: &ServiceRoute,
    order: &mut Order,
    tags: Option<&[String]>,
    deadline: Instant,
) -> bool {
    loop {
        if admit(svc, order, tags) {
            return true;
        }
        let pending: Vec<_> = svc
            .routes
            .iter()
            .enumerate()
            .filter(|(i, r)| !order.iter().any(|o| o.route == *i) && r.awaiting_first_answer())
            .map(|(_, r)| Box::pin(r.first_answer(deadline)))
            .collect();
        if pending.is_empty() || Instant::now() >= deadline {
            return false;
        }
        tracing::debug!(
            service = %svc.name,
            "ranked clusters exhausted: waiting for a registry's first answer"
        );
        select_all(pending).await;
    }
}

/// Why each route absent from `order` could not take the call over.
pub(crate) fn reasons(
    svc: &ServiceRoute,
    order: &[Ranked],
    tags: Option<&[String]>,
) -> Vec<ClusterUnavailable> {
    svc.routes
        .iter()
        .enumerate()
        .filter(|(i, _)| !order.iter().any(|o| o.route == *i))
        .map(|(_, route)| {
            let snapshot = route.current();
            let health = route.health(&snapshot, tags);
            ClusterUnavailable {
                cluster: route.cluster.to_string(),
                reason: route.unavailable_reason(&snapshot, &health),
            }
        })
        .collect()
}
