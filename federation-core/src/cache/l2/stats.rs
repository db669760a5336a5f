//! Counters and the degraded state of one service's L2 tier, reported in `client.health()` and
//! mirrored into `federation_cache_l2_*`.
//!
//! "Redis is down" must be something an operator can see without reading logs: the tier is
//! *degraded* while its connection is missing, its last operation failed or timed out, or its
//! invalidation subscription is lost, and the time spent so is accumulated.

use std::sync::Mutex;
use std::sync::PoisonError;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::Duration;

use tokio::time::Instant;

use crate::telemetry::{L2Counters, L2Health};

/// Event kinds, as counted and as labelled in `federation_cache_l2_events_total`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Event {
    Hit,
    Miss,
    Stored,
    Error,
    Timeout,
    Oversized,
    LeaseWon,
    LeaseWaited,
    InvalidationSent,
    InvalidationReceived,
    Resync,
}

impl Event {
    const ALL: [Event; 11] = [
        Event::Hit,
        Event::Miss,
        Event::Stored,
        Event::Error,
        Event::Timeout,
        Event::Oversized,
        Event::LeaseWon,
        Event::LeaseWaited,
        Event::InvalidationSent,
        Event::InvalidationReceived,
        Event::Resync,
    ];

    fn label(self) -> &'static str {
        match self {
            Event::Hit => "hit",
            Event::Miss => "miss",
            Event::Stored => "stored",
            Event::Error => "error",
            Event::Timeout => "timeout",
            Event::Oversized => "oversized",
            Event::LeaseWon => "lease_won",
            Event::LeaseWaited => "lease_waited",
            Event::InvalidationSent => "invalidation_sent",
            Event::InvalidationReceived => "invalidation_received",
            Event::Resync => "resync",
        }
    }
}

/// Live counters of one tier.
pub(crate) struct Stats {
    counts: [AtomicU64; 11],
    connected: AtomicBool,
    subscribed: AtomicBool,
    op_failed: AtomicBool,
    /// Since when the tier is degraded, and the degraded time accumulated before.
    degraded: Mutex<(Option<Instant>, Duration)>,
    metrics: Option<L2Counters>,
}

impl Stats {
    pub(crate) fn new(metrics: Option<L2Counters>) -> Self {
        let stats = Self {
            counts: Default::default(),
            connected: AtomicBool::new(false),
            subscribed: AtomicBool::new(false),
            op_failed: AtomicBool::new(false),
            degraded: Mutex::new((None, Duration::ZERO)),
            metrics,
        };
        stats.update_degraded();
        stats
    }

    pub(crate) fn count(&self, event: Event) {
        if let Some(i) = Event::ALL.iter().position(|e| *e == event) {
            self.counts[i].fetch_add(1, Ordering::Relaxed);
        }
        if let Some(m) = &self.metrics {
            m.event(event.label());
        }
    }

    fn get(&self, event: Event) -> u64 {
        Event::ALL
            .iter()
            .position(|e| *e == event)
            .map_or(0, |i| self.counts[i].load(Ordering::Relaxed))
    }

    /// Records an operation's latency (`op`: get, set or lease) and its outcome.
    pub(crate) fn op(&self, op: &str, elapsed: Duration, ok: bool) {
        if let Some(m) = &self.metrics {
            let h = match op {
                "get" => &m.get_seconds,
                "set" => &m.set_seconds,
                _ => &m.lease_seconds,
            };
            h.observe(elapsed.as_secs_f64());
        }
        if self.op_failed.swap(!ok, Ordering::AcqRel) == ok {
            self.update_degraded();
        }
    }

    pub(crate) fn propagation(&self, delay: Duration) {
        if let Some(m) = &self.metrics {
            m.propagation.observe(delay.as_secs_f64());
        }
    }

    pub(crate) fn set_connected(&self, on: bool) {
        self.connected.store(on, Ordering::Release);
        self.update_degraded();
    }

    pub(crate) fn set_subscribed(&self, on: bool) {
        self.subscribed.store(on, Ordering::Release);
        self.update_degraded();
    }

    /// Connected and subscribed: values stored now are shared and kept.
    pub(crate) fn is_ready(&self) -> bool {
        self.connected.load(Ordering::Acquire) && self.subscribed.load(Ordering::Acquire)
    }

    fn is_degraded(&self) -> bool {
        !self.connected.load(Ordering::Acquire)
            || !self.subscribed.load(Ordering::Acquire)
            || self.op_failed.load(Ordering::Acquire)
    }

    fn update_degraded(&self) {
        let degraded = self.is_degraded();
        let mut state = self.degraded.lock().unwrap_or_else(PoisonError::into_inner);
        let now = Instant::now();
        match (state.0, degraded) {
            (None, true) => state.0 = Some(now),
            (Some(since), false) => {
                let spent = now.saturating_duration_since(since);
                state.1 += spent;
                state.0 = None;
                if let Some(m) = &self.metrics {
                    m.degraded_seconds.inc_by(spent.as_secs_f64());
                }
            }
            _ => {}
        }
        if let Some(m) = &self.metrics {
            m.degraded.set(i64::from(degraded));
        }
    }

    pub(crate) fn health(&self, target: String) -> L2Health {
        let (since, before) = *self.degraded.lock().unwrap_or_else(PoisonError::into_inner);
        let current = since.map_or(Duration::ZERO, |s| {
            Instant::now().saturating_duration_since(s)
        });
        L2Health {
            target,
            connected: self.connected.load(Ordering::Acquire),
            subscribed: self.subscribed.load(Ordering::Acquire),
            degraded: self.is_degraded(),
            degraded_seconds: (before + current).as_secs_f64(),
            hits: self.get(Event::Hit),
            misses: self.get(Event::Miss),
            stored: self.get(Event::Stored),
            errors: self.get(Event::Error),
            timeouts: self.get(Event::Timeout),
            oversized: self.get(Event::Oversized),
            leases_won: self.get(Event::LeaseWon),
            leases_waited: self.get(Event::LeaseWaited),
            invalidations_sent: self.get(Event::InvalidationSent),
            invalidations_received: self.get(Event::InvalidationReceived),
            resyncs: self.get(Event::Resync),
        }
    }
}
