//! The sync stamp every change carries: which event, from which cluster, at what hybrid time.
//!
//! Redelivered events (a consumer that crashed before committing, a rebalance, a producer retry)
//! must be recognised, and concurrent changes must be ordered the same way on both sides. The
//! stamp gives both: its `event_id` names the change, and its order, `(hlc, origin, event_id)`, is
//! total and the same everywhere, with ties on time broken by cluster name.

use std::cmp::Ordering;
use std::fmt;
use std::sync::Arc;

use serde::de::Visitor;
use serde::{Deserialize, Deserializer, Serialize};

use super::clusters::{ClusterMap, intern};
use super::hlc::Hlc;

/// Identity and position of one change.
///
/// Its strings are shared (`Arc<str>`): a stamp is copied into every state, head and report
/// that refers to the change, and a copy is a reference count, not an allocation (the origin,
/// a cluster name, is one allocation per thread). The JSON form is unchanged (two strings).
#[derive(Clone, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct Stamp {
    /// Unique id of the change (32 hex digits, random).
    #[serde(deserialize_with = "shared_str")]
    pub event_id: Arc<str>,
    /// The cluster where the change was made.
    #[serde(deserialize_with = "cluster_name")]
    pub origin: Arc<str>,
    /// When, on the hybrid logical clock of the origin.
    pub hlc: Hlc,
}

impl Stamp {
    /// A stamp with a fresh random event id.
    pub fn new(origin: impl AsRef<str>, hlc: Hlc) -> Self {
        Self {
            event_id: Arc::from(new_event_id()),
            origin: intern(origin.as_ref()),
            hlc,
        }
    }
}

/// A string read into one shared allocation (serde's `Arc<str>` reads a `String` first).
fn shared_str<'de, D: Deserializer<'de>>(deserializer: D) -> Result<Arc<str>, D::Error> {
    deserializer.deserialize_str(SharedStr { intern: false })
}

/// A cluster name, shared with the other copies of it on this thread.
fn cluster_name<'de, D: Deserializer<'de>>(deserializer: D) -> Result<Arc<str>, D::Error> {
    deserializer.deserialize_str(SharedStr { intern: true })
}

struct SharedStr {
    intern: bool,
}

impl Visitor<'_> for SharedStr {
    type Value = Arc<str>;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("a string")
    }

    fn visit_str<E: serde::de::Error>(self, text: &str) -> Result<Arc<str>, E> {
        Ok(if self.intern {
            intern(text)
        } else {
            Arc::from(text)
        })
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

impl fmt::Display for Stamp {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
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
