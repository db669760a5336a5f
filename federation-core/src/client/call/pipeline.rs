//! The loop of one call (the pipeline diagram in docs/ARCHITECTURE.md, after the cache).
//!
//! **Failure prevented.** A call that retries without bounds (multiplying load during an
//! outage), stays in a dead cluster until its deadline, or hammers the instance that just
//! failed. Each turn of [`run`] picks the next instance ([`Progress::next`]: untried ones
//! first, failover in rank order, late clusters admitted), paces a retry ([`Progress::pace`]:
//! retry budget, backoff or `Retry-After`, deadline), runs one attempt (`attempt.rs`) and
//! decides from its outcome ([`Progress::settle`]). Per call it allocates only what the
//! response keeps (its attempt list) plus the URL and header map of each attempt; the
//! bookkeeping of tried instances allocates only when a retry happens.

use std::sync::Arc;
use std::time::Duration;

use rand::rngs::SmallRng;
use tokio::time::Instant;

use super::admit::admit;
use super::attempt::{Attempted, Call, Target};
use super::hedge;
use super::outcome::{Step, Trail, conclude, upstream_response};
use super::progress::{Pick, Progress};
use crate::attempt::AttemptOutcome;
use crate::client::request::Request;
use crate::client::response::Response;
use crate::client::routing::{self, choose, late};
use crate::client::state::{Inner, ServiceRoute};
use crate::error::{Error, Reason};

/// Runs one call of `svc` that began at `start` (its deadline counts from there); `rng` is the
/// call's random source (retry jitter).
pub(crate) async fn call(
    inner: &Inner,
    svc: &ServiceRoute,
    request: Request,
    rng: &mut SmallRng,
    start: Instant,
) -> Result<Response, Error> {
    run(inner, svc, request, rng, start)
        .await
        .map_err(|e| e.with_service(svc.name.to_string()))
}

async fn run(
    inner: &Inner,
    svc: &ServiceRoute,
    mut request: Request,
    rng: &mut SmallRng,
    start: Instant,
) -> Result<Response, Error> {
    // Validation, load limits, deadline, startup grace.
    let admitted = admit(inner, svc, &request, start).await?;
    let call = Call {
        inner,
        svc,
        start: admitted.start,
        ready: admitted.ready,
        total: admitted.total,
        deadline: admitted.deadline,
        attempt_timeout: admitted.attempt_timeout,
        idempotent: request.is_idempotent(),
        max_per_cluster: svc.policy.retry.max_attempts.max(1),
    };
    // Ranking reads the tags; the attempts never do. Per-call tags or a cluster bypass a split.
    let tags = request.tags.take();
    let policy = svc.rank_policy(&inner.cluster_names);
    let (order, tags, split) = match &svc.split {
        Some(split) if tags.is_none() && request.cluster.is_none() => {
            let key = split.key(&request.headers, rng);
            let d = split.decide(&policy, key, &svc.name, &inner.metrics)?;
            (d.order, d.tags, Some(Box::new(d.outcome)))
        }
        _ => {
            let order = routing::rank(&policy, request.cluster.as_deref(), tags.as_deref())?;
            (order, tags.as_deref(), None)
        }
    };
    let mut order = order;
    if let (Some(spill), Some(preferred), None) = (&svc.spill, svc.preferred, split.as_ref()) {
        spill.apply(&mut order, &svc.routes, preferred, rng);
    }
    // The call's start is its clock reading for the budget's window (no read of its own).
    svc.budget.deposit_at(call.start);
    // Clusters left out by ranking may join before a retry, unless the call is pinned.
    let progress = Progress::new(svc, order, request.cluster.is_none());
    let result = drive(&call, progress, request, tags, rng).await;
    match split {
        None => result,
        Some(split) => result.map(|mut response| {
            response.served.split = Some(split);
            response
        }),
    }
}

/// The attempts of one ranked call until it ends.
async fn drive(
    call: &Call<'_>,
    mut progress: Progress,
    mut request: Request,
    tags: Option<&[String]>,
    rng: &mut SmallRng,
) -> Result<Response, Error> {
    let svc = call.svc;
    loop {
        let pick = match progress.next(call, tags).await {
            Ok(pick) => pick,
            Err(end) => return end,
        };
        let (started, remaining) = match progress.pace(call, &pick, rng).await {
            Ok(paced) => paced,
            Err(end) => return end,
        };
        // Hedging only for requests that may be sent twice.
        let (pos, attempted) = match svc.hedge.as_ref().filter(|_| call.idempotent) {
            // Boxed: a hedged turn holds several attempts and their race; unboxed it would size
            // (and so be copied with) every call's future, hedged or not.
            Some(timer) => {
                Box::pin(hedge::turn(
                    call,
                    timer,
                    &mut progress,
                    pick,
                    remaining,
                    &request,
                    tags,
                ))
                .await
            }
            None => {
                let target = Target {
                    route: &svc.routes[progress.order[pick.pos].route],
                    endpoint: &pick.snapshot.endpoints[pick.index],
                    number: progress.trail.attempts.len() + 1,
                    hedge: false,
                };
                let headers = call.caller_headers(&mut request);
                let attempted = call
                    .attempt(target, pick.permit, (started, remaining), &request, headers)
                    .await;
                (pick.pos, attempted)
            }
        };
        if let Some(timer) = &svc.hedge
            && matches!(attempted.record.outcome, AttemptOutcome::Success)
        {
            timer.observe(attempted.record.duration);
        }
        if let Some(spill) = &svc.spill
            && matches!(attempted.record.outcome, AttemptOutcome::Success)
        {
            spill.observe(progress.order[pos].route, attempted.record.duration);
        }
        if let Some(end) = progress.settle(call, pos, attempted) {
            return end;
        }
    }
}

