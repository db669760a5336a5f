//! The answer of a call and the record of how it was served.
//!
//! When a call crosses two clusters with retries and failover, "it worked" is not enough to debug
//! latency or a wrong answer: the caller needs to know which cluster and instance answered, what
//! every attempt did and whether the cache served it. So every [`Response`] carries a
//! [`ServedBy`]. The body is read fully (bounded by `limits.max_response_bytes`) before the call
//! returns, so reading it again is cheap and never fails on the network. A non-2xx final status is
//! a response, not an error; [`Response::error_for_status`] turns it into one.

use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use http::{HeaderMap, StatusCode};
use serde::de::DeserializeOwned;

use crate::cache::CachedResponse;
use crate::error::{Error, Reason};

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
}

// CacheStatus lives in the cache module (issue 4); re-exported here for the client API.
pub use crate::cache::CacheStatus;

/// How a call was served.
#[derive(Clone, Debug)]
pub struct ServedBy {
    pub(crate) cluster: Arc<str>,
    pub(crate) instance: Arc<str>,
    pub(crate) attempts: Vec<Attempt>,
    pub(crate) cache: CacheStatus,
    pub(crate) elapsed: Duration,
}

impl ServedBy {
    /// The cluster that produced the response.
    pub fn cluster(&self) -> &str {
        &self.cluster
    }

    /// The instance id that produced the response.
    pub fn instance(&self) -> &str {
        &self.instance
    }

    /// Every attempt in order; the last one produced the response. Empty for a cache hit.
    pub fn attempts(&self) -> &[Attempt] {
        &self.attempts
    }

    /// Whether the cache served the call.
    pub fn cache(&self) -> CacheStatus {
        self.cache
    }

    /// Total time of the call.
    pub fn elapsed(&self) -> Duration {
        self.elapsed
    }
}

/// Response headers: owned (from upstream), or those of the cache entry that served them.
#[derive(Clone, Debug)]
pub(crate) enum Headers {
    /// Headers of an upstream response.
    Owned(HeaderMap),
    /// Headers of a cached response: the entry itself is held (the reference moka handed out),
    /// so serving it costs no further reference count and no copy.
    Cached(Arc<CachedResponse>),
}

impl Headers {
    /// The header map.
    pub(crate) fn map(&self) -> &HeaderMap {
        match self {
            Self::Owned(map) => map,
            Self::Cached(entry) => &entry.headers,
        }
    }

    /// The header map, owned (copied only when still shared).
    pub(crate) fn into_map(self) -> HeaderMap {
        match self {
            Self::Owned(map) => map,
            Self::Cached(entry) => match Arc::try_unwrap(entry) {
                Ok(entry) => Arc::try_unwrap(entry.headers).unwrap_or_else(|map| (*map).clone()),
                Err(entry) => (*entry.headers).clone(),
            },
        }
    }
}

impl From<HeaderMap> for Headers {
    fn from(map: HeaderMap) -> Self {
        Self::Owned(map)
    }
}

/// The response of a call: status, headers, the whole body, and how it was served.
#[derive(Clone, Debug)]
pub struct Response {
    pub(crate) status: StatusCode,
    pub(crate) headers: Headers,
    pub(crate) body: Bytes,
    pub(crate) served: ServedBy,
    pub(crate) service: Arc<str>,
}

impl Response {
    /// The HTTP status.
    pub fn status(&self) -> StatusCode {
        self.status
    }

    /// The response headers.
    pub fn headers(&self) -> &HeaderMap {
        self.headers.map()
    }

    /// How the call was served: cluster, instance, attempts, cache status, total time.
    pub fn served(&self) -> &ServedBy {
        &self.served
    }

    /// The body (already read; cloning `Bytes` is cheap).
    pub fn body(&self) -> &Bytes {
        &self.body
    }

    /// The body, consuming the response.
    pub fn bytes(self) -> Bytes {
        self.body
    }

    /// The body as text; invalid UTF-8 sequences become `U+FFFD`.
    pub fn text(&self) -> String {
        String::from_utf8_lossy(&self.body).into_owned()
    }

    /// The body parsed as JSON. Fails with [`crate::error::ErrorKind::Transport`] when it is not
    /// valid JSON for `T`.
    pub fn json<T: DeserializeOwned>(&self) -> Result<T, Error> {
        serde_json::from_slice(&self.body)
            .map_err(|e| Error::new(Reason::Decode(e)).with_service(self.service.to_string()))
    }

    /// `Ok(self)` for 1xx–3xx statuses; an error of kind
    /// [`crate::error::ErrorKind::Transport`] naming the status otherwise.
    pub fn error_for_status(self) -> Result<Self, Error> {
        if self.status.is_client_error() || self.status.is_server_error() {
            let reason = Reason::Status {
                status: self.status,
                instance: self.served.instance.to_string(),
            };
            Err(Error::new(reason)
                .with_service(self.service.to_string())
                .with_trail(vec![self.served.cluster.to_string()], self.served.attempts))
        } else {
            Ok(self)
        }
    }
}
