//! Discovery errors: what went wrong talking to a cluster's registry, always naming the cluster.
//!
//! Two clusters are watched side by side, so "Consul unreachable" is useless unless it says which
//! Consul. Every [`DiscoveryError`] carries the cluster name, a coarse [`DiscoveryErrorKind`] a
//! caller can act on, and a human message (never containing an ACL token).

use std::fmt;

/// Longest error body kept from a Consul answer (bytes, cut at a character boundary).
const MAX_BODY: usize = 512;

/// What kind of discovery failure happened, so callers can decide what to do.
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum DiscoveryErrorKind {
    /// The agent could not be reached (connection refused or reset, DNS failure). Keep using the
    /// last known instances; the watcher retries with backoff.
    Unreachable,
    /// The agent did not answer in time (a hung agent, or `wait_initialized` timed out).
    Timeout,
    /// The agent answered with a non-success status, e.g. 500 `No cluster leader`.
    Status {
        /// HTTP status code.
        code: u16,
        /// Plain-text error body as Consul sent it (truncated).
        body: String,
    },
    /// 403: the ACL token is unknown (`ACL not found`) or lacks permission. Fix the token.
    Forbidden,
    /// The answer could not be understood (bad JSON, missing or invalid `X-Consul-Index`).
    Parse,
    /// The cluster's discovery configuration is unusable (bad address, missing token variable,
    /// unreadable CA file, a registration without an address, a wrong datacenter).
    Config,
    /// The operation needs a Consul source, and the cluster has a static instance list.
    Unsupported,
    /// Discovery was shut down or no tokio runtime was available.
    Shutdown,
}

impl DiscoveryErrorKind {
    /// A short, stable label for metrics and logs (`unreachable`, `status`, `forbidden`, ...).
    pub fn label(&self) -> &'static str {
        match self {
            Self::Unreachable => "unreachable",
            Self::Timeout => "timeout",
            Self::Status { .. } => "status",
            Self::Forbidden => "forbidden",
            Self::Parse => "parse",
            Self::Config => "config",
            Self::Unsupported => "unsupported",
            Self::Shutdown => "shutdown",
        }
    }
}

/// A discovery failure in one cluster. `Display` names the cluster:
/// ``discovery in cluster `zervigo`: 403 Forbidden from Consul: ACL not found``.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct DiscoveryError {
    pub(crate) cluster: String,
    pub(crate) kind: DiscoveryErrorKind,
    pub(crate) message: String,
}

impl DiscoveryError {
    /// Builds an error for `cluster`.
    pub fn new(
        cluster: impl Into<String>,
        kind: DiscoveryErrorKind,
        message: impl Into<String>,
    ) -> Self {
        Self {
            cluster: cluster.into(),
            kind,
            message: message.into(),
        }
    }

    /// The cluster whose registry failed.
    pub fn message(&self) -> &str {
        &self.message
    }

    /// The cluster whose registry failed.
    pub fn cluster(&self) -> &str {
        &self.cluster
    }

    /// What kind of failure it is.
    pub fn kind(&self) -> &DiscoveryErrorKind {
        &self.kind
    }

    /// A `Status` or `Forbidden` error from a non-success HTTP answer with a text `body`.
    pub(crate) fn from_status(cluster: &str, what: &str, code: u16, body: &str) -> Self {
        let body = truncate(body.trim(), MAX_BODY);
        if code == 403 {
            let hint = if body.contains("ACL not found") {
                " (the ACL token is unknown: check the cluster's token or token_env)"
            } else {
                " (the ACL token lacks permission)"
            };
            return Self::new(
                cluster,
                DiscoveryErrorKind::Forbidden,
                format!("{what}: 403 Forbidden from Consul: {body}{hint}"),
            );
        }
        Self::new(
            cluster,
            DiscoveryErrorKind::Status {
                code,
                body: body.clone(),
            },
            format!("{what}: Consul answered {code}: {body}"),
        )
    }
}

impl fmt::Display for DiscoveryError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "discovery in cluster `{}`: {}",
            self.cluster, self.message
        )
    }
}

impl std::error::Error for DiscoveryError {}

/// `s` cut to at most `max` bytes at a character boundary, with `…` when cut.
fn truncate(s: &str, max: usize) -> String {
    if s.len() <= max {
        return s.to_owned();
    }
    let mut end = max;
    while !s.is_char_boundary(end) {
        end -= 1;
    }
    format!("{}…", &s[..end])
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn forbidden_names_the_cluster_and_the_cause() {
        let e = DiscoveryError::from_status("looma", "watching `ai`", 403, "ACL not found");
        assert_eq!(e.kind, DiscoveryErrorKind::Forbidden);
        let text = e.to_string();
        assert!(text.contains("`looma`"), "{text}");
        assert!(text.contains("ACL not found"), "{text}");
    }

    #[test]
    fn status_keeps_a_truncated_body() {
        let body = "é".repeat(400);
        let e = DiscoveryError::from_status("z", "w", 500, &body);
        match e.kind {
            DiscoveryErrorKind::Status { code, body } => {
                assert_eq!(code, 500);
                assert!(body.len() <= MAX_BODY + '…'.len_utf8());
            }
            other => panic!("unexpected kind {other:?}"),
        }
    }
}
