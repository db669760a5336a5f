//! Fast return of instances that were ejected because they could not be reached.
//!
//! **Failure prevented:** the open period doubles on every failed probe (1, 2, 4, 8 s …), which
//! keeps real traffic away from a bad instance but also keeps a restarted instance out of
//! rotation for seconds after it answers again (probes at 1, 3, 7, 15 s into an outage).
//!
//! **Algorithm:** each ejection carries an [`EjectionCause`]. A background TCP connect (the
//! client's prober) classifies it when the failed calls did not: a refused or timed-out connect
//! marks it [`Unreachable`](EjectionCause::Unreachable); a connect that succeeds on a breaker
//! not known to be unreachable marks it [`Failing`](EjectionCause::Failing) (the process accepts
//! connections, so only a real call can test it, and the doubling stays). A connect that
//! succeeds on an unreachable instance ends the open period at once: the next real call is the
//! single half-open probe, whose success closes the breaker. Every opening resets the cause, so
//! an instance that comes back answering 503 is reclassified as failing after its first forced
//! probe fails, and keeps its doubling.

use std::sync::atomic::Ordering;
use std::sync::{Arc, MutexGuard, Weak};

use super::state::{Breaker, CLOSED, Core, Inner, OPEN, state_of};

pub(super) const CAUSE_UNKNOWN: u8 = 0;
const CAUSE_UNREACHABLE: u8 = 1;
const CAUSE_FAILING: u8 = 2;

/// Why an instance is ejected, as far as the breaker knows.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum EjectionCause {
    /// Connections fail (refused, reset, connect timeout): the process or its host is gone, so a
    /// successful TCP connect is evidence that it is back.
    Unreachable,
    /// The instance accepts connections but its calls fail (5xx, timeouts): only a real call
    /// can tell whether it recovered.
    Failing,
}

impl EjectionCause {
    #[cfg(test)]
    pub(super) fn code(self) -> u8 {
        match self {
            Self::Unreachable => CAUSE_UNREACHABLE,
            Self::Failing => CAUSE_FAILING,
        }
    }

    fn from_code(code: u8) -> Option<Self> {
        match code {
            CAUSE_UNREACHABLE => Some(Self::Unreachable),
            CAUSE_FAILING => Some(Self::Failing),
            _ => None,
        }
    }
}

impl Breaker {
    /// Why the current ejection happened: `None` while closed or not classified yet.
    pub fn ejection_cause(&self) -> Option<EjectionCause> {
        if state_of(self.inner.word.load(Ordering::Acquire)) == CLOSED {
            return None;
        }
        EjectionCause::from_code(self.inner.cause.load(Ordering::Acquire))
    }

    /// A background connect to the ejected instance failed (refused, reset, timed out): marks
    /// the ejection [`Unreachable`](EjectionCause::Unreachable). No effect while closed.
    pub fn probe_connect_failed(&self) {
        let _core = self.inner.lock_core();
        if state_of(self.inner.word.load(Ordering::Acquire)) != CLOSED {
            self.inner.cause.store(CAUSE_UNREACHABLE, Ordering::Release);
        }
    }

    /// A background connect to the ejected instance succeeded. If the ejection is known to be
    /// [`Unreachable`](EjectionCause::Unreachable), the open period ends now (the next call is
    /// the half-open probe) and this returns true. If its cause was unknown, it becomes
    /// [`Failing`](EjectionCause::Failing): the instance takes connections, so the doubling
    /// stays. No effect (false) while closed or while the probe call is out.
    pub fn probe_connect_succeeded(&self) -> bool {
        let _core = self.inner.lock_core();
        if state_of(self.inner.word.load(Ordering::Acquire)) != OPEN {
            return false;
        }
        match self.inner.cause.load(Ordering::Acquire) {
            CAUSE_UNREACHABLE => self.inner.end_open_period(),
            CAUSE_UNKNOWN => {
                self.inner.cause.store(CAUSE_FAILING, Ordering::Release);
                false
            }
            _ => false,
        }
    }

    /// Ends the open period now, whatever the cause: the next call is the single half-open
    /// probe (success closes; failure reopens for the doubled period). Returns whether the
    /// breaker was open. The open period's length is kept, so a failed probe still doubles it.
    #[cfg(test)]
    pub fn force_half_open(&self) -> bool {
        let _core = self.inner.lock_core();
        if state_of(self.inner.word.load(Ordering::Acquire)) != OPEN {
            return false;
        }
        self.inner.end_open_period()
    }

    /// A reference that does not keep the breaker alive (for background tasks, which must end
    /// when the instance or the client goes away).
    pub fn downgrade(&self) -> WeakBreaker {
        WeakBreaker(Arc::downgrade(&self.inner))
    }
}

impl Inner {
    fn lock_core(&self) -> MutexGuard<'_, Core> {
        crate::lock::lock(&self.core)
    }

    /// Moves the end of the open period to now (caller holds the core lock, state is open).
    fn end_open_period(&self) -> bool {
        self.until.fetch_min(self.now_nanos(), Ordering::AcqRel);
        true
    }
}

/// A [`Breaker`] reference that does not keep it alive; see [`Breaker::downgrade`].
#[derive(Clone, Debug)]
pub struct WeakBreaker(Weak<Inner>);

impl WeakBreaker {
    /// The breaker, if its instance is still known to some client.
    pub fn upgrade(&self) -> Option<Breaker> {
        self.0.upgrade().map(|inner| Breaker { inner })
    }
}
