//! Request counters and the optional request recorder.
//!
//! Tests need to know how many attempts reached an instance ("the dead instance got at most 5
//! attempts") and sometimes what exactly arrived (headers propagated, token passed through). The
//! counters are atomics plus one small map; the recorder copies headers, so it is off unless a
//! test turns it on and never slows a benchmark.

use std::collections::{HashMap, VecDeque};
use std::sync::Mutex;
use std::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering};
use std::time::SystemTime;

use http::{HeaderMap, Method};

/// How many requests the recorder keeps (the oldest are dropped first).
pub const RECORD_CAPACITY: usize = 1000;

/// Distinct paths counted per instance; requests for further new paths only count in the
/// total, so a benchmark with unique paths cannot grow memory without bound.
pub const MAX_PATHS: usize = 10_000;

/// One request as the instance received it.
#[derive(Clone, Debug)]
pub struct RecordedRequest {
    /// Request method.
    pub method: Method,
    /// Request path (without the query).
    pub path: String,
    /// Raw query string, if any.
    pub query: Option<String>,
    /// Every request header.
    pub headers: HeaderMap,
    /// Number of body bytes received.
    pub body_len: usize,
    /// When the request head was received.
    pub received_at: SystemTime,
}

impl RecordedRequest {
    /// The first value of header `name` (case-insensitive), if present and valid text.
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers.get(name).and_then(|v| v.to_str().ok())
    }
}

/// Counters and recorder of one instance (they survive kill and restart).
#[derive(Debug, Default)]
pub(crate) struct Stats {
    total: AtomicU64,
    open_connections: AtomicUsize,
    per_path: Mutex<HashMap<String, u64>>,
    recording: AtomicBool,
    recorded: Mutex<VecDeque<RecordedRequest>>,
}

impl Stats {
    /// Count one request for `path`.
    pub(crate) fn count(&self, path: &str) {
        self.total.fetch_add(1, Ordering::Relaxed);
        let mut map = lock(&self.per_path);
        if let Some(n) = map.get_mut(path) {
            *n += 1;
        } else if map.len() < MAX_PATHS {
            map.insert(path.to_owned(), 1);
        }
    }

    /// Track one open connection until the guard is dropped.
    pub(crate) fn connection_opened(self: &std::sync::Arc<Self>) -> ConnectionGuard {
        self.open_connections.fetch_add(1, Ordering::Relaxed);
        ConnectionGuard(std::sync::Arc::clone(self))
    }

    pub(crate) fn open_connections(&self) -> usize {
        self.open_connections.load(Ordering::Relaxed)
    }

    pub(crate) fn total(&self) -> u64 {
        self.total.load(Ordering::Relaxed)
    }

    pub(crate) fn for_path(&self, path: &str) -> u64 {
        lock(&self.per_path).get(path).copied().unwrap_or(0)
    }

    pub(crate) fn per_path(&self) -> HashMap<String, u64> {
        lock(&self.per_path).clone()
    }

    pub(crate) fn reset(&self) {
        self.total.store(0, Ordering::Relaxed);
        lock(&self.per_path).clear();
        lock(&self.recorded).clear();
    }

    pub(crate) fn is_recording(&self) -> bool {
        self.recording.load(Ordering::Relaxed)
    }

    pub(crate) fn set_recording(&self, on: bool) {
        self.recording.store(on, Ordering::Relaxed);
    }

    pub(crate) fn record(&self, request: RecordedRequest) {
        let mut ring = lock(&self.recorded);
        if ring.len() >= RECORD_CAPACITY {
            ring.pop_front();
        }
        ring.push_back(request);
    }

    pub(crate) fn recorded(&self) -> Vec<RecordedRequest> {
        lock(&self.recorded).iter().cloned().collect()
    }
}

fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    // Counters stay meaningful even if a holder panicked.
    m.lock().unwrap_or_else(|poisoned| poisoned.into_inner())
}

/// Decrements the open-connection count when a connection task ends.
#[derive(Debug)]
pub(crate) struct ConnectionGuard(std::sync::Arc<Stats>);

impl Drop for ConnectionGuard {
    fn drop(&mut self) {
        self.0.open_connections.fetch_sub(1, Ordering::Relaxed);
    }
}
