//! Startup routing: a call made before a higher-ranked cluster's registry first answered waits
//! for that answer, briefly, instead of routing elsewhere or failing.
//!
//! Failures prevented: a fresh client whose looma Consul happened to answer first sends its
//! first calls (and, with fail-back hysteresis, possibly many more) to looma although zervigo is
//! preferred and perfectly healthy; and calls made in the first milliseconds after building a
//! client fail with `NoHealthyInstance` ("discovery has not answered yet") although discovery is
//! about to answer. A service's discovery watches start on its first call (lazy watches, see
//! `ServiceRoute::watch`), so that call always finds its registries pending; the answer is
//! usually a few milliseconds away.
//!
//! Algorithm: during the service's startup grace (default 1 s after its watches started, see
//! [`ClientBuilder::discovery_startup_grace`](super::ClientBuilder::discovery_startup_grace)) a
//! call first looks at the cluster that would rank highest: the explicit cluster override, else
//! the preferred cluster; without either, all clusters. If that registry has neither answered
//! nor reported an error yet, the call waits for its first answer, at most until the grace ends
//! or the call's deadline, whichever is first. Then ranking proceeds as usual: a preferred
//! cluster still pending after the wait is skipped (without entering the failed-over state),
//! and `NoHealthyInstance` with a `DiscoveryPending` reason is returned only when no cluster can
//! serve. After the grace a call pays one atomic load and a comparison here.

use futures_util::future::select_all;
use tokio::time::Instant;

use crate::client::state::ServiceRoute;

/// Waits, until `until` at the latest, for the first discovery answer of the cluster(s) the call
/// would rank highest, when they have not answered yet.
pub(crate) async fn await_first_answer(
    svc: &ServiceRoute,
    override_cluster: Option<&str>,
    until: Instant,
) {
    let routes = &svc.routes;
    let target = match override_cluster {
        Some(name) => match routes.iter().find(|r| &*r.cluster == name) {
            Some(route) => Some(route),
            // Unknown or unmapped cluster: ranking reports it at once.
            None => return,
        },
        None => svc.preferred.and_then(|i| routes.get(i)),
    };
    match target {
        Some(route) => {
            if route.awaiting_first_answer() {
                route.first_answer(until).await;
            }
        }
        None => {
            // No preference: wait only while no cluster has answered (any answer lets the call
            // be ranked by health).
            if !routes.is_empty() && routes.iter().all(|r| r.awaiting_first_answer()) {
                select_all(routes.iter().map(|r| Box::pin(r.first_answer(until)))).await;
            }
        }
    }
}
