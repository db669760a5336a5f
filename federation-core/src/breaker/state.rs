//! The per-instance breaker: a lock-free state word for the hot path, a short lock for outcomes.
//!
//! The state and an epoch are packed into one `AtomicU64` (`epoch << 2 | state`). Admission in
//! the closed state is a single atomic load; the open → half-open step is a compare-and-swap, so
//! exactly one caller wins the probe. Every permit remembers the word it was issued under and its
//! outcome is ignored once the epoch moved on: a slow failure from before an ejection cannot
//! count twice, and a stale success cannot close a breaker that opened meanwhile.

use std::fmt;
use std::sync::atomic::{AtomicBool, AtomicU8, AtomicU32, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use tokio::time::Instant;

use super::recover::{CAUSE_UNKNOWN, EjectionCause};
use super::transition::{Observers, OpenReason, Transition};
use crate::config::BreakerPolicy;
use crate::retry::window::SlidingPair;

pub(super) const CLOSED: u64 = 0;
pub(super) const OPEN: u64 = 1;
const HALF_OPEN: u64 = 2;
const STATE_MASK: u64 = 0b11;

pub(super) fn state_of(word: u64) -> u64 {
    word & STATE_MASK
}

fn next_epoch(word: u64, state: u64) -> u64 {
    ((word >> 2).wrapping_add(1) << 2) | state
}

fn nanos(d: Duration) -> u64 {
    u64::try_from(d.as_nanos()).unwrap_or(u64::MAX)
}

/// The observable state of a breaker.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum BreakerState {
    /// Calls flow; outcomes are counted.
    Closed,
    /// The instance is ejected until `until`; calls are refused without touching the network.
    Open {
        /// When one probe call will be admitted.
        until: Instant,
    },
    /// The open period has elapsed: one probe call is (or may be) in flight; its outcome closes
    /// the breaker or opens it again for longer.
    HalfOpen,
}

/// Failure-rate trigger with its invalid values already mapped to "off".
#[derive(Clone, Copy, Debug, PartialEq)]
struct RateTrigger {
    threshold: f64,
    minimum: u64,
    /// Length of the sliding window the share is taken over.
    window: Duration,
}

/// The policy's thresholds, with invalid values already mapped (see [`Breaker::new`]).
/// Replaced as a whole by [`Breaker::set_policy`] (a configuration reload).
#[derive(Clone, Copy, Debug, PartialEq)]
struct Thresholds {
    consecutive_limit: u32,
    rate: Option<RateTrigger>,
    base_open_for: Duration,
    max_open_for: Duration,
}

impl Thresholds {
    fn of(policy: &BreakerPolicy) -> Self {
        let rate = policy.failure_rate.as_ref().and_then(|r| {
            (r.threshold > 0.0 && r.threshold <= 1.0).then_some(RateTrigger {
                threshold: r.threshold,
                minimum: u64::from(r.minimum_requests.max(1)),
                window: r.window,
            })
        });
        Self {
            consecutive_limit: policy.consecutive_failures,
            rate,
            base_open_for: policy.open_for,
            max_open_for: policy.max_open_for.max(policy.open_for),
        }
    }
}

pub(super) struct Core {
    /// The thresholds outcomes are judged by.
    thresholds: Thresholds,
    /// Calls and failures over the rate window: created by the first call counted (`None`
    /// without a rate trigger, before the first call, and after a clear). Boxed, so an
    /// instance that is known but never called does not carry its buckets (issue 23).
    window: Option<Box<SlidingPair>>,
    /// The open period the next ejection uses.
    open_for: Duration,
}

pub(super) struct Inner {
    pub(super) word: AtomicU64,
    /// End of the open period, in nanoseconds since `origin`.
    pub(super) until: AtomicU64,
    origin: Instant,
    consecutive: AtomicU32,
    ejections: AtomicU64,
    /// Why the current ejection happened (`recover.rs`); reset on every opening.
    pub(super) cause: AtomicU8,
    pub(super) core: Mutex<Core>,
    /// Whether `core.thresholds` has a rate trigger: read without the lock by the fast path of
    /// a success.
    counts_rate: AtomicBool,
    observers: Observers,
}

