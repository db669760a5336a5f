//! Fault injection: the failure modes an SDK must survive, switchable at run time.
//!
//! Failover code that was only tested against a healthy registry fails in the ways nobody
//! tried. The double can be switched into each failure Consul really shows: transport loss
//! (`Down`: refused connections), a partition (`Hang`: accepted, never answered), leader loss
//! (500 `No cluster leader`), slowness, broken bodies, arbitrary statuses, a deleted token and
//! an index regression. `Down` is applied to the listener; the rest are checked at the start of
//! every request (`Garbled` and `NoLeader` where the response is built).

use std::sync::Arc;

use super::http::{Reply, text};
use super::options::Fault;
use super::server;
use super::shared::Shared;

/// Applies the request-level faults. `None` lets the request proceed.
pub(crate) async fn before_request(shared: &Shared) -> Option<Reply> {
    match shared.fault() {
        Some(Fault::Hang) => std::future::pending().await,
        Some(Fault::Slow(delay)) => {
            tokio::time::sleep(delay).await;
            None
        }
        Some(Fault::Status(status, body)) => Some(text(status, body)),
        Some(Fault::AclNotFound) => Some(text(403, "ACL not found")),
        _ => None,
    }
}

/// Switches a fault on (replacing the previous one).
pub(crate) fn set(shared: &Arc<Shared>, fault: Fault) {
    match fault {
        Fault::IndexReset => shared.reset_index(),
        Fault::Down => {
            shared.store_fault(Some(Fault::Down));
            shared.server.stop();
        }
        other => {
            if shared.store_fault(Some(other)) == Some(Fault::Down) {
                server::restart(shared);
            }
        }
    }
}

/// Switches faults off; after `Down`, the same port is bound again.
pub(crate) fn clear(shared: &Arc<Shared>) {
    if shared.store_fault(None) == Some(Fault::Down) {
        server::restart(shared);
    }
}
