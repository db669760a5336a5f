//! The attempt loop of one call (see the module docs of [`crate::client`] for the algorithm).
//!
//! The cache and call-level telemetry wrap this loop (`observe.rs`); the loop records attempt
//! metrics and spans. Per call it allocates only what the response keeps (its attempt list)
//! plus the URL and header map of each attempt: the caller's headers are moved into the only
//! attempt when no retry is possible and cloned otherwise, and the bookkeeping of tried
//! instances allocates only when a retry happens.

use std::sync::Arc;
use std::time::Duration;

use http::header::HOST;
use http::uri::PathAndQuery;
use http::{HeaderMap, Method};
use rand::rngs::SmallRng;
use tokio::time::Instant;

use super::attempt_url::attempt_uri;
use super::choose::choose;
use super::late;
use super::outcome::{Last, Step, Trail, finish, is_retryable_status, respond};
use super::propagate::{self, DEADLINE, DEADLINE_HEADER};
use super::response::{Attempt, AttemptOutcome, Response};
use super::select::{self, RankPolicy};
use super::transport::{self, HttpError, SendError};
use super::{Inner, Request, ServiceRoute, startup};
use crate::error::{Error, Reason};
use crate::retry::parse_retry_after;
use crate::telemetry::spans;
use tracing::Instrument;

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

/// Runs one call of `svc`; `rng` is the call's random source (retry jitter).
pub(crate) async fn call(
    inner: &Inner,
    svc: &ServiceRoute,
    request: Request,
    rng: &mut SmallRng,
) -> Result<Response, Error> {
    run(inner, svc, request, rng)
        .await
        .map_err(|e| e.with_service(svc.name.to_string()))
}

