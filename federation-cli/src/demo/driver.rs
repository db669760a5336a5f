//! The traffic driver: a steady rate of calls per service from one client, every outcome
//! recorded.
//!
//! An open-loop generator (calls start on a clock, not when the previous one returns) is what
//! real users look like: a slow or failing cluster does not slow the arrivals down, so every
//! failure the client fails to hide shows up in the numbers. Each call runs in its own task;
//! its outcome (served by which cluster and instance, attempts, cache status, latency) is
//! appended to a shared log the progress line, the report and the chart read.

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, PoisonError};
use std::time::Duration;

use federation_core::client::{CacheStatus, FederatedServiceClient, Response};
use federation_core::error::Error;
use tokio::sync::watch;
use tokio::task::JoinSet;
use tokio::time::{Instant, MissedTickBehavior};

use super::story::Phase;
use super::traffic::{SplitMix64, Target};

/// The recorded outcome of one call.
#[derive(Clone, Debug)]
pub struct Sample {
    /// When the call started, from the start of the run.
    pub at: Duration,
    /// The phase the call started in.
    pub phase: usize,
    /// The service called.
    pub target: Target,
    /// How long the call took.
    pub latency: Duration,
    /// Whether it succeeded (a 2xx response).
    pub ok: bool,
    /// The final HTTP status, when a response arrived.
    pub status: Option<u16>,
    /// The error kind label, when the call failed without a response.
    pub error: Option<&'static str>,
    /// The cluster that answered (none for errors and cache hits).
    pub cluster: Option<Arc<str>>,
    /// The instance that answered.
    pub instance: Option<Arc<str>>,
    /// Whether the cache answered (hit or stale).
    pub cached: bool,
    /// Attempts that failed before the call's outcome (absorbed by retries and failover).
    pub failed_attempts: u32,
}

/// The append-only log of every call.
pub type SampleLog = Arc<Mutex<Vec<Sample>>>;

/// Copies the samples from `from` on (for incremental readers such as the progress line).
pub fn samples_since(log: &SampleLog, from: usize) -> Vec<Sample> {
    let samples = log.lock().unwrap_or_else(PoisonError::into_inner);
    samples
        .get(from..)
        .map(<[Sample]>::to_vec)
        .unwrap_or_default()
}

/// Drives traffic until stopped.
#[derive(Debug)]
pub struct Driver {
    stop: watch::Sender<bool>,
    generators: JoinSet<()>,
}

/// What every generator shares.
#[derive(Clone)]
pub struct Shared {
    /// The one client all traffic goes through.
    pub client: FederatedServiceClient,
    /// Where outcomes go.
    pub log: SampleLog,
    /// The current phase index (the story runner advances it).
    pub phase: Arc<AtomicUsize>,
    /// The story (for per-phase request mixes).
    pub phases: Arc<[Phase]>,
    /// Start of the run.
    pub start: Instant,
}

impl Driver {
    /// Starts one generator per target, each sending `rate` calls per second.
    pub fn start(shared: Shared, rate: u32, seed: u64) -> Self {
        let (stop, stopped) = watch::channel(false);
        let mut generators = JoinSet::new();
        for (i, target) in Target::ALL.into_iter().enumerate() {
            let rng = SplitMix64::new(seed ^ (0x1000 * (i as u64 + 1)));
            generators.spawn(generate(shared.clone(), target, rate, rng, stopped.clone()));
        }
        Self { stop, generators }
    }

    /// Stops new calls and waits for the calls in flight to finish.
    pub async fn stop(mut self) {
        let _ = self.stop.send(true);
        while self.generators.join_next().await.is_some() {}
    }
}

async fn generate(
    shared: Shared,
    target: Target,
    rate: u32,
    mut rng: SplitMix64,
    mut stopped: watch::Receiver<bool>,
) {
    let period = Duration::from_secs_f64(1.0 / f64::from(rate.max(1)));
    let mut ticks = tokio::time::interval(period);
    ticks.set_missed_tick_behavior(MissedTickBehavior::Delay);
    let mut calls = JoinSet::new();
    loop {
        tokio::select! {
            _ = ticks.tick() => {}
            _ = stopped.changed() => break,
        }
        let phase = shared.phase.load(Ordering::Acquire);
        let prompts = shared
            .phases
            .get(phase)
            .map_or(super::story::Prompts::Unique, |p| p.prompts);
        let request = target.request(&mut rng, prompts);
        let shared = shared.clone();
        calls.spawn(async move {
            let started = Instant::now();
            let result = shared.client.call(target.service(), request).await;
            let sample = record(&shared, target, phase, started, result);
            shared
                .log
                .lock()
                .unwrap_or_else(PoisonError::into_inner)
                .push(sample);
        });
        // Reap finished calls so the set does not grow for the whole run.
        while calls.try_join_next().is_some() {}
    }
    while calls.join_next().await.is_some() {}
}

fn record(
    shared: &Shared,
    target: Target,
    phase: usize,
    started: Instant,
    result: Result<Response, Error>,
) -> Sample {
    let mut sample = Sample {
        at: started.duration_since(shared.start),
        phase,
        target,
        latency: started.elapsed(),
        ok: false,
        status: None,
        error: None,
        cluster: None,
        instance: None,
        cached: false,
        failed_attempts: 0,
    };
    match result {
        Ok(response) => {
            let served = response.served();
            let status = response.status();
            sample.ok = status.is_success();
            sample.status = Some(status.as_u16());
            sample.cached = matches!(served.cache(), CacheStatus::Hit | CacheStatus::Stale);
            if !served.attempts().is_empty() {
                sample.cluster = Some(Arc::from(served.cluster()));
                sample.instance = Some(Arc::from(served.instance()));
            }
            sample.failed_attempts = served.attempts().len().saturating_sub(1) as u32;
        }
        Err(error) => {
            sample.error = Some(error.kind().as_str());
            sample.failed_attempts = error.attempts().len() as u32;
        }
    }
    sample
}
