//! Errors of the sync runtime: a small set of kinds, each saying what the caller should do.

use std::time::Duration;

/// What went wrong, coarsely; match on this.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum SyncErrorKind {
    /// The configuration cannot run (no `sync` section, unknown local cluster, a `callback`
    /// policy without a callback). Fix the configuration; retrying will not help.
    Config,
    /// The change is not valid (unknown type, missing required field, too large). Fix the call.
    InvalidChange,
    /// The broker did not acknowledge within the deadline (down, unreachable or slow). The change
    /// may still be delivered later (the idempotent producer never duplicates it); retrying with
    /// the same change is safe.
    Timeout,
    /// Kafka refused or failed the operation (see the message).
    Kafka,
    /// The sync target (the service's store) failed.
    Target,
}

/// A sync runtime error: a [`SyncErrorKind`] and a message naming what failed.
#[derive(Debug, thiserror::Error)]
#[error("{message}")]
pub struct SyncError {
    kind: SyncErrorKind,
    message: String,
}

impl SyncError {
    pub(crate) fn new(kind: SyncErrorKind, message: impl Into<String>) -> Self {
        Self {
            kind,
            message: message.into(),
        }
    }

    pub(crate) fn config(message: impl Into<String>) -> Self {
        Self::new(SyncErrorKind::Config, message)
    }

    pub(crate) fn kafka(what: &str, error: &rdkafka::error::KafkaError) -> Self {
        Self::new(SyncErrorKind::Kafka, format!("{what}: {error}"))
    }

    pub(crate) fn timeout(what: &str, after: Duration) -> Self {
        Self::new(
            SyncErrorKind::Timeout,
            format!("{what}: no acknowledgement from the broker within {after:?}"),
        )
    }

    /// The kind.
    pub fn kind(&self) -> SyncErrorKind {
        self.kind
    }
}

/// An error reported by a [`SyncTarget`](crate::SyncTarget) (the service's store or handler).
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[error("{message}")]
pub struct TargetError {
    message: String,
    stale: bool,
}

impl TargetError {
    /// A failure (retried with backoff, then dead-lettered).
    pub fn new(message: impl Into<String>) -> Self {
        Self {
            message: message.into(),
            stale: false,
        }
    }

    /// The stored state is no longer [`AppliedChange::previous`](crate::AppliedChange::previous)
    /// (a local write landed in between): the subscriber reads again and decides again at once,
    /// without counting an attempt.
    pub fn stale() -> Self {
        Self {
            message: "the stored state changed since it was read".into(),
            stale: true,
        }
    }

    /// Whether this is [`TargetError::stale`].
    pub fn is_stale(&self) -> bool {
        self.stale
    }
}
