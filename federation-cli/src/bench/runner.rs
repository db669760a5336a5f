//! Load generators: closed loop for throughput, open loop for honest latency, batched micro
//! loops for sub-microsecond operations.
//!
//! A closed loop (c workers, each sends its next request when the previous one answers) finds
//! peak throughput but hides queueing: when the system stalls, the workers stop sending, so the
//! stall is counted once instead of for every request that should have been sent
//! ("coordinated omission"). The open loop therefore sends on a fixed schedule and measures each
//! latency from the request's *intended* start. Operations much shorter than a clock read are
//! timed in batches and reported per operation.

use std::time::{Duration, Instant};

use tokio::sync::Semaphore;
use tokio::task::JoinSet;

use super::stats::{Recorder, Sample};
use super::target::Target;

/// Most requests the open loop keeps in flight; later ones wait (and their wait is measured).
const OPEN_LOOP_MAX_IN_FLIGHT: usize = 4096;

/// How a run drives its target.
#[derive(Clone, Copy, Debug, PartialEq)]
pub enum Load {
    /// `concurrency` workers back to back.
    Closed {
        /// Workers.
        concurrency: usize,
    },
    /// A fixed arrival rate (requests per second).
    Open {
        /// Requests per second.
        rate: f64,
    },
    /// One worker timing batches of `batch` operations, reporting per-operation figures.
    Micro {
        /// Operations per timed batch.
        batch: u32,
    },
}

impl std::fmt::Display for Load {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Self::Closed { concurrency } => write!(f, "closed c={concurrency}"),
            Self::Open { rate } => write!(f, "open {rate:.0}/s"),
            Self::Micro { batch } => write!(f, "loop ×{batch}"),
        }
    }
}

/// Runs `target` under `load` for `duration`.
pub async fn run<T: Target>(target: &T, load: Load, duration: Duration) -> Sample {
    match load {
        Load::Closed { concurrency } => closed(target, concurrency.max(1), duration).await,
        Load::Open { rate } => open(target, rate.max(1.0), duration).await,
        Load::Micro { batch } => micro(target, batch.max(1), duration).await,
    }
}

async fn closed<T: Target>(target: &T, concurrency: usize, duration: Duration) -> Sample {
    let start = Instant::now();
    let deadline = start + duration;
    let mut workers = JoinSet::new();
    for _ in 0..concurrency {
        let target = target.clone();
        workers.spawn(async move {
            let mut rec = Recorder::with_capacity(1024);
            loop {
                let t = Instant::now();
                if t >= deadline {
                    break;
                }
                let ok = target.call().await;
                rec.record(t.elapsed(), ok);
            }
            rec
        });
    }
    let mut all = Recorder::with_capacity(64 * 1024);
    while let Some(done) = workers.join_next().await {
        if let Ok(rec) = done {
            all.merge(rec);
        }
    }
    all.summarise(start.elapsed())
}

async fn open<T: Target>(target: &T, rate: f64, duration: Duration) -> Sample {
    let total = (rate * duration.as_secs_f64()).ceil() as u64;
    let interval = Duration::from_secs_f64(1.0 / rate);
    let permits = std::sync::Arc::new(Semaphore::new(OPEN_LOOP_MAX_IN_FLIGHT));
    let start = Instant::now();
    let mut tasks = JoinSet::new();
    let mut all = Recorder::with_capacity(usize::try_from(total).unwrap_or(0));
    for i in 0..total {
        let intended = start + interval.mul_f64(i as f64);
        let now = Instant::now();
        if intended > now {
            // tokio's timer has millisecond granularity: requests due within it go out together.
            tokio::time::sleep(intended - now).await;
        }
        let Ok(permit) = std::sync::Arc::clone(&permits).acquire_owned().await else {
            break;
        };
        let target = target.clone();
        tasks.spawn(async move {
            let ok = target.call().await;
            drop(permit);
            (intended.elapsed(), ok)
        });
        while let Some(done) = tasks.try_join_next() {
            if let Ok((latency, ok)) = done {
                all.record(latency, ok);
            }
        }
    }
    while let Some(done) = tasks.join_next().await {
        if let Ok((latency, ok)) = done {
            all.record(latency, ok);
        }
    }
    all.summarise(start.elapsed())
}

async fn micro<T: Target>(target: &T, batch: u32, duration: Duration) -> Sample {
    let start = Instant::now();
    let deadline = start + duration;
    let mut rec = Recorder::with_capacity(4096);
    let mut ops = 0u64;
    while Instant::now() < deadline {
        let t = Instant::now();
        let mut ok = true;
        for _ in 0..batch {
            ok &= target.call().await;
        }
        rec.record(t.elapsed() / batch, ok);
        ops += u64::from(batch);
    }
    let mut sample = rec.summarise(start.elapsed());
    sample.throughput = ops as f64 / start.elapsed().as_secs_f64().max(f64::MIN_POSITIVE);
    sample.count = ops;
    sample
}

#[cfg(test)]
mod tests {
    use super::*;

    #[derive(Clone)]
    struct Sleep(Duration);

    impl Target for Sleep {
        async fn call(&self) -> bool {
            tokio::time::sleep(self.0).await;
            true
        }
    }

    #[tokio::test]
    async fn closed_loop_counts_every_worker() {
        let s = run(
            &Sleep(Duration::from_millis(5)),
            Load::Closed { concurrency: 4 },
            Duration::from_millis(200),
        )
        .await;
        assert!(s.count >= 8, "count {}", s.count);
        assert_eq!(s.errors, 0);
        assert!(s.p50 >= Duration::from_millis(4), "p50 {:?}", s.p50);
    }

    #[tokio::test]
    async fn open_loop_sends_the_scheduled_number_of_requests() {
        let s = run(
            &Sleep(Duration::from_millis(1)),
            Load::Open { rate: 100.0 },
            Duration::from_millis(200),
        )
        .await;
        assert_eq!(s.count, 20);
    }
}
