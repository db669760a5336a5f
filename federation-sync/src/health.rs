//! The sync's health entry: per origin cluster, is its change stream being consumed, how far
//! behind, and the last error; plus how many published changes are still pending.

use std::collections::BTreeMap;
use std::sync::Mutex;
use std::time::{SystemTime, UNIX_EPOCH};

use serde::Serialize;

/// Health of consuming one origin's changes.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize)]
pub struct OriginHealth {
    /// Messages consumed since start.
    pub consumed: u64,
    /// When the last one was consumed (ms since the epoch), if any.
    pub last_consumed_ms: Option<u64>,
    /// Messages published but not yet consumed (from the client's statistics; -1 unknown).
    pub lag: i64,
    /// The last consumer error (broker unreachable, topic missing), cleared by the next message.
    pub last_error: Option<String>,
}

/// The sync runtime's health snapshot.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize)]
pub struct SyncHealth {
    /// The cluster this process publishes as.
    pub local_cluster: String,
    /// Per origin cluster being consumed.
    pub origins: BTreeMap<String, OriginHealth>,
    /// Entities whose latest published change is still pending somewhere.
    pub pending: usize,
}

impl SyncHealth {
    /// Healthy when no origin reports an error.
    pub fn is_healthy(&self) -> bool {
        self.origins.values().all(|o| o.last_error.is_none())
    }
}

#[derive(Debug, Default)]
pub(crate) struct HealthBoard {
    origins: Mutex<BTreeMap<String, OriginHealth>>,
}

impl HealthBoard {
    fn with(&self, origin: &str, f: impl FnOnce(&mut OriginHealth)) {
        let mut origins = self.origins.lock().unwrap_or_else(|p| p.into_inner());
        // Looked up first: the origin's name is copied only the first time.
        if let Some(health) = origins.get_mut(origin) {
            return f(health);
        }
        f(origins
            .entry(origin.to_string())
            .or_insert_with(|| OriginHealth {
                lag: -1,
                ..OriginHealth::default()
            }));
    }

    /// `n` more messages of `origin` finished.
    pub(crate) fn consumed(&self, origin: &str, n: usize) {
        let now = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map_or(0, |d| u64::try_from(d.as_millis()).unwrap_or(u64::MAX));
        self.with(origin, |h| {
            h.consumed = h
                .consumed
                .saturating_add(u64::try_from(n).unwrap_or(u64::MAX));
            h.last_consumed_ms = Some(now);
            h.last_error = None;
        });
    }

    pub(crate) fn lag(&self, origin: &str, lag: i64) {
        self.with(origin, |h| h.lag = lag);
    }

    pub(crate) fn error(&self, origin: &str, error: String) {
        self.with(origin, |h| h.last_error = Some(error));
    }

    pub(crate) fn snapshot(&self) -> BTreeMap<String, OriginHealth> {
        self.origins
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .clone()
    }
}
