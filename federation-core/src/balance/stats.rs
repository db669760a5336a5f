//! Per-instance load signals: requests in flight and a peak-sensitive latency average.

use std::fmt;
use std::sync::atomic::{AtomicI64, AtomicU32, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use tokio::time::Instant;

use crate::breaker::{Breaker, Transition};

/// Latency assumed for an instance before its first response (Linkerd's default).
pub const DEFAULT_RTT: Duration = Duration::from_millis(30);
/// Time constant of the decay: an old sample weighs `e^(-age / DECAY)`.
pub const DECAY: Duration = Duration::from_secs(10);

#[derive(Clone, Copy, Debug)]
struct Ewma {
    /// Peak-EWMA latency in nanoseconds, as of `stamp`.
    rtt_ns: f64,
    /// Success EWMA in `[0, 1]`, as of `stamp`.
    success: f64,
    stamp: Instant,
}

impl Ewma {
    /// The weight of the value at `stamp` seen from `now`.
    fn keep(&self, now: Instant) -> f64 {
        let age = now.saturating_duration_since(self.stamp).as_secs_f64();
        (-age / DECAY.as_secs_f64()).exp()
    }
}

/// Load signals of one instance, shared by every call to it. Create one per instance and keep
/// it as long as the instance is known (new stats start at [`DEFAULT_RTT`]).
///
/// Peak EWMA (Finagle/Linkerd): a sample above the current average replaces it at once (a
/// slowdown is believed immediately), a lower one is blended in with weight `1 - e^(-Δt/10 s)`,
/// and the value decays toward zero while the instance is idle, so an instance once slow gets
/// retried eventually. A failed call counts as a sample of at least twice the current average,
/// so an instance that fails fast does not look attractive.
pub struct InstanceStats {
    in_flight: AtomicU32,
    ewma: Mutex<Ewma>,
    /// Smooth weighted round-robin "current weight", owned by the balancer's round-robin lock.
    pub(crate) rr_current: AtomicI64,
}

impl Default for InstanceStats {
    fn default() -> Self {
        Self::with_default_rtt(DEFAULT_RTT)
    }
}

impl InstanceStats {
    /// Stats whose latency starts at `rtt` instead of [`DEFAULT_RTT`].
    pub fn with_default_rtt(rtt: Duration) -> Self {
        Self {
            in_flight: AtomicU32::new(0),
            ewma: Mutex::new(Ewma {
                rtt_ns: rtt.as_nanos() as f64,
                success: 1.0,
                stamp: Instant::now(),
            }),
            rr_current: AtomicI64::new(0),
        }
    }

    /// Counts a request as in flight until the returned guard is dropped.
    pub fn start(self: &Arc<Self>) -> InFlight {
        self.in_flight.fetch_add(1, Ordering::Relaxed);
        InFlight {
            stats: Arc::clone(self),
        }
    }

    /// Records a finished request: its round-trip time and whether it succeeded, at `now`, a
    /// clock reading the caller already has (the end of the attempt, shared with the breaker's
    /// record).
    pub fn observe_at(&self, rtt: Duration, success: bool, now: Instant) {
        let Ok(mut e) = self.ewma.lock() else {
            return;
        };
        let keep = e.keep(now);
        let mut sample = rtt.as_nanos() as f64;
        if !success {
            sample = sample
                .max(2.0 * e.rtt_ns)
                .max(DEFAULT_RTT.as_nanos() as f64);
        }
        e.rtt_ns = if sample > e.rtt_ns {
            sample
        } else {
            e.rtt_ns * keep + sample * (1.0 - keep)
        };
        let outcome = if success { 1.0 } else { 0.0 };
        // At least 5 % weight per sample, so the success rate moves under bursts too.
        let keep_s = keep.min(0.95);
        e.success = e.success * keep_s + outcome * (1.0 - keep_s);
        e.stamp = now;
    }

    /// Forgets the latency history: the cost drops to zero, so the instance is the cheapest
    /// choice the next time it is available. Meant for the moment its breaker opens (see
    /// [`reset_on_ejection`](Self::reset_on_ejection)); the first real sample sets the peak again.
    pub fn forget_latency(&self) {
        if let Ok(mut e) = self.ewma.lock() {
            e.rtt_ns = 0.0;
            e.stamp = Instant::now();
        }
    }

    /// Wires `breaker` to these stats: every ejection calls
    /// [`forget_latency`](Self::forget_latency).
    ///
    /// Without it, the failures that led to the ejection leave a high (peak) cost behind, and
    /// when the open period ends P2C keeps choosing the healthy instances: the half-open probe is
    /// never sent and a recovered instance stays out of rotation for tens of seconds. With it,
    /// the probe goes out on one of the next picks after the period elapses. The breaker holds
    /// only a weak reference to the stats.
    pub fn reset_on_ejection(self: &Arc<Self>, breaker: &Breaker) {
        let stats = Arc::downgrade(self);
        breaker.on_transition(move |t| {
            if let (Transition::Opened { .. }, Some(stats)) = (t, stats.upgrade()) {
                stats.forget_latency();
            }
        });
    }

    /// Requests currently in flight.
    pub fn in_flight(&self) -> u32 {
        self.in_flight.load(Ordering::Relaxed)
    }

    /// The peak-EWMA latency now (decayed since the last sample).
    pub fn ewma_latency(&self) -> Duration {
        Duration::from_nanos(self.ewma_ns(Instant::now()) as u64)
    }

    /// Recent success share in `[0, 1]` (1.0 before any sample; drifts back toward the last
    /// value only through new samples).
    pub fn success_rate(&self) -> f64 {
        self.ewma.lock().map(|e| e.success).unwrap_or(1.0)
    }

    pub(crate) fn ewma_ns(&self, now: Instant) -> f64 {
        self.ewma
            .lock()
            .map(|e| e.rtt_ns * e.keep(now))
            .unwrap_or(DEFAULT_RTT.as_nanos() as f64)
    }
}

impl fmt::Debug for InstanceStats {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("InstanceStats")
            .field("in_flight", &self.in_flight())
            .field("ewma_latency", &self.ewma_latency())
            .field("success_rate", &self.success_rate())
            .finish()
    }
}