/// How the loop ends when it does not go on.
type End = Result<Response, Error>;

impl Progress {
    /// Ends the call with the last outcome, or `stop` as the reason retrying stopped.
    fn end(&mut self, call: &Call<'_>, stop: Option<Reason>) -> End {
        let trail = Trail {
            attempts: std::mem::take(&mut self.trail.attempts),
        };
        conclude(call.svc, trail, self.last.take(), call.start, stop)
    }

    /// The next instance to try, or the end of the call when there is none (within
    /// `retry.max_attempts`, after admitting late clusters and waiting for pending ones).
    async fn next(&mut self, call: &Call<'_>, tags: Option<&[String]>) -> Result<Pick, End> {
        let svc = call.svc;
        let n = self.trail.attempts.len();
        if n > 0 && call.max_per_cluster == 1 {
            return Err(self.end(call, None));
        }
        if n > 0 && self.widen {
            late::admit(svc, &mut self.order, tags);
        }
        // The balancer's clock reading: the admission's for the first pick.
        let now = if n == 0 { call.ready } else { Instant::now() };
        loop {
            let max = call.max_per_cluster;
            let tried = (self.tried.as_slice(), now);
            if let Some((pos, index, permit, snapshot)) =
                choose(svc, &self.order, &self.per_cluster, max, tried, tags)
            {
                return Ok(Pick {
                    pos,
                    index,
                    permit,
                    snapshot,
                });
            }
            if n == 0 {
                let trail = Trail {
                    attempts: std::mem::take(&mut self.trail.attempts),
                };
                return Err(Err(trail.fail(Reason::CircuitOpen)));
            }
            // Boxed for the same reason (reached only once every ranked cluster is exhausted).
            if self.widen
                && Box::pin(late::await_more(svc, &mut self.order, tags, call.deadline)).await
            {
                continue;
            }
            let stop = (Instant::now() >= call.deadline).then_some(Reason::Deadline(call.total));
            let left_out = if self.widen {
                late::reasons(svc, &self.order, tags)
            } else {
                Vec::new()
            };
            return Err(self
                .end(call, stop)
                .map_err(|e| e.not_failed_over(left_out)));
        }
    }

    /// Before a retry: spends the retry budget and waits the backoff (or the `Retry-After` of
    /// the same instance). Returns the clock reading the attempt starts at and the time left
    /// before the deadline, or the end of the call.
    async fn pace(
        &mut self,
        call: &Call<'_>,
        pick: &Pick,
        rng: &mut SmallRng,
    ) -> Result<(Instant, Duration), End> {
        let n = self.trail.attempts.len();
        if n > 0 {
            let svc = call.svc;
            if !svc.budget.try_withdraw() {
                call.inner.metrics.budget_rejected(&svc.name);
                return Err(self.end(call, Some(Reason::BudgetExhausted)));
            }
            let route = self.order[pick.pos].route;
            let id = &pick.snapshot.endpoints[pick.index].id;
            let same_instance = self
                .tried
                .last()
                .is_some_and(|(r, t)| *r == route && t == id);
            let delay = if pick.pos != self.last_pos || (!same_instance && self.last_fast) {
                Duration::ZERO
            } else if let (true, Some(wait)) = (same_instance, self.retry_after) {
                wait
            } else {
                svc.backoff.delay(u32::try_from(n).unwrap_or(u32::MAX), rng)
            };
            if !delay.is_zero() {
                if Instant::now() + delay >= call.deadline {
                    return Err(self.end(call, Some(Reason::Deadline(call.total))));
                }
                // Boxed: a timer entry in every call's future for a wait only retries make.
                Box::pin(tokio::time::sleep(delay)).await;
            }
        }
        // The first attempt starts at the admission's reading (a few µs of routing earlier).
        let now = if n == 0 { call.ready } else { Instant::now() };
        let remaining = call.deadline.saturating_duration_since(now);
        if remaining.is_zero() {
            return Err(self.end(call, Some(Reason::Deadline(call.total))));
        }
        if n > 0 {
            let svc = call.svc;
            call.inner.metrics.retry(&svc.name);
            if pick.pos != self.last_pos {
                let from = &svc.routes[self.order[self.last_pos].route].cluster;
                let to = &svc.routes[self.order[pick.pos].route].cluster;
                call.inner.metrics.failover(&svc.name, from, to);
            }
        }
        Ok((now, remaining))
    }

    /// After an attempt at ranked position `pos`: the call's answer, or `None` to go on.
    fn settle(&mut self, call: &Call<'_>, pos: usize, attempted: Attempted) -> Option<End> {
        self.per_cluster[pos] += 1;
        self.last_pos = pos;
        self.retry_after = attempted.retry_after;
        self.last_fast = attempted.fast;
        let elapsed = attempted.ended.saturating_duration_since(call.start);
        let attempt = &attempted.record;
        let (cluster, instance) = (Arc::clone(&attempt.cluster), Arc::clone(&attempt.instance));
        self.record(attempted.record);
        match attempted.step {
            Step::Done(exchange) => {
                let trail = Trail {
                    attempts: std::mem::take(&mut self.trail.attempts),
                };
                let response =
                    upstream_response(call.svc, exchange, cluster, instance, trail, elapsed);
                Some(Ok(response))
            }
            Step::Fail(reason) => {
                let trail = Trail {
                    attempts: std::mem::take(&mut self.trail.attempts),
                };
                Some(Err(trail.fail(reason)))
            }
            Step::Final(last) => {
                self.last = Some(last);
                Some(self.end(call, None))
            }
            Step::Retry(last) => {
                self.tried.push((self.order[pos].route, instance));
                self.last = Some(last);
                None
            }
        }
    }
}
