//! Errors of the double's state changes, worded exactly as Consul words them.
//!
//! The same error answers an HTTP agent write (with [`ConsulDoubleError::status`] as the status
//! code and the `Display` text as the plain-text body) and an in-process call, so a test that
//! drives the double directly sees the text an SDK would see over HTTP.

/// Why a state change of the double was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum ConsulDoubleError {
    /// The request was malformed (HTTP 400), e.g. `Missing service name`, `Invalid check: …`.
    #[error("{0}")]
    Invalid(String),
    /// The service or check does not exist (HTTP 404), e.g. `Unknown service ID "x". …`.
    #[error("{0}")]
    NotFound(String),
    /// A TTL update named a check that has no TTL (HTTP 500).
    #[error("CheckID \"{0}\" does not have associated TTL")]
    NoTtl(String),
    /// The ACL token may not do this (HTTP 403), e.g. `Permission denied: …`.
    #[error("{0}")]
    Denied(String),
}

impl ConsulDoubleError {
    /// The HTTP status Consul answers with for this error.
    #[must_use]
    pub fn status(&self) -> u16 {
        match self {
            Self::Invalid(_) => 400,
            Self::NotFound(_) => 404,
            Self::NoTtl(_) => 500,
            Self::Denied(_) => 403,
        }
    }

    pub(crate) fn unknown_service(id: &str) -> Self {
        Self::NotFound(format!(
            "Unknown service ID \"{id}\". Ensure that the service ID is passed, not the service name."
        ))
    }

    pub(crate) fn unknown_check(id: &str) -> Self {
        Self::NotFound(format!(
            "Unknown check ID \"{id}\". Ensure that the check ID is passed, not the check name."
        ))
    }
}