/// A request in flight on one instance; dropping it ends the count.
#[must_use = "the request counts as in flight only while this guard lives"]
pub struct InFlight {
    stats: Arc<InstanceStats>,
}

impl InFlight {
    /// The instance's stats (to `observe` the outcome).
    pub fn stats(&self) -> &InstanceStats {
        &self.stats
    }
}

impl Drop for InFlight {
    fn drop(&mut self) {
        self.stats.in_flight.fetch_sub(1, Ordering::Relaxed);
    }
}

impl fmt::Debug for InFlight {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("InFlight").finish_non_exhaustive()
    }
}

/// One pickable instance: its effective weight and its load signals.
#[derive(Clone, Copy, Debug)]
pub struct Candidate<'a> {
    /// Relative weight (Consul weight for its health); 0 = never picked.
    pub weight: u32,
    /// The instance's shared stats.
    pub stats: &'a InstanceStats,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test(start_paused = true)]
    async fn in_flight_counts_guards() {
        let stats = Arc::new(InstanceStats::default());
        let a = stats.start();
        let b = stats.start();
        assert_eq!(stats.in_flight(), 2);
        drop(a);
        assert_eq!(b.stats().in_flight(), 1);
        drop(b);
        assert_eq!(stats.in_flight(), 0);
    }

    #[tokio::test(start_paused = true)]
    async fn peaks_are_believed_at_once_and_decay_slowly() {
        let stats = InstanceStats::default();
        assert_eq!(stats.ewma_latency(), DEFAULT_RTT);
        stats.observe_at(Duration::from_millis(500), true, Instant::now());
        assert_eq!(stats.ewma_latency(), Duration::from_millis(500));
        tokio::time::advance(Duration::from_secs(1)).await;
        stats.observe_at(Duration::from_millis(10), true, Instant::now());
        let after = stats.ewma_latency();
        assert!(
            after > Duration::from_millis(400) && after < Duration::from_millis(500),
            "one fast sample only nudges a peak: {after:?}"
        );
        tokio::time::advance(Duration::from_secs(60)).await;
        assert!(
            stats.ewma_latency() < Duration::from_millis(5),
            "idle decay"
        );
    }

    #[tokio::test(start_paused = true)]
    async fn failures_raise_cost_and_lower_success_rate() {
        let stats = InstanceStats::default();
        stats.observe_at(Duration::from_millis(1), false, Instant::now());
        assert!(stats.ewma_latency() >= 2 * DEFAULT_RTT);
        assert!(stats.success_rate() < 1.0);
    }
}
