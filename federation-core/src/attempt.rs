//! The record of one attempt of a call: where it went, what happened, how long it took.
//!
//! **Failure prevented.** A call that crossed clusters with retries is impossible to debug from
//! its final answer alone; every response and every error carries its attempts. The record is
//! shared by the response, the error type and the bindings, so it lives below all of them (the
//! error type must not depend on the client).

use std::sync::Arc;
use std::time::Duration;

use http::StatusCode;

/// What one attempt did.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum AttemptOutcome {
    /// A final response (2xx, or any status that is not retried).
    Success,
    /// A retryable status (502, 503, 504 or 429).
    RetryableStatus,
    /// The connection could not be established: the request never reached the server.
    ConnectFailed,
    /// The per-attempt timeout (or the call deadline) passed.
    Timeout,
    /// The connection failed after the request may have been sent (reset, closed early).
    ConnectionLost,
    /// The response body was larger than the configured limit.
    BodyTooLarge,
    /// Abandoned unanswered because a parallel attempt of the same call (a hedge, or the attempt
    /// a hedge backed up) answered first; its connection was closed.
    Cancelled,
}

impl AttemptOutcome {
    /// A short stable label for logs and bindings (`success`, `connect_failed`, ...).
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Success => "success",
            Self::RetryableStatus => "retryable_status",
            Self::ConnectFailed => "connect_failed",
            Self::Timeout => "timeout",
            Self::ConnectionLost => "connection_lost",
            Self::BodyTooLarge => "body_too_large",
            Self::Cancelled => "cancelled",
        }
    }

    /// Whether the request may have reached the server in this attempt.
    pub fn may_have_reached_server(self) -> bool {
        !matches!(self, Self::ConnectFailed)
    }
}

/// One attempt of a call: where it went, what happened and how long it took.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Attempt {
    pub(crate) cluster: Arc<str>,
    pub(crate) instance: Arc<str>,
    pub(crate) outcome: AttemptOutcome,
    pub(crate) duration: Duration,
    pub(crate) status: Option<StatusCode>,
    /// When the attempt began, counted from the start of the call (for tracing spans that a
    /// binding records after the call: Python's and Go's OpenTelemetry integrations).
    pub(crate) offset: Duration,
    /// Sent as a hedge (a backup request while an earlier attempt was still unanswered).
    pub(crate) hedge: bool,
}

impl Attempt {
    /// The cluster the attempt went to.
    pub fn cluster(&self) -> &str {
        &self.cluster
    }

    /// The instance id (registry id) the attempt went to.
    pub fn instance(&self) -> &str {
        &self.instance
    }

    /// What happened.
    pub fn outcome(&self) -> AttemptOutcome {
        self.outcome
    }

    /// How long the attempt took, body included.
    pub fn duration(&self) -> Duration {
        self.duration
    }

    /// The HTTP status, when a response arrived.
    pub fn status(&self) -> Option<StatusCode> {
        self.status
    }

    /// How long after the start of the call this attempt began (backoff and earlier attempts
    /// come before it).
    pub fn offset(&self) -> Duration {
        self.offset
    }

    /// Whether this attempt was a hedge: sent while an earlier attempt of the same call was
    /// still unanswered (the service's `hedge` policy), not after it failed.
    pub fn is_hedge(&self) -> bool {
        self.hedge
    }
}
