//! Invalidations remembered for as long as a value they cover can still be read from Redis.
//!
//! Deleting a key in Redis is not enough: a process whose fetch started before the invalidation
//! may write the old answer back after the delete, and the delete itself runs after
//! `invalidate` returned. So every process (the sender at once, the others when the message
//! arrives) records *what* was invalidated and *when*, and a value read from Redis whose fetch
//! started at or before a matching invalidation is treated as absent. Entries are kept for the
//! longest time a value stays in Redis, then forgotten.

use std::collections::HashMap;
use std::sync::{Mutex, PoisonError};

/// What an invalidation covers.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) enum Scope {
    /// Exactly this path.
    Path(String),
    /// Every path starting with this.
    Prefix(String),
    /// Everything of the service.
    All,
}

impl Scope {
    pub(crate) fn covers(&self, path: &str) -> bool {
        match self {
            Scope::Path(p) => p == path,
            Scope::Prefix(p) => path.starts_with(p.as_str()),
            Scope::All => true,
        }
    }
}

#[derive(Default)]
struct Table {
    exact: HashMap<String, u64>,
    prefixes: Vec<(String, u64)>,
    all: u64,
}

/// Recent invalidations of one service (wall-clock milliseconds).
pub(crate) struct Tombstones {
    table: Mutex<Table>,
    keep_ms: u64,
}

/// Above this many exact entries, expired ones are swept on the next insert.
const SWEEP_AT: usize = 4096;

impl Tombstones {
    /// A table forgetting entries `keep_ms` after they were made.
    pub(crate) fn new(keep_ms: u64) -> Self {
        Self {
            table: Mutex::default(),
            keep_ms,
        }
    }

    /// Records an invalidation of `scope` at `at_ms`.
    pub(crate) fn add(&self, scope: &Scope, at_ms: u64, now_ms: u64) {
        let mut t = self.table.lock().unwrap_or_else(PoisonError::into_inner);
        let cutoff = now_ms.saturating_sub(self.keep_ms);
        match scope {
            Scope::Path(p) => {
                if t.exact.len() >= SWEEP_AT {
                    t.exact.retain(|_, at| *at > cutoff);
                }
                let slot = t.exact.entry(p.clone()).or_insert(0);
                *slot = (*slot).max(at_ms);
            }
            Scope::Prefix(p) => {
                t.prefixes.retain(|(_, at)| *at > cutoff);
                t.prefixes.push((p.clone(), at_ms));
            }
            Scope::All => t.all = t.all.max(at_ms),
        }
    }

    /// Whether a value of `path` whose fetch started at `as_of_ms` was invalidated since.
    pub(crate) fn kills(&self, path: &str, as_of_ms: u64) -> bool {
        let t = self.table.lock().unwrap_or_else(PoisonError::into_inner);
        if as_of_ms <= t.all {
            return true;
        }
        if t.exact.get(path).is_some_and(|at| as_of_ms <= *at) {
            return true;
        }
        t.prefixes
            .iter()
            .any(|(p, at)| as_of_ms <= *at && path.starts_with(p.as_str()))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn values_fetched_before_a_matching_invalidation_are_killed() {
        let t = Tombstones::new(60_000);
        t.add(&Scope::Path("/u/1".into()), 100, 100);
        assert!(t.kills("/u/1", 100));
        assert!(t.kills("/u/1", 99));
        assert!(!t.kills("/u/1", 101), "fetched after the invalidation");
        assert!(!t.kills("/u/2", 50), "another path");
        t.add(&Scope::Prefix("/u/".into()), 200, 200);
        assert!(t.kills("/u/2", 150));
        assert!(!t.kills("/v/2", 150));
        t.add(&Scope::All, 300, 300);
        assert!(t.kills("/v/2", 250));
    }

    #[test]
    fn old_prefix_entries_are_forgotten() {
        let t = Tombstones::new(1_000);
        t.add(&Scope::Prefix("/a".into()), 100, 100);
        t.add(&Scope::Prefix("/b".into()), 5_000, 5_000);
        assert!(!t.kills("/a/1", 50), "forgotten after keep_ms");
        assert!(t.kills("/b/1", 50));
    }
}
