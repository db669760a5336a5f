//! Driving a sync pipe: closed loop for the maximum throughput, open loop at a fixed rate for
//! honest end-to-end latency; a run ends only when everything sent has arrived.
//!
//! A sync pipeline can accept sends faster than it applies them; counting sends would then
//! report the producer's speed, not the pipeline's. So a run's throughput is what *arrived*
//! divided by the time from the first send to the last arrival, and latency is measured from each
//! event's intended send time (open loop: a stall delays every event scheduled behind it, so it
//! is counted for all of them, not once). Sends are issued from one task, so each entity's
//! events are stamped and queued in the order they are sent (per-entity order holds).

use std::time::{Duration, Instant};

use futures_util::StreamExt;
use futures_util::stream::FuturesUnordered;

use super::stats::{Recorder, Sample};
use super::sync_pipes::Pipe;

/// Sends the closed loop keeps in flight.
pub const IN_FLIGHT: usize = 1_000;
/// How long a run waits for its last events to arrive.
const DRAIN_LIMIT: Duration = Duration::from_secs(120);

/// How a run sends.
#[derive(Clone, Copy, Debug)]
pub enum Schedule {
    /// [`IN_FLIGHT`] sends outstanding at all times.
    Closed,
    /// A fixed number of sends per second.
    Open(f64),
}

/// One measured run.
#[derive(Clone, Debug)]
pub struct Run {
    /// Latency, throughput (arrived per second, first send to last arrival), errors (failed
    /// sends plus events that never arrived).
    pub sample: Sample,
    /// Events that did not arrive within the drain limit.
    pub missing: u64,
}

/// Drive `pipe` for `duration`, wait for everything sent to arrive, and summarise.
pub async fn measure<P: Pipe>(
    pipe: &P,
    schedule: Schedule,
    duration: Duration,
    seq: &mut u64,
) -> Run {
    let arrivals = pipe.arrivals();
    let _stale = arrivals.take();
    let before = arrivals.count();
    let start = Instant::now();
    let start_ns = arrivals.ns_at(start);
    let (sent, failed) = match schedule {
        Schedule::Closed => closed(pipe, duration, seq).await,
        Schedule::Open(rate) => open(pipe, rate, duration, seq).await,
    };
    let expected = before + sent - failed;
    let deadline = Instant::now() + DRAIN_LIMIT;
    while arrivals.count() < expected && Instant::now() < deadline {
        tokio::time::sleep(Duration::from_millis(2)).await;
    }
    let arrived = arrivals.count().saturating_sub(before);
    let elapsed = Duration::from_nanos(arrivals.last_ns().saturating_sub(start_ns));
    let mut recorder = Recorder::with_capacity(0);
    for nanos in arrivals.take() {
        recorder.record(Duration::from_nanos(nanos), true);
    }
    let mut sample = recorder.summarise(elapsed);
    let missing = (sent - failed).saturating_sub(arrived);
    sample.errors = failed + missing;
    Run { sample, missing }
}

async fn closed<P: Pipe>(pipe: &P, duration: Duration, seq: &mut u64) -> (u64, u64) {
    let deadline = Instant::now() + duration;
    let arrivals = pipe.arrivals();
    let mut in_flight = FuturesUnordered::new();
    let (mut sent, mut failed) = (0, 0);
    loop {
        while in_flight.len() < IN_FLIGHT && Instant::now() < deadline {
            in_flight.push(pipe.send(*seq, arrivals.now_ns()));
            *seq += 1;
            sent += 1;
        }
        match in_flight.next().await {
            Some(ok) => failed += u64::from(!ok),
            None => return (sent, failed),
        }
    }
}

async fn open<P: Pipe>(pipe: &P, rate: f64, duration: Duration, seq: &mut u64) -> (u64, u64) {
    let total = (rate * duration.as_secs_f64()).ceil() as u64;
    let interval = Duration::from_secs_f64(1.0 / rate.max(1.0));
    let arrivals = pipe.arrivals();
    let start = Instant::now();
    let mut in_flight = FuturesUnordered::new();
    let (mut sent, mut failed) = (0u64, 0u64);
    loop {
        let now = Instant::now();
        while sent < total && start + interval.mul_f64(sent as f64) <= now {
            let intended = start + interval.mul_f64(sent as f64);
            in_flight.push(pipe.send(*seq, arrivals.ns_at(intended)));
            *seq += 1;
            sent += 1;
        }
        let next = (sent < total).then(|| start + interval.mul_f64(sent as f64));
        if next.is_none() && in_flight.is_empty() {
            return (sent, failed);
        }
        let wake = next.unwrap_or(now + DRAIN_LIMIT);
        tokio::select! {
            Some(ok) = in_flight.next(), if !in_flight.is_empty() => failed += u64::from(!ok),
            () = tokio::time::sleep_until(wake.into()), if next.is_some() => {}
        }
    }
}
