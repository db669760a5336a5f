//! How attempts end and how a call ends: the loop's bookkeeping, kept apart from the loop.
//!
//! A call must end with the most useful answer: the last retryable status as a response (a
//! non-2xx is a response, not an error), otherwise the last error, or the reason retrying
//! stopped (retry budget spent, deadline reached). [`Trail`] records every attempt and the
//! clusters tried, for the response's `ServedBy` and for errors.

use std::sync::Arc;

use http::StatusCode;
use tokio::time::Instant;

use crate::client::response::{Attempts, CacheStatus, Content, Origin, Owned, Response, ServedBy};
use crate::client::state::ServiceRoute;
use crate::error::{Error, Reason};
use crate::transport::Exchange;

/// What the loop carries between attempts: every attempt, in order.
pub(crate) struct Trail {
    pub(crate) attempts: Attempts,
}

impl Trail {
    /// The call's error: the clusters tried (in order, consecutive repeats merged) are derived
    /// here, on the failure path only.
    pub(crate) fn fail(self, reason: Reason) -> Error {
        let mut clusters: Vec<String> = Vec::new();
        for attempt in &self.attempts {
            if clusters.last().map(String::as_str) != Some(&*attempt.cluster) {
                clusters.push(attempt.cluster.to_string());
            }
        }
        Error::new(reason).with_trail(clusters, self.attempts.into_vec())
    }
}

/// How the previous attempt ended, for the next decision.
pub(crate) enum Last {
    /// A retryable error.
    Error(Reason),
    /// A retryable status; returned as the final response if no retry happens.
    Status(Exchange, Arc<str>, Arc<str>),
}

/// What to do after an attempt.
pub(crate) enum Step {
    Done(Exchange),
    Retry(Last),
    /// Not retryable: return this outcome (a response or an error).
    Final(Last),
    Fail(Reason),
}

impl Step {
    pub(crate) fn retry_if(retry: bool, last: Last) -> Self {
        if retry {
            Self::Retry(last)
        } else {
            Self::Final(last)
        }
    }
}

pub(crate) fn is_retryable_status(status: StatusCode) -> bool {
    matches!(
        status,
        StatusCode::BAD_GATEWAY
            | StatusCode::SERVICE_UNAVAILABLE
            | StatusCode::GATEWAY_TIMEOUT
            | StatusCode::TOO_MANY_REQUESTS
    )
}

/// Ends a call that stopped retrying with its last outcome: a retryable status becomes the response; an error is
/// returned as is, unless `stop` says why retrying stopped (budget, deadline).
pub(super) fn conclude(
    svc: &ServiceRoute,
    trail: Trail,
    last: Option<Last>,
    start: Instant,
    stop: Option<Reason>,
) -> Result<Response, Error> {
    match (last, stop) {
        (Some(Last::Status(exchange, cluster, instance)), _) => Ok(upstream_response(
            svc,
            exchange,
            cluster,
            instance,
            trail,
            start.elapsed(),
        )),
        (_, Some(reason)) => Err(trail.fail(reason)),
        (Some(Last::Error(reason)), None) => Err(trail.fail(reason)),
        (None, None) => Err(trail.fail(Reason::CircuitOpen)),
    }
}

/// The response of a call answered upstream by `instance` of `cluster`, `elapsed` after the
/// call began.
pub(super) fn upstream_response(
    svc: &ServiceRoute,
    exchange: Exchange,
    cluster: Arc<str>,
    instance: Arc<str>,
    trail: Trail,
    elapsed: std::time::Duration,
) -> Response {
    Response {
        status: exchange.status,
        content: Content::Owned(Box::new(Owned {
            headers: exchange.headers,
            body: exchange.body,
        })),
        served: ServedBy {
            origin: Origin::Upstream { cluster, instance },
            attempts: trail.attempts,
            cache: CacheStatus::Bypass,
            elapsed,
            split: None,
        },
        service: Some(Arc::clone(&svc.name)),
    }
}
