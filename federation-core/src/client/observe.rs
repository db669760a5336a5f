//! The call wrapper of issue 4: result cache and call-level telemetry around the pipeline.
//!
//! Owned by the cache/telemetry work; the pipeline stays unaware of the cache. Order per call:
//! a `federation.call` span opens; a cacheable request is looked up in the service's
//! [`ResultCache`](crate::cache::ResultCache) *before* load protection and routing (so a hit
//! touches no balancer, breaker or budget), identical concurrent misses share one pipeline run,
//! and stale values are served per the cache policy; then `federation_requests_total` and the
//! duration histogram are recorded and the span gets cluster, outcome, cache status and attempts.
//! Calls to unknown services are not recorded (their names are unbounded caller input).
//!
//! A fresh hit of a call nobody traces is answered synchronously ([`begin`]): the key is built
//! on the stack, moka's lookup is polled once, and nothing is boxed, awaited or drawn from the
//! RNG; everything else runs in one boxed future, so the futures awaiting a call stay small.
//!
//! Each other call draws from one small RNG seeded from the client's lock-free source: the
//! trace ids here ([`propagate::trace_call`] sets the outgoing `traceparent` once per call) and
//! the retry jitter in the pipeline. The cache key includes the effective tag filter, so
//! `tags(["model=v3"])` never gets an answer cached for the default `model=v2`.

use std::sync::{Arc, Mutex, PoisonError};

use futures_util::future::BoxFuture;
use http::StatusCode;
use rand::SeedableRng;
use rand::rngs::SmallRng;
use tokio::time::Instant;
use tracing::Instrument;

use super::response::{Content, Origin, Response, ServedBy};
use super::{Inner, Request, ServiceRoute};
use super::{pipeline, propagate};
use crate::cache::{CacheStatus, CachedResponse, FetchOutcome, ResultCache};
use crate::error::Error;
use crate::telemetry::trace_context::TRACEPARENT;
use crate::telemetry::{NO_CLUSTER, spans};

/// Runs one call of `service` with caching and telemetry (see [`begin`]).
pub(crate) async fn call(
    inner: &Arc<Inner>,
    service: &str,
    request: Request,
) -> Result<Response, Error> {
    let mut request = request;
    let Some(svc) = inner.services.get(service) else {
        return Err(pipeline::unknown_service(inner, service));
    };
    // Unpacked before the await, so this future never holds the started call.
    let full = match begin(inner, svc, &mut request) {
        Begun::Done(result) => return result,
        Begun::Running(full) => full,
    };
    full.await
}

/// A call after its synchronous start.
#[allow(
    clippy::large_enum_variant,
    reason = "unpacked at once, never held across an await; boxing a hit would allocate"
)]
pub(crate) enum Begun<'a> {
    /// Answered without waiting: a fresh cache hit.
    Done(Result<Response, Error>),
    /// Everything that may wait: the cache with single flight and stale serves, or the pipeline.
    Running(BoxFuture<'a, Result<Response, Error>>),
}

/// Starts one call of the service `svc`: a fresh cache hit is answered synchronously, with nothing
/// awaited or boxed; anything else becomes one boxed future sized for the service (a service
/// without a cache never carries the cache machinery's state). So the futures awaiting a call
/// stay small and cheap to move.
///
/// `request` is taken by reference so a hit never moves it (it is large); a call that goes on
/// takes it out, leaving an empty request behind.
pub(crate) fn begin<'a>(
    inner: &'a Arc<Inner>,
    svc: &'a ServiceRoute,
    request: &mut Request,
) -> Begun<'a> {
    let service: &'a str = &svc.name;
    let start = Instant::now();
    let seeded = || SmallRng::seed_from_u64(inner.random.next());
    // Continue the caller's trace, or start one here so the span and upstream share its id.
    // When no subscriber records the span, that waits until the call goes upstream (a fresh
    // hit never draws from the client's random source).
    let mut traced = None;
    let (path, query) = split_query(&request.path);
    let span = spans::call_span_with(service, &request.method, path, || {
        let mut rng = seeded();
        let id = propagate::trace_call(&mut request.headers, &mut rng).trace_id_display();
        traced = Some(rng);
        id
    });
    let mut rng = match traced {
        Some(rng) => rng,
        None => {
            if let Some(response) = fresh_hit(svc, request, path, query, start) {
                record_cached_success(inner, svc, response.served.elapsed);
                return Begun::Done(Ok(response));
            }
            let mut rng = seeded();
            propagate::trace_call(&mut request.headers, &mut rng);
            rng
        }
    };
    let request = std::mem::replace(request, Request::new(http::Method::GET, String::new()));
    // Each block awaits its inner future in place (passing a future into another async fn
    // would store it twice).
    Begun::Running(match &svc.cache {
        None => Box::pin(async move {
            let result = pipeline::call(inner, svc, request, &mut rng)
                .instrument(span.clone())
                .await;
            finish(inner, svc, service, &span, start, result)
        }),
        Some(cache) => Box::pin(async move {
            let result = cached(inner, svc, cache, request, rng, start)
                .instrument(span.clone())
                .await;
            finish(inner, svc, service, &span, start, result)
        }),
    })
}