/// Checks the request before anything is sent; returns the incoming deadline header's value.
fn validate(request: &Request) -> Result<Option<Duration>, Error> {
    if !request.path.starts_with('/') {
        return Err(Error::invalid(format!(
            "path must start with `/`: {:?}",
            request.path
        )));
    }
    if PathAndQuery::try_from(request.path.as_str()).is_err() || request.path.contains('#') {
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

async fn run(
    inner: &Inner,
    svc: &ServiceRoute,
    mut request: Request,
    rng: &mut SmallRng,
) -> Result<Response, Error> {
    let start = Instant::now();
    let incoming = validate(&request)?;
    let _bulkhead = match &svc.bulkhead {
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
    if start < inner.startup_until {
        let until = deadline.min(inner.startup_until);
        startup::await_first_answer(svc, request.cluster.as_deref(), until).await;
    }
    let attempt_timeout = request.attempt_timeout.unwrap_or(policy.timeout.attempt);
    inner.timer_anchor.touch();
    let idempotent = request.is_idempotent();
    let tags = request.tags.as_deref();
    let rank_policy = RankPolicy {
        routes: &svc.routes,
        preferred: svc.preferred,
        healthy_threshold: policy.failover.healthy_threshold,
        dwell: policy.failover.dwell,
        panic_threshold: policy.failover.panic_threshold,
        failback: &svc.failback,
        all_clusters: &inner.cluster_names,
    };
    let mut order = select::rank(&rank_policy, request.cluster.as_deref(), tags)?;
    // Clusters left out by ranking may join before a retry (`late.rs`), unless the call is
    // pinned to one cluster. The order never exceeds every route plus one probe entry.
    let widen = request.cluster.is_none();
    svc.budget.deposit();
    let max_per_cluster = policy.retry.max_attempts.max(1);
    let (mut small, mut large) = ([0u32; 4], Vec::new());
    let slots = svc.routes.len() + 1;
    let per_cluster: &mut [u32] = if slots <= small.len() {
        &mut small[..slots]
    } else {
        large.resize(slots, 0);
        &mut large
    };
    // Instances tried, for picking the next one; filled only when a retry follows.
    let mut tried: Vec<(usize, Arc<str>)> = Vec::new();
    let mut trail = Trail {
        attempts: Vec::with_capacity(1),
    };
    let mut last: Option<Last> = None;
    let mut last_pos = 0usize;
    let mut last_fast = false;
    let mut retry_after: Option<Duration> = None;

    loop {
        let n = trail.attempts.len();
        if n > 0 && max_per_cluster == 1 {
            return finish(svc, trail, last, start, None);
        }
        if n > 0 && widen {
            late::admit(svc, &mut order, tags);
        }
        let Some((pos, index, permit, snapshot)) =
            choose(svc, &order, per_cluster, max_per_cluster, &tried, tags)
        else {
            if n == 0 {
                return Err(trail.fail(Reason::CircuitOpen));
            }
            if widen && late::await_more(svc, &mut order, tags, deadline).await {
                continue;
            }
            let stop = (Instant::now() >= deadline).then_some(Reason::Deadline(total));
            let left_out = if widen {
                late::reasons(svc, &order, tags)
            } else {
                Vec::new()
            };
            return finish(svc, trail, last, start, stop).map_err(|e| e.not_failed_over(left_out));
        };
        let route = &svc.routes[order[pos].route];
        let endpoint = &snapshot.endpoints[index];
        if n > 0 {
            if !svc.budget.try_withdraw() {
                inner.metrics.budget_rejected(&svc.name); // issue 4 telemetry
                return finish(svc, trail, last, start, Some(Reason::BudgetExhausted));
            }
            let same_instance = tried
                .last()
                .is_some_and(|(r, id)| *r == order[pos].route && *id == endpoint.id);
            let delay = if pos != last_pos || (!same_instance && last_fast) {
                Duration::ZERO
            } else if let (true, Some(wait)) = (same_instance, retry_after) {
                wait
            } else {
                svc.backoff.delay(u32::try_from(n).unwrap_or(u32::MAX), rng)
            };
            if !delay.is_zero() {
                if Instant::now() + delay >= deadline {
                    drop(permit);
                    return finish(svc, trail, last, start, Some(Reason::Deadline(total)));
                }
                tokio::time::sleep(delay).await;
            }
        }
        let now = Instant::now();
        let remaining = deadline.saturating_duration_since(now);
        if remaining.is_zero() {
            drop(permit);
            return finish(svc, trail, last, start, Some(Reason::Deadline(total)));
        }
        let per_attempt = attempt_timeout.min(remaining);
        let cluster = &inner.clusters[route.cluster_index];
        // With one attempt at most the caller's headers move into it; otherwise each attempt
        // gets a copy (the HTTP client consumes the map).
        let caller_headers = if max_per_cluster == 1 {
            std::mem::take(&mut request.headers)
        } else {
            request.headers.clone()
        };
        let mut headers = outgoing_headers(caller_headers, &cluster.headers, remaining);
        if let Some(host) = endpoint.origin.as_ref().and_then(|o| o.http1_host()) {
            // A caller's own `Host` wins, as it does in the HTTP client.
            headers.entry(HOST).or_insert_with(|| host.clone());
        }
        let uri = attempt_uri(
            endpoint.origin.as_ref(),
            &endpoint.base_url,
            &route.path_prefix,
            &request.path,
        );
        let limit = policy.limits.max_response_bytes;

        // Issue 4 telemetry: retries, failovers and the attempt span.
        if n > 0 {
            inner.metrics.retry(&svc.name);
            if pos != last_pos {
                let from = &svc.routes[order[last_pos].route].cluster;
                inner.metrics.failover(&svc.name, from, &route.cluster);
            }
        }
        let attempt_span = spans::attempt_span(
            &svc.name,
            &route.cluster,
            &endpoint.id,
            u32::try_from(n + 1).unwrap_or(u32::MAX),
        );
        let in_flight = endpoint.state.stats.start();
        let started = Instant::now();
        let result = match uri {
            // Boxed: the exchange is most of this future's size, and a box is cheaper than
            // moving it through the timeout and span wrappers into this state machine on every
            // attempt.
            Ok(uri) => {
                Box::pin(
                    tokio::time::timeout(
                        per_attempt,
                        transport::exchange(
                            &cluster.transport,
                            endpoint.connections.as_ref(),
                            request.method.clone(),
                            uri,
                            headers,
                            request.body.clone(),
                            limit,
                        ),
                    )
                    .instrument(attempt_span.clone()),
                )
                .await
            }
            // An address no URL can carry: nothing was sent, so it fails like a refused
            // connection (retried elsewhere, and the breaker ejects the instance).
            Err(message) => Ok(Err(SendError::Connect(HttpError::from(message)))),
        };
        let took = started.elapsed();
        per_cluster[pos] += 1;
        last_pos = pos;
        retry_after = None;

        let mut attempt = Attempt {
            cluster: Arc::clone(&route.cluster),
            instance: Arc::clone(&endpoint.id),
            outcome: AttemptOutcome::Success,
            duration: took,
            status: None,
        };
        let stats = in_flight.stats();
        let (outcome, next) = match result {
            Err(_elapsed) => {
                permit.failure();
                stats.observe(took, false);
                let reason = if per_attempt < attempt_timeout {
                    Reason::Deadline(total)
                } else if idempotent {
                    Reason::AttemptTimeout(per_attempt)
                } else {
                    Reason::AttemptTimeoutNotRetried(per_attempt)
                };
                (
                    AttemptOutcome::Timeout,
                    Step::retry_if(idempotent, Last::Error(reason)),
                )
            }
            Ok(Err(SendError::Connect(e))) => {
                // Known unreachable: no panic routing to it (`breaker/panic.rs`), and the
                // background connect ends its ejection as soon as it accepts connections.
                permit.failure_with(crate::breaker::EjectionCause::Unreachable);
                // No latency sample: a refused connection says nothing about speed, and the
                // penalty would starve the instance before its breaker ejects (and later probes) it.
                (
                    AttemptOutcome::ConnectFailed,
                    Step::Retry(Last::Error(Reason::Connect(e))),
                )
            }
            Ok(Err(SendError::Lost(e))) => {
                permit.failure();
                // As for a refused connection: the breaker, not the latency average, handles it.
                if idempotent {
                    (
                        AttemptOutcome::ConnectionLost,
                        Step::Retry(Last::Error(Reason::Transport(e))),
                    )
                } else {
                    (
                        AttemptOutcome::ConnectionLost,
                        Step::Fail(Reason::NotRetriedUnsafe(e)),
                    )
                }
            }
            Ok(Err(SendError::TooLarge)) => {
                permit.success();
                stats.observe(took, true);
                (
                    AttemptOutcome::BodyTooLarge,
                    Step::Fail(Reason::BodyTooLarge(limit)),
                )
            }
            Ok(Ok(exchange)) => {
                let status = exchange.status;
                attempt.status = Some(status);
                let server_error = status.is_server_error();
                if server_error {
                    permit.failure();
                } else {
                    permit.success();
                }
                stats.observe(took, !server_error);
                if is_retryable_status(status) {
                    retry_after = exchange
                        .headers
                        .get(http::header::RETRY_AFTER)
                        .and_then(|v| v.to_str().ok())
                        .and_then(|v| parse_retry_after(v, std::time::SystemTime::now()));
                    let fits = retry_after.is_none_or(|wait| Instant::now() + wait < deadline);
                    let last = Last::Status(
                        exchange,
                        Arc::clone(&route.cluster),
                        Arc::clone(&endpoint.id),
                    );
                    (
                        AttemptOutcome::RetryableStatus,
                        Step::retry_if(idempotent && fits, last),
                    )
                } else {
                    (AttemptOutcome::Success, Step::Done(exchange))
                }
            }
        };
        drop(in_flight);
        attempt.outcome = outcome;
        // Issue 4 telemetry: attempt metrics and span fields.
        let outcome_label = attempt.outcome.as_str();
        if matches!(outcome, AttemptOutcome::Success) {
            route.record_attempt_success(took);
        } else {
            inner
                .metrics
                .attempt(&svc.name, &attempt.cluster, outcome_label, took);
        }
        let error_kind = (!matches!(outcome, AttemptOutcome::Success)).then_some(outcome_label);
        spans::record_attempt(
            &attempt_span,
            attempt.status.map(|s| s.as_u16()),
            took,
            error_kind,
        );
        tracing::debug!(
            service = %svc.name,
            cluster = %attempt.cluster,
            instance = %attempt.instance,
            outcome = attempt.outcome.as_str(),
            duration_ms = took.as_millis() as u64,
            "attempt finished"
        );
        last_fast = matches!(outcome, AttemptOutcome::ConnectFailed)
            || (matches!(outcome, AttemptOutcome::RetryableStatus)
                && took < policy.retry.backoff.base);
        trail.push(attempt);
        match next {
            Step::Done(exchange) => {
                let cluster = Arc::clone(&route.cluster);
                let instance = Arc::clone(&endpoint.id);
                return Ok(respond(svc, exchange, cluster, instance, trail, start));
            }
            Step::Fail(reason) => return Err(trail.fail(reason)),
            Step::Final(last) => return finish(svc, trail, Some(last), start, None),
            Step::Retry(l) => {
                tried.push((order[pos].route, Arc::clone(&endpoint.id)));
                last = Some(l);
            }
        }
    }
}

/// The headers of one attempt: the caller's (with the call's `traceparent`, set once per call
/// by `observe.rs`), the cluster's defaults where the caller set none (so a caller's
/// `Authorization` passes through), and the remaining deadline.
fn outgoing_headers(
    mut headers: HeaderMap,
    defaults: &HeaderMap,
    remaining: Duration,
) -> HeaderMap {
    for (name, value) in defaults {
        if !headers.contains_key(name) {
            headers.insert(name.clone(), value.clone());
        }
    }
    headers.insert(DEADLINE.clone(), propagate::deadline_value(remaining));
    headers
}
