//! One attempt of a call: headers, URI, send, classify, record.
//!
//! **Failure prevented.** An attempt whose outcome is judged in one place and recorded in
//! another ends up counted differently by the breaker, the load statistics, the metrics and the
//! response's attempt list. Here one function does the whole attempt and every record of it:
//! the breaker permit and the instance's latency sample, the attempt metrics, span and log line,
//! and the [`Attempt`] entry of the call's trail.
//!
//! Classification: a connect failure never reached the server (retried anywhere); a lost
//! connection or a timeout may have (retried only when the request is idempotent); 502, 503, 504
//! and 429 are retryable statuses (the last one becomes the response if no retry follows, and
//! its `Retry-After` is honoured when it fits the deadline); a body over the limit and every
//! other status end the call.

use std::sync::Arc;
use std::time::Duration;

use http::header::HOST;
use http::{HeaderMap, HeaderValue};
use tokio::time::Instant;
use tracing::Instrument;

use super::outcome::{Last, Step, is_retryable_status};
use super::propagate::{self, DEADLINE};
use crate::attempt::{Attempt, AttemptOutcome};
use crate::balance::InstanceStats;
use crate::breaker::BreakerPermit;
use crate::client::request::Request;
use crate::client::routing::{ClusterRoute, Endpoint};
use crate::client::state::{Inner, ServiceRoute};
use crate::error::{HttpError, Reason};
use crate::retry::parse_retry_after;
use crate::telemetry::spans;
use crate::telemetry::trace_context::TRACEPARENT;
use crate::transport::attempt_url::attempt_uri;
use crate::transport::{self, Exchange, SendError};

/// What stays fixed across the attempts of one call.
pub(super) struct Call<'a> {
    pub(super) inner: &'a Inner,
    pub(super) svc: &'a ServiceRoute,
    pub(super) start: Instant,
    /// When admission ended (`admit.rs`): the clock reading of the first pick and attempt.
    pub(super) ready: Instant,
    /// The call's whole time budget (for the deadline error) and its end.
    pub(super) total: Duration,
    pub(super) deadline: Instant,
    pub(super) attempt_timeout: Duration,
    pub(super) idempotent: bool,
    /// `retry.max_attempts`, at least 1.
    pub(super) max_per_cluster: u32,
}

/// Where one attempt goes.
pub(super) struct Target<'a> {
    pub(super) route: &'a ClusterRoute,
    pub(super) endpoint: &'a Endpoint,
    /// The attempt's number in the call, from 1.
    pub(super) number: usize,
    /// Sent as a hedge.
    pub(super) hedge: bool,
}

/// How an attempt ended, for the loop's next decision.
pub(super) struct Attempted {
    pub(super) step: Step,
    /// The `Retry-After` of a retryable status.
    pub(super) retry_after: Option<Duration>,
    /// It failed fast (refused connection, quick retryable status): moving to another
    /// instance needs no backoff.
    pub(super) fast: bool,
    /// The attempt's record, for the call's trail.
    pub(super) record: Attempt,
    /// When it ended: the one clock reading its records (breaker, latency sample, duration)
    /// share, and the end of the call when it answers it.
    pub(super) ended: Instant,
}

/// The result of sending: the exchange, or the per-attempt timeout.
type Sent = Result<Result<Exchange, SendError>, tokio::time::error::Elapsed>;

