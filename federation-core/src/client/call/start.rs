//! The start of every call: the cache and call-level telemetry around the pipeline.
//!
//! **Failure prevented.** A call's metrics, span and cache handling done in several places
//! (each entry point repeating them, or the pipeline knowing about the cache) drift apart; a
//! fresh cache hit paying for futures, boxes and routing. So every call enters through [`run`],
//! and the pipeline stays unaware of the cache. Order per call:
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
//! trace ids here ([`propagate::trace_call`] makes the outgoing `traceparent` once per call) and
//! the retry jitter in the pipeline. The cache key includes the effective tag filter, so
//! `tags(["model=v3"])` never gets an answer cached for the default `model=v2`.

use std::sync::Arc;

use futures_util::future::BoxFuture;
use rand::SeedableRng;
use rand::rngs::SmallRng;
use tokio::time::Instant;
use tracing::Instrument;

use super::admit::unknown_service;
use super::cached::{cached, fresh_hit, split_query};
use super::{pipeline, propagate};
use crate::cache::CacheStatus;
use crate::client::request::Request;
use crate::client::response::Response;
use crate::client::state::{Inner, ServiceRoute};
use crate::error::Error;
use crate::telemetry::trace_context::TRACEPARENT;
use crate::telemetry::{NO_CLUSTER, spans};

/// Runs one call of `service` by name (see [`run`]).
pub(crate) async fn call(
    inner: &Arc<Inner>,
    service: &str,
    mut request: Request,
) -> Result<Response, Error> {
    let Some(svc) = inner.services.get(service) else {
        return Err(unknown_service(inner, service));
    };
    run(inner, svc, &mut request).await
}

/// Runs one call of `svc` with caching and telemetry: the one entry of every call (by name,
/// or from a request builder that resolved its service already). See [`begin`].
pub(crate) async fn run(
    inner: &Arc<Inner>,
    svc: &ServiceRoute,
    request: &mut Request,
) -> Result<Response, Error> {
    // Unpacked before the await, so this future never holds the started call.
    let full = match begin(inner, svc, request) {
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
enum Begun<'a> {
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
fn begin<'a>(inner: &'a Arc<Inner>, svc: &'a ServiceRoute, request: &mut Request) -> Begun<'a> {
    let service: &'a str = &svc.name;
    let start = Instant::now();
    let seeded = || SmallRng::seed_from_u64(inner.random.next_u64());
    // Continue the caller's trace, or start one here so the span and upstream share its id.
    // When no subscriber records the span, that waits until the call goes upstream (a fresh
    // hit never draws from the client's random source).
    let mut traced = None;
    let (path, query) = split_query(&request.path);
    #[cfg(feature = "opentelemetry")]
    let incoming = crate::telemetry::otel::incoming(&request.headers);
    let span = spans::call_span_with(service, &request.method, path, || {
        let mut rng = seeded();
        let (trace, outgoing) = propagate::trace_call(&request.headers, &mut rng);
        traced = Some((rng, outgoing));
        trace.trace_id_display()
    });
    #[cfg(feature = "opentelemetry")]
    crate::telemetry::otel::begin_call(&span, incoming);
    let (mut rng, outgoing) = match traced {
        Some(traced) => traced,
        None => {
            if let Some(response) = fresh_hit(svc, request, path, query, start) {
                record_cached_success(inner, svc, response.served.elapsed);
                return Begun::Done(Ok(response));
            }
            let mut rng = seeded();
            let (_, outgoing) = propagate::trace_call(&request.headers, &mut rng);
            (rng, outgoing)
        }
    };
    if svc.cache.is_some() {
        // A cache may vary on `traceparent`: its key sees the value this call sends.
        request.headers.insert(TRACEPARENT, outgoing.clone());
    }
    request.traceparent = Some(outgoing);
    let request = std::mem::replace(request, Request::new(http::Method::GET, String::new()));
    // Each block awaits its inner future in place (passing a future into another async fn
    // would store it twice).
    Begun::Running(match &svc.cache {
        // Nobody records the span: no `Instrumented` layer to enter, exit and copy the
        // pipeline's future through.
        None if span.is_disabled() => Box::pin(async move {
            let result = pipeline::call(inner, svc, request, &mut rng, start).await;
            record_end(inner, svc, service, &span, start, result)
        }),
        None => Box::pin(async move {
            let result = pipeline::call(inner, svc, request, &mut rng, start)
                .instrument(span.clone())
                .await;
            record_end(inner, svc, service, &span, start, result)
        }),
        Some(cache) => Box::pin(async move {
            let result = cached(inner, svc, cache, request, rng, start)
                .instrument(span.clone())
                .await;
            record_end(inner, svc, service, &span, start, result)
        }),
    })
}

/// The end of a call that did not end synchronously: its metrics and span fields.
fn record_end(
    inner: &Inner,
    svc: &ServiceRoute,
    service: &str,
    span: &tracing::Span,
    start: Instant,
    result: Result<Response, Error>,
) -> Result<Response, Error> {
    // An upstream answer carries the call's time from the end of its last attempt (the same
    // start): no clock reading of its own. A cache's answers are timed where they are served.
    let elapsed = match &result {
        Ok(r) if svc.cache.is_none() => r.served.elapsed,
        _ => start.elapsed(),
    };
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
    spans::record_call(span, cluster, outcome, cache.as_str(), attempts);
    result
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
