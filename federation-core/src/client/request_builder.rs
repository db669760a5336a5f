//! The fluent builder of one call: collects the request, keeps the first bad input, sends.
//!
//! **Failure prevented.** A mistake in a request (bad header, JSON that cannot be serialized)
//! must surface as an [`crate::error::ErrorKind::InvalidRequest`] error from `send`, before
//! anything goes out, not as a panic in the middle of a chain of setters or a confusing
//! upstream failure.

use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use http::HeaderMap;
use http::header::{CONTENT_TYPE, HeaderName, HeaderValue};
use percent_encoding::{AsciiSet, NON_ALPHANUMERIC, utf8_percent_encode};
use serde::Serialize;

use super::call;
use super::request::Request;
use super::response::Response;
use super::state::Inner;
use crate::error::Error;

/// Characters escaped in query keys and values (everything but unreserved characters).
const QUERY: &AsciiSet = &NON_ALPHANUMERIC
    .remove(b'-')
    .remove(b'_')
    .remove(b'.')
    .remove(b'~');

/// A request being built for one service; finish with [`RequestBuilder::send`].
///
/// The first invalid input (header name or value, JSON that cannot be serialized) is kept and
/// returned by `send` as an [`crate::error::ErrorKind::InvalidRequest`] error.
#[must_use = "a RequestBuilder does nothing until `send` is awaited"]
pub struct RequestBuilder {
    /// The configuration generation the call runs on (the current one when the builder was
    /// made; `Target::Known` indexes its services).
    inner: Arc<Inner>,
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
            Target::Known(i) => self.inner.services.name_at(*i).unwrap_or_default(),
            Target::Unknown(name) => name,
        };
        f.debug_struct("RequestBuilder")
            .field("generation", &self.inner.generation.generation)
            .field("service", &service)
            .field("request", &self.request)
            .finish()
    }
}

impl RequestBuilder {
    pub(crate) fn new(inner: Arc<Inner>, service: Target, request: Request) -> Self {
        Self {
            inner,
            service,
            request: Ok(request),
        }
    }

    /// The name of the service called.
    fn service_name(inner: &Inner, service: Target) -> String {
        match service {
            Target::Known(i) => inner.services.name_at(i).unwrap_or_default().to_owned(),
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
            inner,
            service,
            request,
        } = self;
        request.map_err(|e| e.with_service(Self::service_name(&inner, service)))
    }

    /// Sends the request through the pipeline (as [`FederatedServiceClient::call`](crate::client::FederatedServiceClient::call) does).
    ///
    /// The returned future is small: a fresh cache hit is answered on its first poll without
    /// awaiting anything, and the rest of the call runs in one boxed future.
    pub fn send(self) -> impl Future<Output = Result<Response, Error>> + Send + 'static {
        // Destructured here, so the future below holds each part once.
        let Self {
            inner,
            service,
            mut request,
        } = self;
        async move {
            let request = match request {
                Ok(ref mut request) => request,
                Err(e) => return Err(e.with_service(Self::service_name(&inner, service))),
            };
            let svc = match service {
                Target::Known(i) => inner.services.at(i),
                Target::Unknown(_) => None,
            };
            let Some(svc) = svc else {
                let name = Self::service_name(&inner, service);
                return Err(call::unknown_service(&inner, &name));
            };
            call::run(&inner, svc, request).await
        }
    }
}