/// A circuit breaker for one instance. Cheap to clone (shared state).
///
/// See the [module docs](super) for the algorithm.
#[derive(Clone)]
pub struct Breaker {
    pub(super) inner: Arc<Inner>,
}

impl Breaker {
    /// A closed breaker following `policy`.
    ///
    /// `consecutive_failures = 0` disables that trigger; a failure-rate threshold that is not in
    /// `(0, 1]` disables the rate trigger; `minimum_requests = 0` counts as 1; a `max_open_for`
    /// below `open_for` is raised to `open_for`.
    pub fn new(policy: &BreakerPolicy) -> Self {
        let thresholds = Thresholds::of(policy);
        Self {
            inner: Arc::new(Inner {
                word: AtomicU64::new(CLOSED),
                until: AtomicU64::new(0),
                origin: Instant::now(),
                consecutive: AtomicU32::new(0),
                ejections: AtomicU64::new(0),
                cause: AtomicU8::new(CAUSE_UNKNOWN),
                core: Mutex::new(Core {
                    thresholds,
                    window: None,
                    open_for: thresholds.base_open_for,
                }),
                counts_rate: AtomicBool::new(thresholds.rate.is_some()),
                observers: Observers::default(),
            }),
        }
    }

    /// Judges later outcomes by `policy` (a configuration reload that changed the `breaker`
    /// section): the state, the ejection in progress and the failure streak are kept; the
    /// rate window restarts when its length changed; the next open period is clamped into the
    /// new `open_for ..= max_open_for` (the new `open_for` while closed). The same policy again
    /// changes nothing.
    pub fn set_policy(&self, policy: &BreakerPolicy) {
        let next = Thresholds::of(policy);
        let Ok(mut core) = self.inner.core.lock() else {
            return;
        };
        if core.thresholds == next {
            return;
        }
        if core.thresholds.rate.map(|r| r.window) != next.rate.map(|r| r.window) {
            core.window = None;
        }
        core.open_for = if state_of(self.inner.word.load(Ordering::Acquire)) == CLOSED {
            next.base_open_for
        } else {
            core.open_for.clamp(next.base_open_for, next.max_open_for)
        };
        core.thresholds = next;
        self.inner
            .counts_rate
            .store(next.rate.is_some(), Ordering::Release);
    }

    /// The base open period of the current policy (follows [`set_policy`](Self::set_policy)).
    pub(crate) fn base_open_for(&self) -> Duration {
        crate::lock::lock(&self.inner.core).thresholds.base_open_for
    }

    /// The current state. No side effect: an elapsed open period reads as `HalfOpen` but the
    /// probe is only taken by [`try_acquire`](Self::try_acquire).
    pub fn state(&self) -> BreakerState {
        let word = self.inner.word.load(Ordering::Acquire);
        match state_of(word) {
            CLOSED => BreakerState::Closed,
            OPEN if !self.inner.open_elapsed() => BreakerState::Open {
                until: self.inner.origin
                    + Duration::from_nanos(self.inner.until.load(Ordering::Acquire)),
            },
            _ => BreakerState::HalfOpen,
        }
    }

    /// Whether a call would be admitted now: closed, or open with the period elapsed and the
    /// probe not yet taken. No side effect.
    pub fn is_available(&self) -> bool {
        match state_of(self.inner.word.load(Ordering::Acquire)) {
            CLOSED => true,
            OPEN => self.inner.open_elapsed(),
            _ => false,
        }
    }

