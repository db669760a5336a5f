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

pub use crate::attempt::{Attempt, AttemptOutcome};
use crate::cache::CachedResponse;
use crate::error::{Error, Reason};

// CacheStatus lives in the cache module (issue 4); re-exported here for the client API.
pub use crate::cache::CacheStatus;

/// The attempts of a call, inline for the usual one (no allocation per call for the list).
pub(crate) type Attempts = smallvec::SmallVec<[Attempt; 1]>;

/// How a call was served.
#[derive(Clone, Debug)]
pub struct ServedBy {
    pub(crate) origin: Origin,
    pub(crate) attempts: Attempts,
    pub(crate) cache: CacheStatus,
    pub(crate) elapsed: Duration,
    /// The split arm of a service with a `split` (boxed: most services have none).
    pub(crate) split: Option<Box<SplitOutcome>>,
}

/// How a call of a service with a `split` was assigned: the arm its key chose, the arm that
/// served it, and why the assigned arm was left when it could not serve.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SplitOutcome {
    arm: Arc<str>,
    served_arm: Option<Arc<str>>,
    fallback: Option<String>,
}

impl SplitOutcome {
    pub(crate) fn new(
        arm: Arc<str>,
        served_arm: Option<Arc<str>>,
        fallback: Option<String>,
    ) -> Self {
        Self {
            arm,
            served_arm,
            fallback,
        }
    }

    /// The arm the call was assigned (by its sticky key or at random).
    pub fn arm(&self) -> &str {
        &self.arm
    }

    /// The arm that took the call: the assigned one, another arm after a fallback, or `None`
    /// when no arm could serve and the service's usual routing took it.
    pub fn served_arm(&self) -> Option<&str> {
        self.served_arm.as_deref()
    }

    /// Why the assigned arm was left (`empty: …` or `ejected: …` with each cluster's reason);
    /// `None` when it served the call.
    pub fn fallback(&self) -> Option<&str> {
        self.fallback.as_deref()
    }
}

/// Who produced a response.
#[derive(Clone, Debug)]
pub(crate) enum Origin {
    /// An upstream instance, in this call.
    Upstream {
        cluster: Arc<str>,
        instance: Arc<str>,
    },
    /// The cache entry that served the call (it records the cluster and instance that produced
    /// it). Holding the entry moka handed out costs no reference count per name.
    Cached(Arc<CachedResponse>),
}

impl ServedBy {
    /// The cluster that produced the response.
    pub fn cluster(&self) -> &str {
        match &self.origin {
            Origin::Upstream { cluster, .. } => cluster,
            Origin::Cached(entry) => entry.cluster.as_deref().unwrap_or(""),
        }
    }

    /// The instance id that produced the response.
    pub fn instance(&self) -> &str {
        match &self.origin {
            Origin::Upstream { instance, .. } => instance,
            Origin::Cached(entry) => entry.instance.as_deref().unwrap_or(""),
        }
    }

    /// Every attempt in order; the last one produced the response. Empty for a cache hit.
    pub fn attempts(&self) -> &[Attempt] {
        &self.attempts
    }

    /// The split arm of the call, for a service with a `split` (`None` otherwise, and for a call
    /// whose per-call tags or cluster bypassed the split).
    pub fn split(&self) -> Option<&SplitOutcome> {
        self.split.as_deref()
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

/// Response headers and body: owned (from upstream), or those of a cache entry.
#[derive(Clone, Debug)]
pub(crate) enum Content {
    /// Headers and body of an upstream response. Boxed, so a `Response` stays small and cheap
    /// to move (a cache hit moves it several times; an upstream call allocates anyway).
    Owned(Box<Owned>),
    /// Headers and body of this cache entry (a miss that went through the cache).
    Cached(Arc<CachedResponse>),
    /// Headers and body of the cache entry the response's [`Origin::Cached`] holds (a hit or a
    /// stale serve): one entry reference serves names, headers and body.
    Served,
}

/// Headers and body of an upstream response.
#[derive(Clone, Debug)]
pub(crate) struct Owned {
    pub(crate) headers: HeaderMap,
    pub(crate) body: Bytes,
}

/// Headers of a response whose content is missing (never happens: see [`Content::Served`]).
fn no_headers() -> &'static HeaderMap {
    static EMPTY: std::sync::OnceLock<HeaderMap> = std::sync::OnceLock::new();
    EMPTY.get_or_init(HeaderMap::new)
}

/// Body of a response whose content is missing (never happens: see [`Content::Served`]).
static NO_BODY: Bytes = Bytes::new();

/// The response of a call: status, headers, the whole body, and how it was served.
#[derive(Clone, Debug)]
pub struct Response {
    pub(crate) status: StatusCode,
    pub(crate) content: Content,
    pub(crate) served: ServedBy,
    /// The logical service called; `None` when the response came from the cache, whose entry
    /// names it (no reference count per hit).
    pub(crate) service: Option<Arc<str>>,
}

impl Response {
    /// The cache entry holding this response's headers and body, when it came from the cache.
    fn entry(&self) -> Option<&CachedResponse> {
        match (&self.content, &self.served.origin) {
            (Content::Cached(entry), _) | (Content::Served, Origin::Cached(entry)) => Some(entry),
            _ => None,
        }
    }

