//! The sync stamp every change carries: which event, from which cluster, at what hybrid time.
//!
//! Redelivered events (a consumer that crashed before committing, a rebalance, a producer retry)
//! must be recognised, and concurrent changes must be ordered the same way on both sides. The
//! stamp gives both: its `event_id` names the change, and its order, `(hlc, origin, event_id)`, is
//! total and the same everywhere, with ties on time broken by cluster name.

use std::cmp::Ordering;

use serde::{Deserialize, Serialize};

use super::clusters::ClusterMap;
use super::hlc::Hlc;

/// Identity and position of one change.
#[derive(Clone, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct Stamp {
    /// Unique id of the change (32 hex digits, random).
    pub event_id: String,
    /// The cluster where the change was made.
    pub origin: String,
    /// When, on the hybrid logical clock of the origin.
    pub hlc: Hlc,
}

impl Stamp {
    /// A stamp with a fresh random event id.
    pub fn new(origin: impl Into<String>, hlc: Hlc) -> Self {
        Self {
            event_id: new_event_id(),
            origin: origin.into(),
            hlc,
        }
    }
}

impl Ord for Stamp {
    fn cmp(&self, other: &Self) -> Ordering {
        self.hlc
            .cmp(&other.hlc)
            .then_with(|| self.origin.cmp(&other.origin))
            .then_with(|| self.event_id.cmp(&other.event_id))
    }
}

impl PartialOrd for Stamp {
    fn partial_cmp(&self, other: &Self) -> Option<Ordering> {
        Some(self.cmp(other))
    }
}

impl std::fmt::Display for Stamp {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}@{}#{}", self.origin, self.hlc, self.event_id)
    }
}

/// Whether a change stamped `stamp`, whose writer had seen `seen`, was written after seeing the
/// version `other`: a later change of the same cluster, or one whose writer had seen `other`.
pub fn written_after(stamp: &Stamp, seen: &ClusterMap<Hlc>, other: &Stamp) -> bool {
    if stamp.origin == other.origin && stamp.hlc >= other.hlc {
        return true;
    }
    seen.get(&other.origin).is_some_and(|h| *h >= other.hlc)
}

/// 128 random bits as 32 lowercase hex digits.
pub fn new_event_id() -> String {
    format!("{:032x}", rand::random::<u128>())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn order_is_time_then_cluster_name_then_event_id() {
        let t = Hlc {
            wall_ms: 10,
            logical: 0,
        };
        let later = Hlc {
            wall_ms: 10,
            logical: 1,
        };
        let a = Stamp {
            event_id: "b".into(),
            origin: "looma".into(),
            hlc: t,
        };
        let b = Stamp {
            event_id: "a".into(),
            origin: "zervigo".into(),
            hlc: t,
        };
        let c = Stamp {
            event_id: "a".into(),
            origin: "looma".into(),
            hlc: later,
        };
        assert!(a < b, "same time: cluster name decides");
        assert!(b < c, "later time wins over cluster name");
        assert_eq!(new_event_id().len(), 32);
        assert_ne!(new_event_id(), new_event_id());
    }
}