    /// Admits one call, or returns `None` while open or while the single half-open probe is
    /// out. Record the outcome on the permit; dropping it records nothing (and hands a probe
    /// back).
    pub fn try_acquire(&self) -> Option<BreakerPermit> {
        loop {
            let word = self.inner.word.load(Ordering::Acquire);
            match state_of(word) {
                CLOSED => return Some(self.permit(word)),
                OPEN => {
                    if !self.inner.open_elapsed() {
                        return None;
                    }
                    let probe = (word & !STATE_MASK) | HALF_OPEN;
                    if self
                        .inner
                        .word
                        .compare_exchange(word, probe, Ordering::AcqRel, Ordering::Acquire)
                        .is_ok()
                    {
                        self.inner.observers.notify(Transition::HalfOpened);
                        return Some(self.permit(probe));
                    }
                    // Lost a race (another caller took the probe, or the state moved): re-read.
                }
                _ => return None,
            }
        }
    }

    pub(super) fn permit(&self, word: u64) -> BreakerPermit {
        BreakerPermit {
            inner: Some(Arc::clone(&self.inner)),
            word,
            panic: false,
        }
    }

    /// How many times this breaker opened (ejections, including failed probes).
    pub fn ejections(&self) -> u64 {
        self.inner.ejections.load(Ordering::Relaxed)
    }

    /// Failures in a row counted in the current closed period.
    pub fn consecutive_failures(&self) -> u32 {
        self.inner.consecutive.load(Ordering::Relaxed)
    }

    /// Registers a callback run on every transition (after the breaker's lock is released, on
    /// the thread that caused it). Keep it short: it runs on the call path.
    pub fn on_transition(&self, observer: impl Fn(Transition) + Send + Sync + 'static) {
        self.inner.observers.push(Arc::new(observer));
    }
}

impl fmt::Debug for Breaker {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Breaker")
            .field("state", &self.state())
            .field("consecutive_failures", &self.consecutive_failures())
            .field("ejections", &self.ejections())
            .finish()
    }
}

impl Inner {
    pub(super) fn now_nanos(&self) -> u64 {
        nanos(Instant::now().saturating_duration_since(self.origin))
    }

    fn open_elapsed(&self) -> bool {
        self.now_nanos() >= self.until.load(Ordering::Acquire)
    }

    /// Opens the breaker (caller holds the core lock and checked the word).
    fn open(&self, core: &mut Core, word: u64, open_for: Duration, cause: u8) {
        let until = self.now_nanos().saturating_add(nanos(open_for));
        self.until.store(until, Ordering::Release);
        self.cause.store(cause, Ordering::Release);
        self.word.store(next_epoch(word, OPEN), Ordering::Release);
        self.ejections.fetch_add(1, Ordering::Relaxed);
        // A new window starts empty when the next call is counted.
        core.window = None;
    }

    fn record_closed(
        &self,
        word: u64,
        success: bool,
        cause: u8,
        now: Instant,
    ) -> Option<Transition> {
        if success && !self.counts_rate.load(Ordering::Acquire) {
            // Fast path: nothing to count but the streak.
            if self.word.load(Ordering::Acquire) == word {
                self.consecutive.store(0, Ordering::Relaxed);
            }
            return None;
        }
        let mut core = self.core.lock().ok()?;
        if self.word.load(Ordering::Acquire) != word {
            return None; // issued before the last transition: stale
        }
        let streak = if success {
            0
        } else {
            self.consecutive.load(Ordering::Relaxed).saturating_add(1)
        };
        self.consecutive.store(streak, Ordering::Relaxed);
        let thresholds = core.thresholds;
        if let Some(rate) = &thresholds.rate {
            core.window
                .get_or_insert_with(|| Box::new(SlidingPair::new(rate.window)))
                .add(now, 1, u64::from(!success));
        }
        if success {
            return None;
        }
        let limit = thresholds.consecutive_limit;
        let reason = if limit > 0 && streak >= limit {
            OpenReason::ConsecutiveFailures
        } else {
            let (calls, failures) = core.window.as_ref().map_or((0, 0), |w| w.sums(now));
            match thresholds.rate {
                Some(r) if calls >= r.minimum && failures as f64 >= r.threshold * calls as f64 => {
                    OpenReason::FailureRate
                }
                _ => return None,
            }
        };
        let open_for = core.open_for;
        self.open(&mut core, word, open_for, cause);
        Some(Transition::Opened { reason, open_for })
    }

