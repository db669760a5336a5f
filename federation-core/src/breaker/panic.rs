//! Panic routing: breakers never turn "instances are answering" into "no healthy instance".
//!
//! **Failure prevented:** each breaker judges only its own instance. After a few failure phases
//! (a bad deploy answering 503, an overloaded fleet timing out) every instance of a service can
//! be held out at once, each for an open period that doubled up to `max_open_for`. The
//! instances recover, answer again, and the client still fails every call with
//! `no_healthy_instance` until the periods run out one probe at a time: the breakers, meant to
//! contain an incident, prolong it into an outage (the chaos run found this, issue 24).
//!
//! **Algorithm** (Envoy's *panic threshold*; its *max ejection percent* follows from it): per
//! call, over the clusters the call may use, count the routable instances (registry healthy,
//! carrying the tags) and those the breakers admit. When the admitted ones are at most
//! `failover.panic_threshold` × the routable ones, the call *panics*: instances held out by
//! their breaker are admitted too, unless the breaker knows them to be unreachable (its
//! background TCP connect or a call's connect failed, `recover.rs`). So breakers hold out at
//! most `1 − panic_threshold` of the answering instances; with the default `0` panic starts
//! only when nothing at all is admitted. A fleet that is really down still fails fast: its
//! instances refuse connections, are marked unreachable, and stay out.
//!
//! A panic call takes a *panic permit*, not the half-open probe, so any number of calls may use
//! a held-out instance at once: a success closes the breaker (the instance answers); a failure
//! changes nothing (the instance is already held out and its period is not doubled again), except
//! that a refused connection marks it unreachable, which ends panic routing to it.
//!
//! How the engine uses it (crate-internal, so not compiled as a doctest; the unit tests below
//! run the same steps):
//!
//! ```ignore
//! use federation_core::breaker::{Breaker, panic_engaged};
//! use federation_core::config::BreakerPolicy;
//! use tokio::time::Instant;
//!
//! let breaker = Breaker::new(&BreakerPolicy { consecutive_failures: 1, ..Default::default() });
//! breaker.try_acquire().expect("closed").failure_at(Instant::now());
//! assert!(breaker.try_acquire().is_none(), "held out");
//! // Nothing is admitted (0 of 1 routable), the default threshold 0 engages panic routing:
//! assert!(panic_engaged(Some(0.0), 0, 1, 1));
//! let permit = breaker.acquire(true).expect("panic admits an instance not known unreachable");
//! permit.success_at(Instant::now());
//! assert!(breaker.is_available(), "a success closes the breaker");
//! ```

use std::sync::atomic::Ordering;

use super::recover::EjectionCause;
use super::state::{Breaker, BreakerPermit, CLOSED, Inner, state_of};
use super::transition::Transition;

/// Whether a call panics: `threshold` is `failover.panic_threshold` (`None` = off),
/// `admitted` the instances its breakers admit, `routable` all routable instances, and
/// `held_answering` the held-out ones not known unreachable (nothing to panic to without them).
pub fn panic_engaged(
    threshold: Option<f64>,
    admitted: usize,
    routable: usize,
    held_answering: usize,
) -> bool {
    threshold.is_some_and(|t| {
        held_answering > 0 && routable > 0 && admitted as f64 <= t * routable as f64
    })
}

impl Breaker {
    /// Whether panic routing may send calls here: held out (open or half-open) and not known
    /// to be unreachable.
    pub fn panic_eligible(&self) -> bool {
        state_of(self.inner.word.load(Ordering::Acquire)) != CLOSED
            && self.ejection_cause() != Some(EjectionCause::Unreachable)
    }

    /// Whether a call may go here: [`is_available`](Self::is_available), or, when the call
    /// `panics`, [`panic_eligible`](Self::panic_eligible).
    pub fn admits(&self, panics: bool) -> bool {
        self.is_available() || (panics && self.panic_eligible())
    }

