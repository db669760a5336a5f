//! The attempt loop of one call (see the module docs of [`crate::client`] for the algorithm).
//!
//! Hook points for the cache and telemetry modules are marked `HOOK(cache)` and
//! `HOOK(telemetry)`: a cache lookup goes before load protection and ranking, a store after a
//! successful exchange; metrics and spans wrap the call and each attempt.

use std::sync::Arc;
use std::time::Duration;

use http::uri::PathAndQuery;
use http::{HeaderMap, Method};
use rand::SeedableRng;
use rand::rngs::SmallRng;
use tokio::time::Instant;

use super::choose::choose;
use super::outcome::{Last, Step, Trail, finish, is_retryable_status, respond};
use super::propagate::{self, DEADLINE, TRACEPARENT};
use super::response::{Attempt, AttemptOutcome, Response};
use super::select::{self, RankPolicy};
use super::transport::{self, SendError};
use super::{Inner, Request, ServiceRoute};
use crate::error::{Error, Reason};
use crate::retry::parse_retry_after;
use crate::telemetry::spans;
use tracing::Instrument;

/// Runs one call of `service`.
pub(crate) async fn call(
    inner: &Inner,
    service: &str,
    request: Request,
) -> Result<Response, Error> {
    let Some(svc) = inner.services.get(service) else {
        let mut known: Vec<&str> = inner.services.keys().map(String::as_str).collect();
        known.sort_unstable();
        return Err(Error::invalid(format!(
            "unknown service `{service}`; configured: {}",
            known.join(", ")
        ))
        .with_service(service.to_owned()));
    };
    run(inner, svc, request)
        .await
        .map_err(|e| e.with_service(service.to_owned()))
}

fn validate(request: &Request) -> Result<(), Error> {
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
    Ok(())
}

async fn run(inner: &Inner, svc: &ServiceRoute, request: Request) -> Result<Response, Error> {
    let start = Instant::now();
    validate(&request)?;
    // HOOK(cache): look up here; a hit returns at once with CacheStatus::Hit and touches no
    // balancer, breaker or budget.
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
    if let Some(incoming) = request
        .headers
        .get(&DEADLINE)
        .and_then(propagate::parse_deadline)
    {
        total = total.min(incoming);
    }
    let deadline = start + total;
    let attempt_timeout = request.attempt_timeout.unwrap_or(policy.timeout.attempt);
    let idempotent = request.is_idempotent();
    let tags = request.tags.as_deref();
    let rank_policy = RankPolicy {
        routes: &svc.routes,
        preferred: svc.preferred,
        healthy_threshold: policy.failover.healthy_threshold,
        dwell: policy.failover.dwell,
        failback: &svc.failback,
        all_clusters: &inner.cluster_names,
    };
    let order = select::rank(&rank_policy, request.cluster.as_deref(), tags)?;
    svc.budget.deposit();
    let traceparent =
        propagate::traceparent(request.headers.get(&TRACEPARENT), || inner.random.next());
    let max_per_cluster = policy.retry.max_attempts.max(1);
    let mut per_cluster = vec![0u32; order.len()];
    let mut tried: Vec<(usize, Arc<str>)> = Vec::new();
    let mut trail = Trail {
        attempts: Vec::with_capacity(1),
        clusters: Vec::with_capacity(1),
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
        let Some((pos, index, permit, snapshot)) =
            choose(svc, &order, &per_cluster, max_per_cluster, &tried, tags)
        else {
            if n == 0 {
                return Err(trail.fail(Reason::CircuitOpen));
            }
            return finish(svc, trail, last, start, None);
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
                let mut rng = SmallRng::seed_from_u64(inner.random.next());
                svc.backoff
                    .delay(u32::try_from(n).unwrap_or(u32::MAX), &mut rng)
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
        let headers = outgoing_headers(&request.headers, &cluster.headers, remaining, &traceparent);
        let mut url = String::with_capacity(endpoint.base_url.len() + request.path.len());
        url.push_str(&endpoint.base_url);
        url.push_str(&request.path);
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
        let result = tokio::time::timeout(
            per_attempt,
            transport::exchange(
                &cluster.transport.http,
                request.method.clone(),
                &url,
                headers,
                request.body.clone(),
                limit,
            ),
        )
        .instrument(attempt_span.clone())
        .await;
        let took = started.elapsed();
        per_cluster[pos] += 1;
        tried.push((order[pos].route, Arc::clone(&endpoint.id)));
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
                } else {
                    Reason::AttemptTimeout(per_attempt)
                };
                (
                    AttemptOutcome::Timeout,
                    Step::retry_if(idempotent, Last::Error(reason)),
                )
            }
            Ok(Err(SendError::Connect(e))) => {
                permit.failure();
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
        inner
            .metrics
            .attempt(&svc.name, &attempt.cluster, outcome_label, took);
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
                // HOOK(cache): store the response here when cacheable.
                let cluster = Arc::clone(&route.cluster);
                let instance = Arc::clone(&endpoint.id);
                return Ok(respond(svc, exchange, cluster, instance, trail, start));
            }
            Step::Fail(reason) => return Err(trail.fail(reason)),
            Step::Final(last) => return finish(svc, trail, Some(last), start, None),
            Step::Retry(l) => last = Some(l),
        }
    }
}

/// The headers of one attempt: the caller's, the cluster's defaults where the caller set none
/// (so a caller's `Authorization` passes through), the remaining deadline and the trace context.
fn outgoing_headers(
    request: &HeaderMap,
    defaults: &HeaderMap,
    remaining: Duration,
    traceparent: &http::HeaderValue,
) -> HeaderMap {
    let mut headers = request.clone();
    for (name, value) in defaults {
        if !headers.contains_key(name) {
            headers.insert(name.clone(), value.clone());
        }
    }
    headers.insert(DEADLINE.clone(), propagate::deadline_value(remaining));
    headers.insert(TRACEPARENT.clone(), traceparent.clone());
    headers
}
