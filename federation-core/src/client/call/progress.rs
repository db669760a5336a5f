//! What the call loop carries from one attempt to the next, shared by the loop
//! (`pipeline.rs`) and its hedged turns (`hedge.rs`).
//!
//! **Failure prevented.** Two copies of the loop's bookkeeping (one per kind of turn) that
//! disagree on which instances a call has tried or in which order its attempts are reported.

use std::sync::Arc;
use std::time::Duration;

use smallvec::SmallVec;

use super::outcome::{Last, Trail};
use crate::attempt::Attempt;
use crate::breaker::BreakerPermit;
use crate::client::response::Attempts;
use crate::client::routing::{Order, Snapshot};
use crate::client::state::ServiceRoute;

/// Where the next attempt goes: a position in the ranked order, an instance of that route's
/// snapshot, and its breaker permit.
pub(super) struct Pick {
    pub(super) pos: usize,
    pub(super) index: usize,
    pub(super) permit: BreakerPermit,
    pub(super) snapshot: Arc<Snapshot>,
}

/// What the loop carries from one attempt to the next.
pub(super) struct Progress {
    pub(super) order: Order,
    /// Attempts per ranked position; the order never exceeds every route plus one probe entry.
    pub(super) per_cluster: SmallVec<[u32; 4]>,
    /// Instances tried, for picking the next one; filled only when a retry follows.
    pub(super) tried: Vec<(usize, Arc<str>)>,
    pub(super) trail: Trail,
    pub(super) last: Option<Last>,
    pub(super) last_pos: usize,
    pub(super) last_fast: bool,
    pub(super) retry_after: Option<Duration>,
    /// Whether clusters left out by ranking may join (`routing/late.rs`).
    pub(super) widen: bool,
}

impl Progress {
    pub(super) fn new(svc: &ServiceRoute, order: Order, widen: bool) -> Self {
        Self {
            order,
            per_cluster: SmallVec::from_elem(0, svc.routes.len() + 1),
            tried: Vec::new(),
            trail: Trail {
                attempts: Attempts::new(),
            },
            last: None,
            last_pos: 0,
            last_fast: false,
            retry_after: None,
            widen,
        }
    }

    /// Adds an attempt's record to the trail, in the order the attempts began (hedges of one
    /// turn finish in any order).
    pub(super) fn record(&mut self, attempt: Attempt) {
        let attempts = &mut self.trail.attempts;
        let at = attempts.partition_point(|a| a.offset <= attempt.offset);
        attempts.insert(at, attempt);
    }
}