    /// A permit: [`try_acquire`](Self::try_acquire) first (the normal permit or the half-open
    /// probe); when the call `panics` and the instance is panic-eligible, a panic permit.
    pub fn acquire(&self, panics: bool) -> Option<BreakerPermit> {
        if let Some(permit) = self.try_acquire() {
            return Some(permit);
        }
        if !panics || !self.panic_eligible() {
            return None;
        }
        let word = self.inner.word.load(Ordering::Acquire);
        if state_of(word) == CLOSED {
            // Closed meanwhile: an ordinary permit.
            return self.try_acquire();
        }
        let mut permit = self.permit(word);
        permit.panic = true;
        Some(permit)
    }
}

impl Inner {
    /// The outcome of a panic permit issued under `word` (ignored once the breaker moved on):
    /// success closes like a probe success; a failure known to be a refused connection marks
    /// the instance unreachable; any other failure changes nothing.
    pub(super) fn record_panic(&self, word: u64, success: bool, cause: u8) -> Option<Transition> {
        if success {
            return self.record_probe(word, true, cause);
        }
        if cause == EjectionCause::Unreachable.code() {
            let _core = self.core.lock();
            if self.word.load(Ordering::Acquire) == word {
                self.cause.store(cause, Ordering::Release);
            }
        }
        None
    }
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use tokio::time::Instant;

    use super::*;
    use crate::breaker::BreakerState;
    use crate::config::BreakerPolicy;

    fn held_out() -> Breaker {
        let breaker = Breaker::new(&BreakerPolicy {
            consecutive_failures: 1,
            failure_rate: None,
            open_for: Duration::from_secs(30),
            max_open_for: Duration::from_secs(60),
        });
        breaker
            .try_acquire()
            .expect("closed")
            .failure_at(Instant::now());
        assert!(!breaker.is_available());
        breaker
    }

    #[test]
    fn engages_only_at_or_below_the_threshold_and_with_somewhere_to_go() {
        assert!(panic_engaged(Some(0.0), 0, 3, 1));
        assert!(
            !panic_engaged(Some(0.0), 1, 3, 2),
            "one admitted: no panic at 0"
        );
        assert!(panic_engaged(Some(0.5), 1, 3, 2), "1 of 3 is at most half");
        assert!(!panic_engaged(Some(0.5), 2, 3, 1));
        assert!(
            !panic_engaged(Some(1.0), 0, 3, 0),
            "everything unreachable: fail fast"
        );
        assert!(!panic_engaged(None, 0, 3, 3), "off");
        assert!(!panic_engaged(Some(1.0), 0, 0, 0), "nothing routable");
    }

    #[tokio::test(start_paused = true)]
    async fn panic_permits_are_not_limited_to_one_and_a_success_closes() {
        let breaker = held_out();
        assert!(breaker.acquire(false).is_none(), "no panic: held out");
        let a = breaker.acquire(true).expect("panic permit");
        let b = breaker.acquire(true).expect("a second one at once");
        assert!(!a.is_probe() && !b.is_probe());
        b.failure_at(Instant::now());
        assert!(
            matches!(breaker.state(), BreakerState::Open { .. }),
            "a failed panic call changes nothing"
        );
        a.success_at(Instant::now());
        assert_eq!(breaker.state(), BreakerState::Closed);
    }

    #[tokio::test(start_paused = true)]
    async fn an_unreachable_instance_is_never_a_panic_target() {
        let breaker = held_out();
        breaker.probe_connect_failed();
        assert!(!breaker.panic_eligible());
        assert!(breaker.acquire(true).is_none());

        let breaker = held_out();
        let permit = breaker.acquire(true).expect("cause unknown: eligible");
        permit.failure_with_at(EjectionCause::Unreachable, Instant::now());
        assert!(
            !breaker.panic_eligible(),
            "a refused connection ends panic routing to it"
        );
    }

    #[tokio::test(start_paused = true)]
    async fn a_dropped_panic_permit_does_not_touch_the_probe() {
        let breaker = held_out();
        tokio::time::advance(Duration::from_secs(31)).await;
        let probe = breaker.try_acquire().expect("the probe");
        let panic = breaker.acquire(true).expect("panic while the probe is out");
        drop(panic);
        assert_eq!(breaker.state(), BreakerState::HalfOpen, "probe still out");
        assert!(breaker.try_acquire().is_none(), "no second probe");
        probe.failure_at(Instant::now());
        assert!(matches!(breaker.state(), BreakerState::Open { .. }));
    }
}
