//! The one error type of a call, and the small set of kinds a caller branches on.
//!
//! A caller of a federated service must decide quickly what to do with a failure: fix a bug
//! (invalid request), back off (overloaded, budget exhausted), or show a degraded answer (no
//! healthy instance). Dozens of low-level failure types make that impossible, and a bare string
//! hides the facts needed to debug an outage. So there are two levels: a detailed internal
//! reason (kept private so it can grow) behind an opaque [`Error`], and a public
//! `#[non_exhaustive]` [`ErrorKind`] whose variants say what to do. The error also carries the
//! service, the clusters tried and every attempt, and for [`ErrorKind::NoHealthyInstance`] the
//! reason each cluster had nothing to offer. Header values (tokens) never appear in messages.

use std::fmt;
use std::time::Duration;

use crate::attempt::Attempt;
use crate::config::ConfigError;

mod http_error;
mod kind;
use crate::discovery::DiscoveryError;
pub(crate) use http_error::HttpError;
pub use kind::{ClusterUnavailable, ErrorKind, UnavailableReason};

/// The detailed, private reason behind an [`Error`].
#[derive(Debug, thiserror::Error)]
pub(crate) enum Reason {
    #[error(transparent)]
    Config(#[from] ConfigError),
    #[error("{0}")]
    ConfigMessage(String),
    #[error(transparent)]
    Discovery(#[from] DiscoveryError),
    /// `wait_ready` ran out of time: the routes whose registry has not answered successfully.
    #[error("discovery has not answered within {timeout:?} for: {waiting}")]
    NotReady { timeout: Duration, waiting: String },
    #[error("no healthy instance in any cluster: {}", list_unavailable(.0))]
    NoHealthyInstance(Vec<ClusterUnavailable>),
    #[error("every candidate instance has an open circuit breaker")]
    CircuitOpen,
    #[error("deadline of {0:?} exceeded")]
    Deadline(Duration),
    #[error("attempt timed out after {0:?}")]
    AttemptTimeout(Duration),
    #[error(
        "attempt timed out after {0:?}; not retried because the request is not idempotent \
         and may have reached the server"
    )]
    AttemptTimeoutNotRetried(Duration),
    #[error("could not connect: {0}")]
    Connect(#[source] HttpError),
    #[error(
        "connection failed after the request may have reached the server; \
         not retried because the request is not idempotent: {0}"
    )]
    NotRetriedUnsafe(#[source] HttpError),
    #[error("transport error: {0}")]
    Transport(#[source] HttpError),
    #[error("{instance} answered with status {status}")]
    Status {
        status: http::StatusCode,
        instance: String,
    },
    #[error("response body exceeds the limit of {0} bytes")]
    BodyTooLarge(u64),
    #[error("response body is not valid JSON: {0}")]
    Decode(#[source] serde_json::Error),
    #[error("retry budget exhausted after a failed attempt")]
    BudgetExhausted,
    #[error("overloaded: {0}")]
    Overloaded(&'static str),
    #[error("cancelled by the caller")]
    Cancelled,
    #[error("invalid request: {0}")]
    InvalidRequest(String),
    /// A copy of another caller's error (single-flight cache waiters; see `Error::shared_copy`).
    #[error("{message}")]
    Shared { kind: ErrorKind, message: String },
}

fn list_unavailable(list: &[ClusterUnavailable]) -> String {
    let mut out = String::new();
    for (i, c) in list.iter().enumerate() {
        if i > 0 {
            out.push_str("; ");
        }
        out.push_str(&c.cluster);
        out.push_str(": ");
        out.push_str(&c.reason.to_string());
    }
    if out.is_empty() {
        out.push_str("no cluster serves this service");
    }
    out
}

impl Reason {
    fn kind(&self) -> ErrorKind {
        match self {
            Self::Config(_) | Self::ConfigMessage(_) => ErrorKind::Config,
            Self::Discovery(_) | Self::NotReady { .. } => ErrorKind::Discovery,
            Self::NoHealthyInstance(_) => ErrorKind::NoHealthyInstance,
            Self::CircuitOpen => ErrorKind::CircuitOpen,
            Self::Deadline(_) | Self::AttemptTimeout(_) | Self::AttemptTimeoutNotRetried(_) => {
                ErrorKind::Timeout
            }
            Self::Connect(_)
            | Self::NotRetriedUnsafe(_)
            | Self::Transport(_)
            | Self::BodyTooLarge(_)
            | Self::Status { .. }
            | Self::Decode(_) => ErrorKind::Transport,
            Self::BudgetExhausted => ErrorKind::BudgetExhausted,
            Self::Overloaded(_) => ErrorKind::Overloaded,
            Self::Cancelled => ErrorKind::Cancelled,
            Self::InvalidRequest(_) => ErrorKind::InvalidRequest,
            Self::Shared { kind, .. } => *kind,
        }
    }
}

/// A failed call (or an unusable configuration): what kind, for which service, where it was
/// tried and what each attempt did.
///
/// Branch on [`Error::kind`]; show `Display` to humans (it never contains header values).
pub struct Error {
    inner: Box<Inner>,
}

struct Inner {
    reason: Reason,
    service: Option<String>,
    clusters_tried: Vec<String>,
    attempts: Vec<Attempt>,
    /// Clusters the call could not fail over to, and why (see `Error::not_failed_over`).
    left_out: Vec<ClusterUnavailable>,
}

impl Error {
    pub(crate) fn new(reason: Reason) -> Self {
        Self {
            inner: Box::new(Inner {
                reason,
                service: None,
                clusters_tried: Vec::new(),
                attempts: Vec::new(),
                left_out: Vec::new(),
            }),
        }
    }

    pub(crate) fn invalid(message: impl Into<String>) -> Self {
        Self::new(Reason::InvalidRequest(message.into()))
    }

    pub(crate) fn config(message: impl Into<String>) -> Self {
        Self::new(Reason::ConfigMessage(message.into()))
    }

    /// An error of kind [`ErrorKind::Cancelled`] for `service`, for language bindings that cancel
    /// a call (dropping the call's future cancels it too, without an error).
    pub fn cancelled(service: impl Into<String>) -> Self {
        Self::new(Reason::Cancelled).with_service(service.into())
    }

    pub(crate) fn with_service(mut self, service: String) -> Self {
        self.inner.service = Some(service);
        self
    }

    pub(crate) fn with_trail(mut self, clusters: Vec<String>, attempts: Vec<Attempt>) -> Self {
        self.inner.clusters_tried = clusters;
        self.inner.attempts = attempts;
        self
    }

    /// Records why the clusters left out of a failed call's attempts could not take it over
    /// (shown by `Display` and [`Error::unavailable`]).
    pub(crate) fn not_failed_over(mut self, left_out: Vec<ClusterUnavailable>) -> Self {
        self.inner.left_out = left_out;
        self
    }

    /// A copy for the other waiters of a failed single-flight cache fetch (added for the cache
    /// wiring, issue 4): same kind, service, trail, message and `unavailable()` list.
    pub(crate) fn shared_copy(&self) -> Self {
        let reason = match &self.inner.reason {
            Reason::NoHealthyInstance(list) => Reason::NoHealthyInstance(list.clone()),
            other => Reason::Shared {
                kind: other.kind(),
                message: other.to_string(),
            },
        };
        let mut copy = Self::new(reason);
        copy.inner.service.clone_from(&self.inner.service);
        copy.inner
            .clusters_tried
            .clone_from(&self.inner.clusters_tried);
        copy.inner.attempts.clone_from(&self.inner.attempts);
        copy.inner.left_out.clone_from(&self.inner.left_out);
        copy
    }

    /// What kind of failure this is.
    pub fn kind(&self) -> ErrorKind {
        self.inner.reason.kind()
    }

    /// The logical service called, when the error belongs to a call.
    pub fn service(&self) -> Option<&str> {
        self.inner.service.as_deref()
    }

    /// Clusters that received at least one attempt, in order.
    pub fn clusters_tried(&self) -> &[String] {
        &self.inner.clusters_tried
    }

    /// Every attempt made, in order (empty when nothing was sent).
    pub fn attempts(&self) -> &[Attempt] {
        &self.inner.attempts
    }

    /// Why clusters could not serve: for [`ErrorKind::NoHealthyInstance`], every cluster; for
    /// a call whose attempts failed, each cluster it could not fail over to (for example a
    /// registry that had not answered before the deadline, or every instance ejected). Empty
    /// when every serving cluster was tried.
    pub fn unavailable(&self) -> &[ClusterUnavailable] {
        match &self.inner.reason {
            Reason::NoHealthyInstance(list) => list,
            _ => &self.inner.left_out,
        }
    }

    /// Whether the request may have reached a server (so a non-idempotent one may have taken
    /// effect). False when nothing was sent or every attempt failed to connect.
    pub fn may_have_reached_server(&self) -> bool {
        self.inner
            .attempts
            .iter()
            .any(|a| a.outcome().may_have_reached_server())
    }

    /// The HTTP status, for errors made by [`crate::client::Response::error_for_status`].
    pub fn status(&self) -> Option<http::StatusCode> {
        match &self.inner.reason {
            Reason::Status { status, .. } => Some(*status),
            _ => None,
        }
    }

    /// The configuration problems, for [`ErrorKind::Config`] errors built from a `ConfigError`.
    pub fn config_error(&self) -> Option<&ConfigError> {
        match &self.inner.reason {
            Reason::Config(e) => Some(e),
            _ => None,
        }
    }
}

impl fmt::Debug for Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Error")
            .field("kind", &self.kind())
            .field("service", &self.inner.service)
            .field("reason", &self.inner.reason)
            .field("clusters_tried", &self.inner.clusters_tried)
            .field("attempts", &self.inner.attempts)
            .field("left_out", &self.inner.left_out)
            .finish()
    }
}

impl fmt::Display for Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if let Some(service) = &self.inner.service {
            write!(f, "call to service `{service}` failed: ")?;
        }
        write!(f, "{}", self.inner.reason)?;
        let n = self.inner.attempts.len();
        if n > 0 {
            write!(f, " ({n} attempt{}", if n == 1 { "" } else { "s" })?;
            if !self.inner.clusters_tried.is_empty() {
                write!(f, " in {}", self.inner.clusters_tried.join(", "))?;
            }
            f.write_str(")")?;
        }
        if !self.inner.left_out.is_empty() {
            write!(
                f,
                "; not failed over: {}",
                list_unavailable(&self.inner.left_out)
            )?;
        }
        Ok(())
    }
}

