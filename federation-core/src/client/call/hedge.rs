//! One hedged turn of the call loop: the picked attempt plus backup requests to other
//! instances.
//!
//! **Failure prevented.** A hedge that doubles a slow fleet's load, lands on the instance it
//! backs up, or leaves no trace of the attempts it cancelled. Each hedge goes to an instance
//! not yet used in the call (in the same cluster unless `hedge.cross_cluster`), spends one unit
//! of the service's retry budget (`federation_retry_budget_rejections_total` when refused, and
//! no hedge), and counts in `federation_hedges_total`; an answer from a hedge counts in
//! `federation_hedges_won_total`. Every attempt of the turn, cancelled ones included, ends up
//! in the call's trail, hedges marked as such. The timer itself is `race.rs`.

use std::sync::Arc;
use std::time::Duration;

use tokio::time::Instant;

use super::attempt::{Attempted, Call, Target};
use super::outcome::Step;
use super::progress::{Pick, Progress};
use super::race::race;
use crate::attempt::{Attempt, AttemptOutcome};
use crate::client::hedge_delay::HedgeTimer;
use crate::client::request::Request;
use crate::client::routing::{Snapshot, choose};

/// Where one attempt of the turn went, for the record of a cancelled one.
struct Sent {
    route: usize,
    pos: usize,
    cluster: Arc<str>,
    instance: Arc<str>,
    started: Instant,
    /// The endpoint (`snapshot.endpoints[index]`), for the latency sample of a cancelled one.
    snapshot: Arc<Snapshot>,
    index: usize,
}

/// Runs the turn that starts with `first`; returns the ranked position and outcome the loop
/// settles, after adding every other attempt of the turn to `progress`.
pub(super) async fn turn(
    call: &Call<'_>,
    timer: &HedgeTimer,
    progress: &mut Progress,
    first: Pick,
    remaining: Duration,
    request: &Request,
    tags: Option<&[String]>,
) -> (usize, Attempted) {
    let svc = call.svc;
    let number = progress.trail.attempts.len() + 1;
    let mut sent = vec![sent_to(call, progress, &first)];
    let mut avoid = progress.tried.clone();
    avoid.push((sent[0].route, Arc::clone(&sent[0].instance)));
    let first_pos = first.pos;
    let first_route = sent[0].route;
    let first_attempt = one(call, request, first_route, first, number, remaining, false);
    let state: &Progress = progress;
    let launch = |slot: usize| {
        let pick = hedge_pick(call, timer, state, &avoid, first_pos, tags)?;
        let remaining = call.deadline.saturating_duration_since(Instant::now());
        if remaining.is_zero() {
            return None;
        }
        if !svc.budget.try_withdraw() {
            call.inner.metrics.budget_rejected(&svc.name);
            return None;
        }
        call.inner.metrics.hedge_sent(&svc.name);
        let entry = sent_to(call, state, &pick);
        let route = entry.route;
        avoid.push((route, Arc::clone(&entry.instance)));
        sent.push(entry);
        Some(one(
            call,
            request,
            route,
            pick,
            number + slot,
            remaining,
            true,
        ))
    };
    let won = |(_, a): &(usize, Attempted)| wins(a);
    let raced = race(first_attempt, timer.delay(), timer.max_extra, launch, won).await;
    let (winner, (pos, decided)) = raced.decided;
    if winner > 0 && wins(&decided) {
        call.inner.metrics.hedge_won(&svc.name);
    }
    for (_, (pos, attempted)) in raced.finished {
        progress.per_cluster[pos] += 1;
        if matches!(attempted.step, Step::Retry(_)) {
            let instance = Arc::clone(&attempted.record.instance);
            progress.tried.push((progress.order[pos].route, instance));
        }
        progress.record(attempted.record);
    }
    for slot in raced.cancelled {
        let record = cancelled(call, &sent[slot], slot > 0, slot < winner);
        progress.per_cluster[sent[slot].pos] += 1;
        progress.record(record);
    }
    (pos, decided)
}