impl Call<'_> {
    /// Runs one attempt to `target` with `permit`, starting at `started` (the caller's clock
    /// reading), `remaining` before the call's deadline and the caller's `headers`
    /// ([`Call::caller_headers`]); its record is in the result.
    pub(super) async fn attempt(
        &self,
        target: Target<'_>,
        permit: BreakerPermit,
        (started, remaining): (Instant, Duration),
        request: &Request,
        headers: HeaderMap,
    ) -> Attempted {
        let per_attempt = self.attempt_timeout.min(remaining);
        let Target {
            route, endpoint, ..
        } = target;
        let span = spans::attempt_span(
            &self.svc.name,
            &route.cluster,
            &endpoint.id,
            u32::try_from(target.number).unwrap_or(u32::MAX),
        );
        let in_flight = endpoint.state.stats.start();
        let send = self.send(
            route,
            endpoint,
            request,
            headers,
            remaining,
            (started, started + per_attempt),
        );
        // Nobody records the span: no `Instrumented` layer around the exchange.
        let sent = if span.is_disabled() {
            send.await
        } else {
            send.instrument(span.clone()).await
        };
        // The attempt's one clock reading at its end: taken when the body was read (shared
        // with the connection's give-back), or now when the exchange failed or timed out.
        let ended = match &sent {
            Ok(Ok(exchange)) => exchange.ended,
            _ => Instant::now(),
        };
        let took = ended.saturating_duration_since(started);
        let mut attempt = Attempt {
            cluster: Arc::clone(&route.cluster),
            instance: Arc::clone(&endpoint.id),
            outcome: AttemptOutcome::Success,
            duration: took,
            status: None,
            offset: started.saturating_duration_since(self.start),
            hedge: target.hedge,
        };
        let (outcome, step, retry_after) = self.classify(
            sent,
            (permit, ended),
            in_flight.stats(),
            &mut attempt,
            per_attempt,
        );
        drop(in_flight);
        attempt.outcome = outcome;
        self.record(route, &attempt, &span);
        let fast = matches!(outcome, AttemptOutcome::ConnectFailed)
            || (matches!(outcome, AttemptOutcome::RetryableStatus)
                && took < self.svc.policy.retry.backoff.base);
        Attempted {
            step,
            retry_after,
            fast,
            record: attempt,
            ended,
        }
    }

    /// The caller's headers for the next attempt: moved out of `request` when no other attempt
    /// can follow (no retries, no hedges), otherwise a copy (the HTTP client consumes the map;
    /// the copy of a caller's empty map allocates nothing, as the call's `traceparent` is not
    /// in it).
    pub(super) fn caller_headers(&self, request: &mut Request) -> HeaderMap {
        if self.max_per_cluster == 1 && self.svc.hedge.is_none() {
            std::mem::take(&mut request.headers)
        } else {
            request.headers.clone()
        }
    }

    /// Sends the request to `endpoint`, starting at `started` and giving up at `give_up` (the
    /// attempt's timeout).
    async fn send(
        &self,
        route: &ClusterRoute,
        endpoint: &Endpoint,
        request: &Request,
        caller_headers: HeaderMap,
        remaining: Duration,
        (started, give_up): (Instant, Instant),
    ) -> Sent {
        let cluster = &self.inner.clusters[route.cluster_index];
        let mut headers = outgoing_headers(
            caller_headers,
            request.traceparent.as_ref(),
            &cluster.headers,
            remaining,
        );
        #[cfg(feature = "opentelemetry")]
        crate::telemetry::otel::attempt_headers(&mut headers);
        let destination = route.destination(endpoint);
        if let Some(host) = destination.origin.as_ref().and_then(|o| o.http1_host()) {
            // A caller's own `Host` wins, as it does in the HTTP client.
            headers.entry(HOST).or_insert_with(|| host.clone());
        }
        let uri = attempt_uri(
            destination.origin.as_ref(),
            &destination.base_url,
            &route.path_prefix,
            &request.path,
        );
        match uri {
            // The exchange boxed inside the timeout (it is most of this future's size): it is
            // built straight into its box instead of being moved into a `Timeout` first and
            // the two into a box (callgrind, c = 64: −0.25k instructions per call, floor4).
            Ok(uri) => {
                // `timeout_at` from the attempt's start: no second clock read for the timer.
                tokio::time::timeout_at(
                    give_up,
                    Box::pin(transport::exchange(
                        &cluster.transport,
                        destination.connections.as_ref().map(|pool| (pool, started)),
                        request.method.clone(),
                        uri,
                        headers,
                        request.body.clone(),
                        self.svc.policy.limits.max_response_bytes,
                    )),
                )
                .await
            }
            // An address no URL can carry: nothing was sent, so it fails like a refused
            // connection (retried elsewhere, and the breaker ejects the instance).
            Err(message) => Ok(Err(SendError::Connect(HttpError::from(message)))),
        }
    }

    /// Judges what was sent: settles the breaker permit, feeds the latency statistics, and
    /// says what the loop does next.
    fn classify(
        &self,
        sent: Sent,
        (permit, ended): (BreakerPermit, Instant),
        stats: &InstanceStats,
        attempt: &mut Attempt,
        per_attempt: Duration,
    ) -> (AttemptOutcome, Step, Option<Duration>) {
        let took = attempt.duration;
        let idempotent = self.idempotent;
        match sent {
            Err(_elapsed) => {
                permit.failure_at(ended);
                stats.observe_at(took, false, ended);
                let reason = if per_attempt < self.attempt_timeout {
                    Reason::Deadline(self.total)
                } else if idempotent {
                    Reason::AttemptTimeout(per_attempt)
                } else {
                    Reason::AttemptTimeoutNotRetried(per_attempt)
                };
                let step = Step::retry_if(idempotent, Last::Error(reason));
                (AttemptOutcome::Timeout, step, None)
            }
            Ok(Err(SendError::Connect(e))) => {
                // Known unreachable: no panic routing to it (`breaker/panic.rs`), and the
                // background connect ends its ejection as soon as it accepts connections.
                permit.failure_with_at(crate::breaker::EjectionCause::Unreachable, ended);
                // No latency sample: a refused connection says nothing about speed, and the
                // penalty would starve the instance before its breaker ejects (and later probes) it.
                let step = Step::Retry(Last::Error(Reason::Connect(e)));
                (AttemptOutcome::ConnectFailed, step, None)
            }
            Ok(Err(SendError::Lost(e))) => {
                permit.failure_at(ended);
                // As for a refused connection: the breaker, not the latency average, handles it.
                let step = if idempotent {
                    Step::Retry(Last::Error(Reason::Transport(e)))
                } else {
                    Step::Fail(Reason::NotRetriedUnsafe(e))
                };
                (AttemptOutcome::ConnectionLost, step, None)
            }
            Ok(Err(SendError::TooLarge)) => {
                permit.success_at(ended);
                stats.observe_at(took, true, ended);
                let limit = self.svc.policy.limits.max_response_bytes;
                (
                    AttemptOutcome::BodyTooLarge,
                    Step::Fail(Reason::BodyTooLarge(limit)),
                    None,
                )
            }
            Ok(Ok(exchange)) => self.classify_status(exchange, (permit, ended), stats, attempt),
        }
    }

    /// Judges a response by its status.
    fn classify_status(
        &self,
        exchange: Exchange,
        (permit, ended): (BreakerPermit, Instant),
        stats: &InstanceStats,
        attempt: &mut Attempt,
    ) -> (AttemptOutcome, Step, Option<Duration>) {
        let status = exchange.status;
        attempt.status = Some(status);
        let server_error = status.is_server_error();
        if server_error {
            permit.failure_at(ended);
        } else {
            permit.success_at(ended);
        }
        stats.observe_at(attempt.duration, !server_error, ended);
        if !is_retryable_status(status) {
            return (AttemptOutcome::Success, Step::Done(exchange), None);
        }
        let retry_after = exchange
            .headers
            .get(http::header::RETRY_AFTER)
            .and_then(|v| v.to_str().ok())
            .and_then(|v| parse_retry_after(v, std::time::SystemTime::now()));
        let fits = retry_after.is_none_or(|wait| ended + wait < self.deadline);
        let last = Last::Status(
            exchange,
            Arc::clone(&attempt.cluster),
            Arc::clone(&attempt.instance),
        );
        let step = Step::retry_if(self.idempotent && fits, last);
        (AttemptOutcome::RetryableStatus, step, retry_after)
    }

    /// The attempt's metrics, span fields and log line.
    fn record(&self, route: &ClusterRoute, attempt: &Attempt, span: &tracing::Span) {
        let outcome = attempt.outcome;
        let label = outcome.as_str();
        if matches!(outcome, AttemptOutcome::Success) {
            route.record_attempt_success(attempt.duration);
        } else {
            self.inner
                .metrics
                .attempt(&self.svc.name, &attempt.cluster, label, attempt.duration);
        }
        let error_kind = (!matches!(outcome, AttemptOutcome::Success)).then_some(label);
        spans::record_attempt(
            span,
            attempt.status.map(|s| s.as_u16()),
            attempt.duration,
            error_kind,
        );
        tracing::debug!(
            service = %self.svc.name,
            cluster = %attempt.cluster,
            instance = %attempt.instance,
            outcome = label,
            duration_ms = attempt.duration.as_millis() as u64,
            "attempt finished"
        );
    }
}

/// The headers of one attempt: the caller's, the call's `traceparent` (made once per call by
/// `start.rs`), the cluster's defaults where the caller set none (so a caller's
/// `Authorization` passes through), and the remaining deadline.
fn outgoing_headers(
    mut headers: HeaderMap,
    traceparent: Option<&HeaderValue>,
    defaults: &HeaderMap,
    remaining: Duration,
) -> HeaderMap {
    if let Some(value) = traceparent {
        headers.insert(TRACEPARENT, value.clone());
    }
    for (name, value) in defaults {
        if !headers.contains_key(name) {
            headers.insert(name.clone(), value.clone());
        }
    }
    headers.insert(DEADLINE.clone(), propagate::deadline_value(remaining));
    headers
}
