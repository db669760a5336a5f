//! A call to a logical service: method, path, headers, body and per-call options.
//!
//! A mistake in a request (bad header, unknown cluster) must surface before anything is sent, as
//! an [`crate::error::ErrorKind::InvalidRequest`] error, not as a confusing upstream failure. The
//! fluent [`RequestBuilder`] therefore records the first bad input and returns it from
//! [`RequestBuilder::send`]; the pipeline validates the path and options again before choosing a
//! cluster. Idempotency decides retries: GET, HEAD, PUT, DELETE, OPTIONS and TRACE are idempotent
//! by default, POST and PATCH are not (override with [`RequestBuilder::idempotent`]).

use std::time::Duration;

use bytes::Bytes;
use http::header::{CONTENT_TYPE, HeaderName, HeaderValue};
use http::{HeaderMap, Method};
use percent_encoding::{AsciiSet, NON_ALPHANUMERIC, utf8_percent_encode};
use serde::Serialize;

use super::{FederatedServiceClient, Response};
use crate::error::Error;

mod path;
pub(crate) use path::PathText;

/// Characters escaped in query keys and values (everything but unreserved characters).
const QUERY: &AsciiSet = &NON_ALPHANUMERIC
    .remove(b'-')
    .remove(b'_')
    .remove(b'.')
    .remove(b'~');

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

/// A request being built for one service; finish with [`RequestBuilder::send`].
///
/// The first invalid input (header name or value, JSON that cannot be serialized) is kept and
/// returned by `send` as an [`crate::error::ErrorKind::InvalidRequest`] error.
#[must_use = "a RequestBuilder does nothing until `send` is awaited"]
pub struct RequestBuilder {
    client: FederatedServiceClient,
    service: Target,
    request: Result<Request, Error>,
}

/// The service a builder calls: looked up when the builder was made.
#[derive(Debug)]
pub(crate) enum Target {
    /// A configured service, by its index in the client's services.
    Known(usize),
    /// A name that is not configured (kept for the error `send` returns).
    Unknown(String),
}

impl std::fmt::Debug for RequestBuilder {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let service = match &self.service {
            Target::Known(i) => self.client.inner.services.name_at(*i).unwrap_or_default(),
            Target::Unknown(name) => name,
        };
        f.debug_struct("RequestBuilder")
            .field("client", &self.client)
            .field("service", &service)
            .field("request", &self.request)
            .finish()
    }
}

impl RequestBuilder {
    pub(crate) fn new(client: FederatedServiceClient, service: Target, request: Request) -> Self {
        Self {
            client,
            service,
            request: Ok(request),
        }
    }

    /// The name of the service called.
    fn service_name(client: &FederatedServiceClient, service: Target) -> String {
        match service {
            Target::Known(i) => client
                .inner
                .services
                .name_at(i)
                .unwrap_or_default()
                .to_owned(),
            Target::Unknown(name) => name,
        }
    }

    fn map(mut self, f: impl FnOnce(&mut Request) -> Result<(), Error>) -> Self {
        if let Ok(request) = &mut self.request
            && let Err(e) = f(request)
        {
            self.request = Err(e);
        }
        self
    }

    /// Adds a header (appended; an existing one with the same name is kept).
    pub fn header<K, V>(self, name: K, value: V) -> Self
    where
        HeaderName: TryFrom<K>,
        HeaderValue: TryFrom<V>,
    {
        self.map(|r| {
            let name =
                HeaderName::try_from(name).map_err(|_| Error::invalid("invalid header name"))?;
            let mut value = HeaderValue::try_from(value)
                .map_err(|_| Error::invalid(format!("invalid value for header `{name}`")))?;
            if name == http::header::AUTHORIZATION {
                value.set_sensitive(true);
            }
            r.headers.append(name, value);
            Ok(())
        })
    }

    /// Adds every header of `headers` (replacing same-named ones).
    pub fn headers(self, headers: HeaderMap) -> Self {
        self.map(|r| {
            for (name, value) in headers {
                if let Some(name) = name {
                    r.headers.insert(name, value);
                }
            }
            Ok(())
        })
    }

