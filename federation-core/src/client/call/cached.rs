//! The cached path of a call: a fresh hit answered at once, else single flight and stale serves.
//!
//! **Failure prevented.** Identical concurrent misses each going upstream (a thundering herd on
//! a cold key), a hit paying for routing, breakers and budgets, and one user's answer reaching
//! another: a cacheable request is looked up first ([`fresh_hit`] without awaiting anything),
//! identical misses share one pipeline run, and stale values are served per the cache policy.
//! The key includes the effective tag filter, so `tags(["model=v3"])` never gets an answer
//! cached for the default `model=v2`.

use std::sync::{Arc, Mutex};

use http::StatusCode;
use rand::rngs::SmallRng;
use tokio::time::Instant;

use super::admit::unknown_service;
use super::pipeline;
use crate::cache::{CacheStatus, CachedResponse, FetchOutcome, ResultCache};
use crate::client::request::Request;
use crate::client::response::{Content, Origin, Response, ServedBy};
use crate::client::state::{Inner, ServiceRoute};
use crate::error::Error;
use crate::telemetry::trace_context::TRACEPARENT;

/// The cheap path of an untraced call: a fresh cached value answered with no trace context, no
/// fetch closure, no single-flight registration, no key allocation and nothing awaited. `None`
/// when the service has no cache, the request is not cacheable, or no fresh value is at hand
/// (the full path then handles stale serves and misses). Skipped when the cache varies on
/// `traceparent`, which is only set later.
#[inline]
pub(super) fn fresh_hit(
    svc: &ServiceRoute,
    request: &Request,
    path: &str,
    query: Option<&str>,
    start: Instant,
) -> Option<Response> {
    let cache = svc.cache.as_ref()?;
    if cache.varies_on(&TRACEPARENT) {
        return None;
    }
    let tags = effective_tags(svc, request.tags.as_deref());
    let cached = cache.fresh_now(
        &request.method,
        path,
        query,
        &request.headers,
        &request.body,
        tags.as_deref(),
        start,
    )?;
    Some(cached_response(cached, CacheStatus::Hit, None, start))
}

/// A call of a service with a cache: the cache lookup with single flight and stale serves, or
/// the plain pipeline when the request is not cacheable.
pub(super) async fn cached(
    inner: &Arc<Inner>,
    svc: &ServiceRoute,
    cache: &ResultCache,
    request: Request,
    mut rng: SmallRng,
    start: Instant,
) -> Result<Response, Error> {
    let (path, query) = split_query(&request.path);
    let tags = effective_tags(svc, request.tags.as_deref());
    let Some(key) = cache.key_with_tags(
        &request.method,
        path,
        query,
        &request.headers,
        &request.body,
        tags.as_deref(),
    ) else {
        return pipeline::call(inner, svc, request, &mut rng, start).await;
    };
    // The caller whose fetch runs learns its own attempts through this slot; callers that joined
    // another caller's fetch, hits and stale serves report no attempts.
    let mine: Arc<Mutex<Option<ServedBy>>> = Arc::default();
    let slot = Arc::clone(&mine);
    let fetch_inner = Arc::clone(inner);
    let name = Arc::clone(&svc.name);
    let fetch = move || async move {
        let Some(svc) = fetch_inner.services.get(&name) else {
            return Err(unknown_service(&fetch_inner, &name));
        };
        // A fetch may run after its caller returned (a stale value's refresh): its deadline
        // counts from when it runs.
        let began = Instant::now();
        let response = match pipeline::call(&fetch_inner, svc, request, &mut rng, began).await {
            Ok(response) => response,
            Err(e) => {
                // Kept for a stale-if-error answer, which reports these failed attempts.
                let failed = ServedBy {
                    origin: Origin::Upstream {
                        cluster: Arc::from(""),
                        instance: Arc::from(""),
                    },
                    attempts: e.attempts().iter().cloned().collect(),
                    cache: CacheStatus::Miss,
                    elapsed: std::time::Duration::ZERO,
                    split: None,
                };
                *crate::lock::lock(&slot) = Some(failed);
                return Err(e);
            }
        };
        let status = response.status.as_u16();
        let (headers, body, served) = response.into_parts();
        let (cluster, instance) = match &served.origin {
            Origin::Upstream { cluster, instance } => (Arc::clone(cluster), Arc::clone(instance)),
            Origin::Cached(_) => (Arc::from(served.cluster()), Arc::from(served.instance())),
        };
        let outcome = FetchOutcome {
            status,
            headers,
            body,
            cluster: Some(cluster),
            instance: Some(instance),
        };
        *crate::lock::lock(&slot) = Some(served);
        Ok::<_, Error>(outcome)
    };
    match cache.get_or_fetch(key, fetch).await {
        Ok((cached, status)) => {
            let mine = crate::lock::lock(&mine).take();
            Ok(cached_response(cached, status, mine, start))
        }
        Err(shared) => Err(Arc::try_unwrap(shared).unwrap_or_else(|e| e.shared_copy())),
    }
}

/// A request path split into the logical path and the query (without the `?`).
pub(super) fn split_query(path: &str) -> (&str, Option<&str>) {
    // `?` is ASCII, so both sides are on character boundaries.
    match crate::cache::find_byte(path.as_bytes(), b'?') {
        Some(i) => (path.get(..i).unwrap_or(path), path.get(i + 1..)),
        None => (path, None),
    }
}

/// The call's tag filter for the cache key: `None` for the service's default filter (also when
/// the override names exactly the default tags), else the override sorted and deduplicated.
#[inline]
fn effective_tags(svc: &ServiceRoute, tags: Option<&[String]>) -> Option<Vec<String>> {
    override_tags(svc, tags?)
}

/// [`effective_tags`] for a call that names its tags.
fn override_tags(svc: &ServiceRoute, tags: &[String]) -> Option<Vec<String>> {
    let mut tags = tags.to_vec();
    tags.sort_unstable();
    tags.dedup();
    (tags != svc.tags).then_some(tags)
}

/// A `Response` for a value the cache handed out (the response keeps the entry: its names,
/// headers and body are read from it).
#[inline]
fn cached_response(
    cached: Arc<CachedResponse>,
    status: CacheStatus,
    mine: Option<ServedBy>,
    start: Instant,
) -> Response {
    let http_status = StatusCode::from_u16(cached.status).unwrap_or(StatusCode::BAD_GATEWAY);
    let (served, content) = match (status, mine) {
        (CacheStatus::Miss, Some(mut served)) => {
            served.cache = CacheStatus::Miss;
            served.elapsed = start.elapsed();
            (served, Content::Cached(cached))
        }
        (_, mine) => {
            let served = ServedBy {
                origin: Origin::Cached(cached),
                // A stale-if-error serve keeps the failed attempts of this caller's fetch.
                attempts: mine.map(|m| m.attempts).unwrap_or_default(),
                cache: status,
                elapsed: start.elapsed(),
                split: None,
            };
            (served, Content::Served)
        }
    };
    Response {
        status: http_status,
        content,
        served,
        // Named by the entry (`Content::Cached` or `Origin::Cached` holds it).
        service: None,
    }
}