/// A final answer (any status that is not retried) wins the race.
fn wins(attempted: &Attempted) -> bool {
    matches!(attempted.step, Step::Done(_))
}

/// One attempt of the turn to `pick`, numbered `number` in the call.
async fn one(
    call: &Call<'_>,
    request: &Request,
    route: usize,
    pick: Pick,
    number: usize,
    remaining: Duration,
    hedge: bool,
) -> (usize, Attempted) {
    let Pick {
        pos,
        index,
        permit,
        snapshot,
    } = pick;
    let target = Target {
        route: &call.svc.routes[route],
        endpoint: &snapshot.endpoints[index],
        number,
        hedge,
    };
    let headers = request.headers.clone();
    let attempted = call
        .attempt(
            target,
            permit,
            (Instant::now(), remaining),
            request,
            headers,
        )
        .await;
    (pos, attempted)
}

/// An instance for a hedge: not used in this call yet, in the first attempt's cluster unless
/// `cross_cluster` allows another.
fn hedge_pick(
    call: &Call<'_>,
    timer: &HedgeTimer,
    progress: &Progress,
    avoid: &[(usize, Arc<str>)],
    first_pos: usize,
    tags: Option<&[String]>,
) -> Option<Pick> {
    let order = &progress.order;
    let max = call.max_per_cluster;
    let (pos, index, permit, snapshot) = choose(
        call.svc,
        order,
        &progress.per_cluster,
        max,
        (avoid, Instant::now()),
        tags,
    )?;
    let route = order[pos].route;
    let id = &snapshot.endpoints[index].id;
    let unused = !avoid.iter().any(|(r, t)| *r == route && t == id);
    let cluster_ok = timer.cross_cluster || route == order[first_pos].route;
    (unused && cluster_ok).then_some(Pick {
        pos,
        index,
        permit,
        snapshot,
    })
}

/// Where `pick` sends an attempt now.
fn sent_to(call: &Call<'_>, progress: &Progress, pick: &Pick) -> Sent {
    let route = progress.order[pick.pos].route;
    Sent {
        route,
        pos: pick.pos,
        cluster: Arc::clone(&call.svc.routes[route].cluster),
        instance: Arc::clone(&pick.snapshot.endpoints[pick.index].id),
        started: Instant::now(),
        snapshot: Arc::clone(&pick.snapshot),
        index: pick.index,
    }
}

/// The record (and attempt metrics) of an attempt dropped unanswered. An attempt that was
/// `overtaken` (sent before the winner, answered after it) is evidence that its instance is
/// slow: its latency estimate at least doubles (a peak the balancer decays as usual). Its own
/// time so far is no latency sample: cut short by the hedge, it would make a slow instance look
/// fast. A hedge dropped because an earlier attempt answered first says nothing about its
/// instance (it ran for less than the delay) and leaves its estimate alone: penalising it made
/// the healthy instances, which receive most hedges, look as slow as the slow one, and P2C sent
/// the slow one first attempts (`federation bench --scenario hedge`, docs/BENCHMARKS.md).
fn cancelled(call: &Call<'_>, sent: &Sent, hedge: bool, overtaken: bool) -> Attempt {
    // One clock reading for the duration and the latency estimate's decay.
    let now = Instant::now();
    let duration = now.saturating_duration_since(sent.started);
    if overtaken {
        let stats = &sent.snapshot.endpoints[sent.index].state.stats;
        stats.observe_at(duration.max(stats.ewma_latency() * 2), true, now);
    }
    call.inner
        .metrics
        .attempt(&call.svc.name, &sent.cluster, "cancelled", duration);
    Attempt {
        cluster: Arc::clone(&sent.cluster),
        instance: Arc::clone(&sent.instance),
        outcome: AttemptOutcome::Cancelled,
        duration,
        status: None,
        offset: sent.started.saturating_duration_since(call.start),
        hedge,
    }
}