    /// The logical service called.
    fn service_name(&self) -> &str {
        match (&self.service, self.entry()) {
            (Some(service), _) => service,
            (None, Some(entry)) => &entry.service,
            (None, None) => "",
        }
    }

    /// The headers, the body and how the call was served, owned (the headers are copied only
    /// when still shared).
    pub(crate) fn into_parts(self) -> (HeaderMap, Bytes, ServedBy) {
        let (headers, body) = match self.content {
            Content::Owned(owned) => (owned.headers, owned.body),
            Content::Cached(entry) => match Arc::try_unwrap(entry) {
                Ok(entry) => (
                    Arc::try_unwrap(entry.headers).unwrap_or_else(|map| (*map).clone()),
                    entry.body,
                ),
                Err(entry) => ((*entry.headers).clone(), entry.body.clone()),
            },
            Content::Served => match &self.served.origin {
                Origin::Cached(entry) => ((*entry.headers).clone(), entry.body.clone()),
                Origin::Upstream { .. } => (HeaderMap::new(), Bytes::new()),
            },
        };
        (headers, body, self.served)
    }
}

impl Response {
    /// The HTTP status.
    pub fn status(&self) -> StatusCode {
        self.status
    }

    /// The response headers.
    pub fn headers(&self) -> &HeaderMap {
        match (&self.content, self.entry()) {
            (Content::Owned(owned), _) => &owned.headers,
            (_, Some(entry)) => &entry.headers,
            (_, None) => no_headers(),
        }
    }

    /// How the call was served: cluster, instance, attempts, cache status, total time.
    pub fn served(&self) -> &ServedBy {
        &self.served
    }

    /// The body (already read; cloning `Bytes` is cheap).
    pub fn body(&self) -> &Bytes {
        match (&self.content, self.entry()) {
            (Content::Owned(owned), _) => &owned.body,
            (_, Some(entry)) => &entry.body,
            (_, None) => &NO_BODY,
        }
    }

    /// The body, consuming the response.
    pub fn bytes(self) -> Bytes {
        match self.content {
            Content::Owned(owned) => owned.body,
            _ => self.body().clone(),
        }
    }

    /// The body as text; invalid UTF-8 sequences become `U+FFFD`.
    pub fn text(&self) -> String {
        String::from_utf8_lossy(self.body()).into_owned()
    }

    /// The body parsed as JSON. Fails with [`crate::error::ErrorKind::Transport`] when it is not
    /// valid JSON for `T`.
    pub fn json<T: DeserializeOwned>(&self) -> Result<T, Error> {
        serde_json::from_slice(self.body())
            .map_err(|e| Error::new(Reason::Decode(e)).with_service(self.service_name().to_owned()))
    }

    /// `Ok(self)` for 1xx–3xx statuses; an error of kind
    /// [`crate::error::ErrorKind::Transport`] naming the status otherwise.
    pub fn error_for_status(self) -> Result<Self, Error> {
        if self.status.is_client_error() || self.status.is_server_error() {
            let reason = Reason::Status {
                status: self.status,
                instance: self.served.instance().to_owned(),
            };
            Err(Error::new(reason)
                .with_service(self.service_name().to_owned())
                .with_trail(
                    vec![self.served.cluster().to_owned()],
                    self.served.attempts.into_vec(),
                ))
        } else {
            Ok(self)
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::cache::FetchOutcome;

    /// A response served from a cache entry names the entry's service in its errors.
    #[test]
    fn cached_response_errors_name_the_service() {
        let outcome = FetchOutcome::new(503, HeaderMap::new(), Bytes::from_static(b"{"));
        let now = tokio::time::Instant::now();
        let entry = Arc::new(CachedResponse::new(
            outcome,
            Arc::from("user"),
            now,
            Duration::from_secs(1),
            Duration::ZERO,
            Duration::ZERO,
        ));
        let response = Response {
            status: StatusCode::SERVICE_UNAVAILABLE,
            content: Content::Served,
            served: ServedBy {
                origin: Origin::Cached(entry),
                attempts: Attempts::new(),
                cache: CacheStatus::Hit,
                elapsed: Duration::from_micros(1),
                split: None,
            },
            service: None,
        };
        let decode = response
            .json::<serde_json::Value>()
            .expect_err("the body is not JSON");
        assert_eq!(decode.service(), Some("user"));
        let status = response.error_for_status().expect_err("503 is an error");
        assert_eq!(status.service(), Some("user"));
    }
}
