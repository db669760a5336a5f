//! A call to a logical service: method, path, headers, body and per-call options.
//!
//! A mistake in a request (bad header, unknown cluster) must surface before anything is sent, as
//! an [`crate::error::ErrorKind::InvalidRequest`] error, not as a confusing upstream failure. The
//! fluent [`RequestBuilder`](super::RequestBuilder) therefore records the first bad input and returns it from
//! [`RequestBuilder::send`](super::RequestBuilder::send); the pipeline validates the path and options again before choosing a
//! cluster. Idempotency decides retries: GET, HEAD, PUT, DELETE, OPTIONS and TRACE are idempotent
//! by default, POST and PATCH are not (override with [`RequestBuilder::idempotent`](super::RequestBuilder::idempotent)).

use std::time::Duration;

use bytes::Bytes;
use http::{HeaderMap, HeaderValue, Method};

use crate::error::Error;

mod path;
pub(crate) use path::PathText;

/// One request to a logical service.
#[derive(Clone, Debug)]
pub struct Request {
    pub(crate) method: Method,
    pub(crate) path: PathText,
    pub(crate) headers: HeaderMap,
    pub(crate) body: Bytes,
    pub(crate) timeout: Option<Duration>,
    pub(crate) attempt_timeout: Option<Duration>,
    pub(crate) idempotent: Option<bool>,
    pub(crate) cluster: Option<String>,
    pub(crate) tags: Option<Vec<String>>,
    /// The call's outgoing `traceparent`, set once per call when it starts (`call/start.rs`)
    /// and inserted by each attempt; kept out of `headers` so a retry needs no copy of it.
    pub(crate) traceparent: Option<HeaderValue>,
}

impl Request {
    /// A request with no headers, an empty body and the service's default options. `path` is the
    /// path (and optional query) in the logical service, starting with `/`; the cluster's path
    /// prefix is prepended when it is sent.
    pub fn new(method: Method, path: impl Into<String>) -> Self {
        Self::with_path(method, PathText::from(path.into()))
    }

    /// A request to `path` (see [`Request::new`]), copied without allocating when short.
    pub(crate) fn with_path(method: Method, path: PathText) -> Self {
        Self {
            method,
            path,
            headers: HeaderMap::new(),
            body: Bytes::new(),
            timeout: None,
            attempt_timeout: None,
            idempotent: None,
            cluster: None,
            tags: None,
            traceparent: None,
        }
    }

    /// Like [`Request::new`] with the method given as text (`"GET"`), for language bindings.
    /// An invalid method is an [`crate::error::ErrorKind::InvalidRequest`] error.
    pub fn try_new(method: &str, path: impl Into<String>) -> Result<Self, Error> {
        let method = Method::from_bytes(method.as_bytes())
            .map_err(|_| Error::invalid(format!("invalid HTTP method {method:?}")))?;
        Ok(Self::new(method, path))
    }

    /// The method.
    pub fn method(&self) -> &Method {
        &self.method
    }

    /// The path and query, as given.
    pub fn path(&self) -> &str {
        &self.path
    }

    /// The headers.
    pub fn headers(&self) -> &HeaderMap {
        &self.headers
    }

    /// The headers, to change them. An `X-Federation-Deadline-Ms` header here (forwarded from an
    /// incoming call) shortens the call's deadline; a `traceparent` header is continued.
    pub fn headers_mut(&mut self) -> &mut HeaderMap {
        &mut self.headers
    }

    /// The body.
    pub fn body(&self) -> &Bytes {
        &self.body
    }

    /// Replaces the body.
    pub fn set_body(&mut self, body: impl Into<Bytes>) {
        self.body = body.into();
    }

    /// Total deadline across all attempts. Default: the service's `timeout.total` (3 s).
    pub fn set_timeout(&mut self, timeout: Duration) {
        self.timeout = Some(timeout);
    }

    /// Per-attempt timeout. Default: the service's `timeout.attempt` (1 s).
    pub fn set_attempt_timeout(&mut self, timeout: Duration) {
        self.attempt_timeout = Some(timeout);
    }

    /// Whether the request may be sent twice. Default: true for GET, HEAD, PUT, DELETE, OPTIONS
    /// and TRACE, false otherwise.
    pub fn set_idempotent(&mut self, idempotent: bool) {
        self.idempotent = Some(idempotent);
    }

    /// Sends only to this cluster (no failover). Default: clusters ranked automatically.
    pub fn set_cluster(&mut self, cluster: impl Into<String>) {
        self.cluster = Some(cluster.into());
    }

    /// Replaces the service's required tags for this call (per-cluster target tags still apply),
    /// e.g. `["model=v3"]`. Default: the service's `tags`.
    pub fn set_tags(&mut self, tags: Vec<String>) {
        self.tags = Some(tags);
    }

    /// Whether this request may be retried after it could have reached a server.
    pub fn is_idempotent(&self) -> bool {
        self.idempotent.unwrap_or(matches!(
            self.method,
            Method::GET
                | Method::HEAD
                | Method::PUT
                | Method::DELETE
                | Method::OPTIONS
                | Method::TRACE
        ))
    }
}
