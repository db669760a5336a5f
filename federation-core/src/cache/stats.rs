//! Counters of one service's cache: cheap atomics on the hot path, optionally mirrored into the
//! client's Prometheus metrics through pre-resolved counter handles.

use std::sync::atomic::{AtomicU64, Ordering};

use crate::telemetry::CacheCounters;

/// A snapshot of one service's cache counters.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, serde::Serialize)]
pub struct CacheStats {
    /// Calls served from a fresh value.
    pub hits: u64,
    /// Calls that fetched upstream (or joined an identical fetch in flight).
    pub misses: u64,
    /// Calls served a stale value (stale-while-revalidate or stale-if-error).
    pub stale: u64,
    /// Entries dropped to respect the byte bound.
    pub evictions: u64,
    /// Upstream fetches actually started (misses minus coalesced waiters, plus refreshes).
    pub fetches: u64,
    /// Entries currently held (approximate; moka counts lazily).
    pub entries: u64,
    /// Bytes currently held by the entries' weights (approximate).
    pub bytes: u64,
}

/// Live counters.
#[derive(Default)]
pub(crate) struct Counters {
    pub(crate) hits: AtomicU64,
    pub(crate) misses: AtomicU64,
    pub(crate) stale: AtomicU64,
    pub(crate) evictions: AtomicU64,
    pub(crate) fetches: AtomicU64,
    pub(crate) metrics: Option<CacheCounters>,
}

impl Counters {
    pub(crate) fn with_metrics(metrics: Option<CacheCounters>) -> Self {
        Self {
            metrics,
            ..Self::default()
        }
    }

    pub(crate) fn hit(&self) {
        self.hits.fetch_add(1, Ordering::Relaxed);
        if let Some(m) = &self.metrics {
            m.hit.inc();
        }
    }

    pub(crate) fn miss(&self) {
        self.misses.fetch_add(1, Ordering::Relaxed);
        if let Some(m) = &self.metrics {
            m.miss.inc();
        }
    }

    pub(crate) fn stale(&self) {
        self.stale.fetch_add(1, Ordering::Relaxed);
        if let Some(m) = &self.metrics {
            m.stale.inc();
        }
    }

    pub(crate) fn eviction(&self) {
        self.evictions.fetch_add(1, Ordering::Relaxed);
        if let Some(m) = &self.metrics {
            m.eviction.inc();
        }
    }

    pub(crate) fn fetch(&self) {
        self.fetches.fetch_add(1, Ordering::Relaxed);
    }

    pub(crate) fn snapshot(&self, entries: u64, bytes: u64) -> CacheStats {
        CacheStats {
            hits: self.hits.load(Ordering::Relaxed),
            misses: self.misses.load(Ordering::Relaxed),
            stale: self.stale.load(Ordering::Relaxed),
            evictions: self.evictions.load(Ordering::Relaxed),
            fetches: self.fetches.load(Ordering::Relaxed),
            entries,
            bytes,
        }
    }
}

/// Progress of a service's cache warm-ups.
#[derive(Default)]
pub(crate) struct WarmCounters {
    planned: AtomicU64,
    fetched: AtomicU64,
    failed: AtomicU64,
    in_flight: AtomicU64,
}

impl WarmCounters {
    pub(crate) fn plan(&self, n: usize) {
        self.planned.fetch_add(n as u64, Ordering::Relaxed);
    }

    pub(crate) fn start(&self) {
        self.in_flight.fetch_add(1, Ordering::Relaxed);
    }

    pub(crate) fn finish(&self, ok: bool) {
        self.in_flight.fetch_sub(1, Ordering::Relaxed);
        let done = if ok { &self.fetched } else { &self.failed };
        done.fetch_add(1, Ordering::Relaxed);
    }

    /// `None` before the first warm-up.
    pub(crate) fn health(&self) -> Option<crate::telemetry::WarmHealth> {
        let planned = self.planned.load(Ordering::Relaxed);
        (planned > 0).then(|| crate::telemetry::WarmHealth {
            planned,
            fetched: self.fetched.load(Ordering::Relaxed),
            failed: self.failed.load(Ordering::Relaxed),
            in_flight: self.in_flight.load(Ordering::Relaxed),
        })
    }
}
