//! What a caller branches on: the coarse [`ErrorKind`] of a failed call, and for
//! [`ErrorKind::NoHealthyInstance`] each cluster's [`UnavailableReason`].
//!
//! A caller that has to match on dozens of low-level failure types, or parse a message, cannot
//! decide quickly whether to fix a bug, back off or serve a fallback; these few public,
//! `#[non_exhaustive]` types say which. The detailed reason stays private in [`super::Error`].

use std::fmt;

/// What went wrong, coarsely, so the caller can decide what to do.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum ErrorKind {
    /// The configuration is unusable. Fix the configuration file or the code building it.
    Config,
    /// A registry (Consul) could not be used. Check the agent and its ACL token.
    Discovery,
    /// No instance of the service is available in any cluster (none discovered, all ejected,
    /// registry stale). Nothing was sent. Serve a fallback; see [`Error::unavailable`](super::Error::unavailable) for why.
    NoHealthyInstance,
    /// Every candidate instance refused the call because its circuit breaker is open or probing.
    /// Retry later.
    CircuitOpen,
    /// The call's total deadline (or the last attempt's timeout) passed. The service may still
    /// have processed a non-idempotent request.
    Timeout,
    /// The connection failed, was reset, or the response could not be read (including a body over
    /// the size limit or undecodable JSON), or `error_for_status` saw a 4xx/5xx status. See [`Error::attempts`](super::Error::attempts) for each attempt.
    Transport,
    /// A retry was needed but the retry budget was spent: the service is failing for many
    /// callers. Back off rather than retrying yourself.
    BudgetExhausted,
    /// The service's concurrency limit or rate limit is reached. Nothing was sent. Shed load or
    /// retry after a pause.
    Overloaded,
    /// The caller cancelled the call.
    Cancelled,
    /// The request is invalid (unknown service or cluster, bad path, header or method). Nothing
    /// was sent. Fix the calling code; retrying will not help.
    InvalidRequest,
}

impl ErrorKind {
    /// A short stable label (`no_healthy_instance`, ...) for logs, metrics and bindings.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Config => "config",
            Self::Discovery => "discovery",
            Self::NoHealthyInstance => "no_healthy_instance",
            Self::CircuitOpen => "circuit_open",
            Self::Timeout => "timeout",
            Self::Transport => "transport",
            Self::BudgetExhausted => "budget_exhausted",
            Self::Overloaded => "overloaded",
            Self::Cancelled => "cancelled",
            Self::InvalidRequest => "invalid_request",
        }
    }
}

impl fmt::Display for ErrorKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// Why one cluster had no instance to offer.
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum UnavailableReason {
    /// The service has no target in this cluster (or the override named another cluster).
    NotConfigured,
    /// The registry has not answered yet.
    DiscoveryPending,
    /// The registry answered with no routable instance (none registered, all critical, or none
    /// with the required tags).
    NoneDiscovered,
    /// Instances exist but every one is ejected by its circuit breaker.
    AllEjected {
        /// How many instances are ejected.
        ejected: usize,
    },
    /// The registry is unreachable or failing and the last known list has no usable instance.
    DiscoveryStale {
        /// The last discovery error.
        error: String,
    },
}

impl fmt::Display for UnavailableReason {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::NotConfigured => f.write_str("not configured"),
            Self::DiscoveryPending => f.write_str("discovery has not answered yet"),
            Self::NoneDiscovered => f.write_str("no routable instance discovered"),
            Self::AllEjected { ejected } => write!(f, "all {ejected} instances ejected"),
            Self::DiscoveryStale { error } => write!(f, "discovery stale ({error})"),
        }
    }
}

/// One cluster's reason for having nothing to offer (see [`Error::unavailable`](super::Error::unavailable)).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ClusterUnavailable {
    pub(crate) cluster: String,
    pub(crate) reason: UnavailableReason,
}

impl ClusterUnavailable {
    /// The cluster.
    pub fn cluster(&self) -> &str {
        &self.cluster
    }

    /// Why it could not serve.
    pub fn reason(&self) -> &UnavailableReason {
        &self.reason
    }
}