impl std::error::Error for Error {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        std::error::Error::source(&self.inner.reason)
    }
}

impl From<DiscoveryError> for Error {
    fn from(e: DiscoveryError) -> Self {
        Self::new(Reason::Discovery(e))
    }
}

impl From<ConfigError> for Error {
    fn from(e: ConfigError) -> Self {
        Self::new(Reason::Config(e))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn no_healthy_instance_lists_every_cluster() {
        let e = Error::new(Reason::NoHealthyInstance(vec![
            ClusterUnavailable {
                cluster: "zervigo".into(),
                reason: UnavailableReason::AllEjected { ejected: 3 },
            },
            ClusterUnavailable {
                cluster: "looma".into(),
                reason: UnavailableReason::NoneDiscovered,
            },
        ]))
        .with_service("user".into());
        assert_eq!(e.kind(), ErrorKind::NoHealthyInstance);
        let text = e.to_string();
        assert!(text.contains("zervigo: all 3 instances ejected"), "{text}");
        assert!(text.contains("looma: no routable instance"), "{text}");
        assert_eq!(e.unavailable().len(), 2);
    }

    #[test]
    fn config_error_converts() {
        let e: Error = ConfigError::single("services.user.prefer", None, "unknown cluster").into();
        assert_eq!(e.kind(), ErrorKind::Config);
        assert!(e.config_error().is_some());
    }
}