/// The end of the full path: the call's metrics and span fields.
fn finish(
    inner: &Inner,
    svc: &ServiceRoute,
    service: &str,
    span: &tracing::Span,
    start: Instant,
    result: Result<Response, Error>,
) -> Result<Response, Error> {
    let elapsed = start.elapsed();
    let (cluster, outcome, cache, attempts) = match &result {
        Ok(r) => {
            let served = r.served();
            let from_cache = matches!(served.cache(), CacheStatus::Hit | CacheStatus::Stale);
            let cluster = (!from_cache).then(|| served.cluster());
            (cluster, "success", served.cache(), served.attempts().len())
        }
        Err(e) => (
            None,
            e.kind().as_str(),
            CacheStatus::Miss,
            e.attempts().len(),
        ),
    };
    let cluster = cluster.filter(|c| !c.is_empty());
    // The common cases (success from a cluster or from the cache) use pre-resolved handles.
    match cluster.and_then(|c| svc.routes.iter().find(|r| &*r.cluster == c)) {
        Some(route) if outcome == "success" => route.record_call_success(elapsed),
        None if cluster.is_none() && outcome == "success" => {
            record_cached_success(inner, svc, elapsed);
        }
        _ => inner.metrics.call(service, cluster, outcome, elapsed),
    }
    let attempts = u32::try_from(attempts).unwrap_or(u32::MAX);
    spans::record_call(span, cluster, outcome, cache, attempts);
    result
}

/// The cheap path of an untraced call: a fresh cached value answered with no trace context, no
/// fetch closure, no single-flight registration, no key allocation and nothing awaited. `None`
/// when the service has no cache, the request is not cacheable, or no fresh value is at hand
/// (the full path then handles stale serves and misses). Skipped when the cache varies on
/// `traceparent`, which is only set later.
#[inline]
fn fresh_hit(
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
    Some(respond(cached, CacheStatus::Hit, None, start))
}

/// Records a successful call answered from the cache (`cluster="none"`) through the service's
/// handles, resolved on first use.
fn record_cached_success(inner: &Inner, svc: &ServiceRoute, elapsed: std::time::Duration) {
    svc.cached_success
        .get_or_init(|| {
            inner
                .metrics
                .call_handles(&svc.name, NO_CLUSTER, "success", false)
        })
        .record(elapsed);
}

/// A call of a service with a cache: the cache lookup with single flight and stale serves, or
/// the plain pipeline when the request is not cacheable.
async fn cached(
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
        return pipeline::call(inner, svc, request, &mut rng).await;
    };
    // The caller whose fetch runs learns its own attempts through this slot; callers that joined
    // another caller's fetch, hits and stale serves report no attempts.
    let mine: Arc<Mutex<Option<ServedBy>>> = Arc::default();
    let slot = Arc::clone(&mine);
    let fetch_inner = Arc::clone(inner);
    let name = Arc::clone(&svc.name);
    let fetch = move || async move {
        let Some(svc) = fetch_inner.services.get(&name) else {
            return Err(pipeline::unknown_service(&fetch_inner, &name));
        };
        let response = match pipeline::call(&fetch_inner, svc, request, &mut rng).await {
            Ok(response) => response,
            Err(e) => {
                // Kept for a stale-if-error answer, which reports these failed attempts.
                let failed = ServedBy {
                    origin: Origin::Upstream {
                        cluster: Arc::from(""),
                        instance: Arc::from(""),
                    },
                    attempts: e.attempts().to_vec(),
                    cache: CacheStatus::Miss,
                    elapsed: std::time::Duration::ZERO,
                };
                *slot.lock().unwrap_or_else(PoisonError::into_inner) = Some(failed);
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
        *slot.lock().unwrap_or_else(PoisonError::into_inner) = Some(served);
        Ok::<_, Error>(outcome)
    };
    match cache.get_or_fetch(key, fetch).await {
        Ok((cached, status)) => {
            let mine = mine.lock().unwrap_or_else(PoisonError::into_inner).take();
            Ok(respond(cached, status, mine, start))
        }
        Err(shared) => Err(Arc::try_unwrap(shared).unwrap_or_else(|e| e.shared_copy())),
    }
}

/// A request path split into the logical path and the query (without the `?`).
fn split_query(path: &str) -> (&str, Option<&str>) {
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
fn respond(
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