    /// Appends query parameters, percent-encoded.
    pub fn query<K: AsRef<str>, V: AsRef<str>>(self, pairs: &[(K, V)]) -> Self {
        self.map(|r| {
            for (k, v) in pairs {
                let sep = if r.path.contains('?') { '&' } else { '?' };
                r.path.push(sep);
                r.path.extend(utf8_percent_encode(k.as_ref(), QUERY));
                r.path.push('=');
                r.path.extend(utf8_percent_encode(v.as_ref(), QUERY));
            }
            Ok(())
        })
    }

    /// Sets a JSON body and `Content-Type: application/json`.
    pub fn json<T: Serialize + ?Sized>(self, value: &T) -> Self {
        self.map(|r| {
            let body = serde_json::to_vec(value)
                .map_err(|e| Error::invalid(format!("body cannot be serialized as JSON: {e}")))?;
            r.body = Bytes::from(body);
            r.headers
                .insert(CONTENT_TYPE, HeaderValue::from_static("application/json"));
            Ok(())
        })
    }

    /// Sets the body. Default: empty.
    pub fn body(self, body: impl Into<Bytes>) -> Self {
        let body = body.into();
        self.map(|r| {
            r.body = body;
            Ok(())
        })
    }

    /// Total deadline across all attempts, backoffs and failovers. Default: the service's
    /// `timeout.total` (3 s), shortened by an incoming `X-Federation-Deadline-Ms`.
    pub fn timeout(self, timeout: Duration) -> Self {
        self.map(|r| {
            r.timeout = Some(timeout);
            Ok(())
        })
    }

    /// Per-attempt timeout. Default: the service's `timeout.attempt` (1 s).
    pub fn attempt_timeout(self, timeout: Duration) -> Self {
        self.map(|r| {
            r.attempt_timeout = Some(timeout);
            Ok(())
        })
    }

    /// Whether the request may be retried after it may have reached a server. Default: true for
    /// GET, HEAD, PUT, DELETE, OPTIONS and TRACE; false for POST and PATCH (those are retried only
    /// when the connection was refused).
    pub fn idempotent(self, idempotent: bool) -> Self {
        self.map(|r| {
            r.idempotent = Some(idempotent);
            Ok(())
        })
    }

    /// Sends only to this cluster, with no failover. Default: automatic cluster ranking.
    pub fn cluster(self, cluster: impl Into<String>) -> Self {
        let cluster = cluster.into();
        self.map(|r| {
            r.cluster = Some(cluster);
            Ok(())
        })
    }

    /// Replaces the service's required instance tags for this call, e.g. `["model=v3"]`.
    /// Default: the service's configured `tags`.
    pub fn tags<I, S>(self, tags: I) -> Self
    where
        I: IntoIterator<Item = S>,
        S: Into<String>,
    {
        let tags: Vec<String> = tags.into_iter().map(Into::into).collect();
        self.map(|r| {
            r.tags = Some(tags);
            Ok(())
        })
    }

    /// The request built so far, or the first invalid input.
    pub fn build(self) -> Result<Request, Error> {
        let Self {
            client,
            service,
            request,
        } = self;
        request.map_err(|e| e.with_service(Self::service_name(&client, service)))
    }

    /// Sends the request through the pipeline (as [`FederatedServiceClient::call`] does).
    ///
    /// The returned future is small: a fresh cache hit is answered on its first poll without
    /// awaiting anything, and the rest of the call runs in one boxed future.
    pub fn send(self) -> impl Future<Output = Result<Response, Error>> + Send + 'static {
        // Destructured here, so the future below holds each part once.
        let Self {
            client,
            service,
            mut request,
        } = self;
        async move {
            let request = match request {
                Ok(ref mut request) => request,
                Err(e) => return Err(e.with_service(Self::service_name(&client, service))),
            };
            let inner = &client.inner;
            let svc = match service {
                Target::Known(i) => inner.services.at(i),
                Target::Unknown(_) => None,
            };
            let Some(svc) = svc else {
                let name = Self::service_name(&client, service);
                return Err(super::pipeline::unknown_service(inner, &name));
            };
            // The started call is unpacked before the await, so this future never holds it.
            let full = match super::observe::begin(inner, svc, request) {
                super::observe::Begun::Done(result) => return result,
                super::observe::Begun::Running(full) => full,
            };
            full.await
        }
    }
}
