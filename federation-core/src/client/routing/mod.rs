//! Where a call may go: the routing table of each (service, cluster), cluster ranking, the
//! choice of the next instance, late admission of clusters, the startup grace, and the
//! per-route metric handles.
//!
//! **Failure prevented.** Routing decisions made from stale or half-updated state: each route
//! publishes an immutable snapshot of its instances (`table.rs`), and ranking (`rank.rs`),
//! choosing (`choose.rs`), late admission (`late.rs`) and the startup wait (`startup.rs`) only
//! read snapshots.

mod choose;
mod endpoint;
pub(crate) mod late;
mod metrics;
mod rank;
mod spill;
mod split;
pub(crate) mod startup;
mod table;

pub(crate) use choose::choose;
pub(crate) use rank::{Failback, Order, RankPolicy, rank};
pub(crate) use spill::Spill;
pub(crate) use split::SplitRoute;
pub(crate) use table::{ClusterRoute, Endpoint, RouteSpec, Snapshot};
