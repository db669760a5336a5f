//! What a call must pass before anything is routed: a valid request, the service's load
//! limits, and a deadline.
//!
//! **Failure prevented.** Bad input reaching the network as a confusing upstream failure; an
//! overloaded service queueing calls it cannot serve; a call outliving its caller's deadline
//! (the incoming `X-Federation-Deadline-Ms` shortens it); and, on a fresh client, a call routed
//! before the registry of the cluster it should go to first has answered (startup grace, see
//! `routing/startup.rs`). Nothing here sends anything.

use std::time::Duration;

use http::Method;
use http::uri::PathAndQuery;
use tokio::time::Instant;

use super::propagate::{self, DEADLINE, DEADLINE_HEADER};
use crate::client::request::Request;
use crate::client::routing::startup;
use crate::client::state::{Inner, ServiceRoute};
use crate::error::{Error, Reason};
use crate::limit::BulkheadPermit;
use crate::transport::attempt_url::is_plain_byte;

/// The error of a call to a service that is not configured.
pub(crate) fn unknown_service(inner: &Inner, service: &str) -> Error {
    let mut known: Vec<&str> = inner.services.keys().map(String::as_str).collect();
    known.sort_unstable();
    Error::invalid(format!(
        "unknown service `{service}`; configured: {}",
        known.join(", ")
    ))
    .with_service(service.to_owned())
}

/// An admitted call: when it started, its deadline, and the bulkhead slot it holds until it
/// ends.
pub(super) struct Admitted {
    pub(super) start: Instant,
    /// When admission ended: `start` unless the call waited out the startup grace (then a
    /// fresh clock reading), so the first pick and attempt need no reading of their own.
    pub(super) ready: Instant,
    /// The call's whole time budget (for the deadline error).
    pub(super) total: Duration,
    pub(super) deadline: Instant,
    pub(super) attempt_timeout: Duration,
    pub(super) _bulkhead: Option<BulkheadPermit>,
}

/// Admits a call of `svc` that began at `start`: validates `request`, takes the bulkhead slot
/// and a rate token, sets the deadline, and waits out the startup grace if the client is that
/// young.
pub(super) async fn admit(
    inner: &Inner,
    svc: &ServiceRoute,
    request: &Request,
    start: Instant,
) -> Result<Admitted, Error> {
    let incoming = validate(request)?;
    let bulkhead = match &svc.bulkhead {
        Some(b) => Some(
            b.try_acquire()
                .ok_or_else(|| Error::new(Reason::Overloaded("concurrency limit reached")))?,
        ),
        None => None,
    };
    if let Some(rate) = &svc.rate
        && !rate.try_acquire()
    {
        return Err(Error::new(Reason::Overloaded("rate limit reached")));
    }
    let policy = &svc.policy;
    let mut total = request.timeout.unwrap_or(policy.timeout.total);
    if let Some(incoming) = incoming {
        total = total.min(incoming);
    }
    let deadline = start + total;
    let grace_end = svc.watch(&inner.clusters, inner.startup_grace);
    let mut ready = start;
    if start < grace_end {
        let until = deadline.min(grace_end);
        // Boxed: only a young client's calls wait here; unboxed, the wait would size every
        // call's future.
        Box::pin(startup::await_first_answer(
            svc,
            request.cluster.as_deref(),
            until,
        ))
        .await;
        ready = Instant::now();
    }
    inner.timer_anchor.touch();
    Ok(Admitted {
        start,
        ready,
        total,
        deadline,
        attempt_timeout: request.attempt_timeout.unwrap_or(policy.timeout.attempt),
        _bulkhead: bulkhead,
    })
}

/// Checks the request before anything is sent; returns the incoming deadline header's value.
fn validate(request: &Request) -> Result<Option<Duration>, Error> {
    if !request.path.starts_with('/') {
        return Err(Error::invalid(format!(
            "path must start with `/`: {:?}",
            request.path
        )));
    }
    // A path of plain bytes only (the common case) is valid as it is; anything else gets the
    // full parse, which copies the path (an allocation per call when done for every path).
    let plain = request.path.bytes().all(is_plain_byte);
    if !plain
        && (PathAndQuery::try_from(request.path.as_str()).is_err() || request.path.contains('#'))
    {
        return Err(Error::invalid(format!("invalid path {:?}", request.path)));
    }
    if request.method == Method::CONNECT {
        return Err(Error::invalid("method CONNECT is not supported"));
    }
    if let Some(tags) = &request.tags
        && tags.iter().any(|t| t.trim().is_empty())
    {
        return Err(Error::invalid("tags must not be empty strings"));
    }
    match request.headers.get(&DEADLINE) {
        None => Ok(None),
        Some(value) => propagate::parse_deadline(value).map(Some).ok_or_else(|| {
            Error::invalid(format!(
                "invalid {DEADLINE_HEADER} header value {value:?}: expected a whole number of \
                 milliseconds"
            ))
        }),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// What `validate` accepted before plain paths skipped the parse: the full rule.
    fn full_rule(path: &str) -> bool {
        path.starts_with('/') && PathAndQuery::try_from(path).is_ok() && !path.contains('#')
    }

    #[test]
    fn the_plain_path_shortcut_accepts_exactly_what_the_full_parse_accepts() {
        let mut checked = 0;
        for b in 0u8..=127 {
            let c = char::from(b);
            for path in [format!("/a{c}b"), format!("/a?q={c}"), format!("/{c}")] {
                let request = Request::new(Method::GET, path.clone());
                assert_eq!(
                    validate(&request).is_ok(),
                    full_rule(&path),
                    "path {path:?} (byte {b:#04x})"
                );
                checked += 1;
            }
        }
        for path in [
            "/caf\u{e9}",
            "/a b",
            "/a#frag",
            "/%2e%2E/x",
            "/a/../b",
            "relative",
        ] {
            let request = Request::new(Method::GET, path);
            assert_eq!(validate(&request).is_ok(), full_rule(path), "path {path:?}");
            checked += 1;
        }
        assert_eq!(checked, 128 * 3 + 6);
    }

    #[test]
    fn a_bad_path_names_the_path() {
        let err = validate(&Request::new(Method::GET, "/a b")).expect_err("space");
        assert!(err.to_string().contains("invalid path \"/a b\""), "{err}");
        let err = validate(&Request::new(Method::GET, "/a#b")).expect_err("fragment");
        assert!(err.to_string().contains("invalid path \"/a#b\""), "{err}");
    }
}