    pub(super) fn record_probe(&self, word: u64, success: bool, cause: u8) -> Option<Transition> {
        let mut core = self.core.lock().ok()?;
        if self.word.load(Ordering::Acquire) != word {
            return None;
        }
        if success {
            core.open_for = core.thresholds.base_open_for;
            core.window = None;
            self.consecutive.store(0, Ordering::Relaxed);
            self.word.store(next_epoch(word, CLOSED), Ordering::Release);
            Some(Transition::Closed)
        } else {
            let max_open_for = core.thresholds.max_open_for;
            let open_for = core.open_for.saturating_mul(2).min(max_open_for);
            core.open_for = open_for;
            self.open(&mut core, word, open_for, cause);
            Some(Transition::Opened {
                reason: OpenReason::ProbeFailed,
                open_for,
            })
        }
    }
}

/// Permission for one call. Call [`success_at`](Self::success_at) or [`failure_at`](Self::failure_at)
/// when its outcome is known; dropping it records nothing (a cancelled call is neutral, and a
/// dropped probe lets the next caller probe).
#[must_use = "record the outcome with success_at() or failure_at()"]
pub struct BreakerPermit {
    pub(super) inner: Option<Arc<Inner>>,
    pub(super) word: u64,
    /// Issued by panic routing to a held-out instance (`panic.rs`), outside the probe rule.
    pub(super) panic: bool,
}

impl BreakerPermit {
    /// Whether this permit is the half-open probe.
    pub fn is_probe(&self) -> bool {
        !self.panic && state_of(self.word) == HALF_OPEN
    }

    /// Records a successful call that ended at `now`, a clock reading the caller already has
    /// (the end of the attempt, shared with its other records).
    pub fn success_at(mut self, now: Instant) {
        self.record(true, CAUSE_UNKNOWN, now);
    }

    /// Records a failed call (connect error, timeout, 5xx the caller counts as failure) that
    /// ended at `now`, without saying why: an ejection it causes has no known cause until the
    /// background probe classifies it (see [`EjectionCause`]).
    pub fn failure_at(mut self, now: Instant) {
        self.record(false, CAUSE_UNKNOWN, now);
    }

    /// Records a failed call whose cause is known, ended at `now`: an ejection it causes is
    /// marked `cause` (a refused connection marks the instance unreachable, `panic.rs`).
    pub fn failure_with_at(mut self, cause: EjectionCause, now: Instant) {
        self.record(false, cause.code(), now);
    }

    fn record(&mut self, success: bool, cause: u8, now: Instant) {
        let Some(inner) = self.inner.take() else {
            return;
        };
        let transition = if self.panic {
            inner.record_panic(self.word, success, cause)
        } else if self.is_probe() {
            inner.record_probe(self.word, success, cause)
        } else {
            inner.record_closed(self.word, success, cause, now)
        };
        if let Some(t) = transition {
            inner.observers.notify(t);
        }
    }
}

impl Drop for BreakerPermit {
    fn drop(&mut self) {
        let Some(inner) = self.inner.take() else {
            return;
        };
        if self.is_probe() {
            // Hand the probe back: half-open → open with the (elapsed) period unchanged.
            let back = (self.word & !STATE_MASK) | OPEN;
            let _ =
                inner
                    .word
                    .compare_exchange(self.word, back, Ordering::AcqRel, Ordering::Acquire);
        }
    }
}

impl fmt::Debug for BreakerPermit {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("BreakerPermit")
            .field("probe", &self.is_probe())
            .finish()
    }
}
