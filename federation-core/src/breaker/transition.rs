//! What the breaker tells observers (telemetry, logs) when it changes state.

use std::fmt;
use std::sync::{Arc, Mutex};
use std::time::Duration;

/// Why a breaker opened.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum OpenReason {
    /// `consecutive_failures` calls failed in a row.
    ConsecutiveFailures,
    /// The failure share over the rate window reached the threshold.
    FailureRate,
    /// The half-open probe failed (a repeated ejection: the open period doubled).
    ProbeFailed,
}

/// One state change of a [`Breaker`](super::Breaker).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum Transition {
    /// The instance is ejected for `open_for`.
    Opened {
        /// Why it opened.
        reason: OpenReason,
        /// How long it stays open before one probe is admitted.
        open_for: Duration,
    },
    /// The open period elapsed and the single probe call was admitted.
    HalfOpened,
    /// The probe succeeded: the instance is back in rotation.
    Closed,
}

impl fmt::Display for Transition {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Opened { reason, open_for } => {
                write!(f, "opened for {open_for:?} ({reason:?})")
            }
            Self::HalfOpened => f.write_str("half-open (probe admitted)"),
            Self::Closed => f.write_str("closed"),
        }
    }
}

/// A transition callback.
pub(crate) type Observer = Arc<dyn Fn(Transition) + Send + Sync>;

/// The registered callbacks. Transitions are rare, so a plain lock is fine here; callbacks run
/// after the breaker's own lock is released, on the thread that caused the transition.
#[derive(Default)]
pub(crate) struct Observers {
    list: Mutex<Vec<Observer>>,
}

impl Observers {
    pub(crate) fn push(&self, observer: Observer) {
        if let Ok(mut list) = self.list.lock() {
            list.push(observer);
        }
    }

    pub(crate) fn notify(&self, transition: Transition) {
        // Clone the list so a callback may register another observer without deadlocking.
        let list = match self.list.lock() {
            Ok(list) if list.is_empty() => return,
            Ok(list) => list.clone(),
            Err(_) => return,
        };
        for observer in list {
            observer(transition);
        }
    }
}

impl fmt::Debug for Observers {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let n = self.list.lock().map(|l| l.len()).unwrap_or(0);
        write!(f, "Observers({n})")
    }
}
