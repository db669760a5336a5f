//! The discovery watcher's backoff while Consul keeps failing, observed from the server side.
//!
//! Failures this catches: a backoff that is computed but not applied (the agent hammered by
//! every watcher at the token bucket's rate while it is down), delays that do not grow, and a
//! jitter that is fixed or lopsided (watchers restarted together retrying in lock-step). A stub
//! agent answers every request 500 and timestamps it on tokio's paused clock, so the intervals
//! between requests are exactly the delays the watcher slept.

use std::sync::{Arc, Mutex, PoisonError};
use std::time::Duration;

use federation_core::config::{ClusterConfig, ConsulSource, DiscoverySource};
use federation_core::discovery::{ClusterDiscovery, DiscoveryTuning};
use tokio::io::{AsyncReadExt as _, AsyncWriteExt as _};
use tokio::net::TcpListener;
use tokio::time::Instant;

/// An agent that answers every request `500 No cluster leader` and records when each arrived.
struct FailingAgent {
    url: String,
    arrivals: Arc<Mutex<Vec<Instant>>>,
}

impl FailingAgent {
    async fn start() -> Self {
        let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind");
        let url = format!("http://{}", listener.local_addr().expect("local addr"));
        let arrivals = Arc::new(Mutex::new(Vec::new()));
        let log = Arc::clone(&arrivals);
        tokio::spawn(async move {
            while let Ok((mut conn, _)) = listener.accept().await {
                let log = Arc::clone(&log);
                tokio::spawn(async move {
                    if !read_head(&mut conn).await {
                        return;
                    }
                    log.lock()
                        .unwrap_or_else(PoisonError::into_inner)
                        .push(Instant::now());
                    let body = "No cluster leader";
                    let reply = format!(
                        "HTTP/1.1 500 Internal Server Error\r\ncontent-type: text/plain\r\n\
                         content-length: {}\r\nconnection: close\r\n\r\n{body}",
                        body.len()
                    );
                    let _ = conn.write_all(reply.as_bytes()).await;
                    let _ = conn.shutdown().await;
                });
            }
        });
        Self { url, arrivals }
    }

    /// Gaps between consecutive requests so far.
    fn intervals(&self) -> Vec<Duration> {
        let arrivals = self.arrivals.lock().unwrap_or_else(PoisonError::into_inner);
        arrivals.windows(2).map(|w| w[1] - w[0]).collect()
    }

    fn requests(&self) -> usize {
        self.arrivals
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .len()
    }
}

/// Reads a request head (a GET has no body); false when the peer went away first.
async fn read_head(conn: &mut tokio::net::TcpStream) -> bool {
    let mut head = Vec::new();
    let mut buf = [0u8; 1024];
    while !head.windows(4).any(|w| w == b"\r\n\r\n") {
        match conn.read(&mut buf).await {
            Ok(0) | Err(_) => return false,
            Ok(n) => head.extend_from_slice(&buf[..n]),
        }
    }
    true
}

fn watch(agent: &FailingAgent, backoff_base: Duration, backoff_max: Duration) -> ClusterDiscovery {
    let mut source = ConsulSource::new(&agent.url);
    source.wait = Duration::from_secs(30);
    let cluster = ClusterConfig::new("zervigo", DiscoverySource::Consul(source));
    let tuning = DiscoveryTuning {
        backoff_base,
        backoff_max,
        ..DiscoveryTuning::default()
    };
    let discovery = ClusterDiscovery::with_tuning(&cluster, tuning).expect("valid cluster");
    drop(discovery.watch("user-api"));
    discovery
}

/// With the defaults (250 ms doubling to 30 s), a watcher facing a failing agent for 10 s sends
/// 6 or 7 requests, each gap in the upper half of its doubled delay. Without the backoff the
/// token bucket alone would allow 8 + 40.
#[tokio::test(start_paused = true)]
async fn a_failing_agent_is_retried_with_doubling_delays() {
    let agent = FailingAgent::start().await;
    let defaults = DiscoveryTuning::default();
    let _discovery = watch(&agent, defaults.backoff_base, defaults.backoff_max);
    tokio::time::sleep(Duration::from_secs(10)).await;
    let requests = agent.requests();
    let intervals = agent.intervals();
    assert!(
        (6..=7).contains(&requests),
        "{requests} requests in 10 s; gaps {intervals:?}"
    );
    for (n, gap) in intervals.iter().enumerate() {
        let full = defaults.backoff_base * (1 << n);
        assert!(
            *gap >= full / 2 && *gap < full,
            "gap {n} is {gap:?}, expected in [{:?}, {full:?}); all: {intervals:?}",
            full / 2
        );
    }
}

/// "Equal jitter": every delay is `d/2` plus a uniform draw from `[0, d/2)`. With the cap equal
/// to the base every delay has the same range, so 80 gaps show the distribution: all in range,
/// each quarter of the range hit (expected 20 per quarter; fewer than 5 has odds below 1e-4),
/// and a mean near the middle (expected 750 ms, standard error 16 ms).
#[tokio::test(start_paused = true)]
async fn backoff_jitter_is_spread_over_the_upper_half_of_the_delay() {
    let agent = FailingAgent::start().await;
    let delay = Duration::from_secs(1);
    let _discovery = watch(&agent, delay, delay);
    while agent.requests() < 81 {
        tokio::time::sleep(delay).await;
    }
    let gaps: Vec<Duration> = agent.intervals().into_iter().take(80).collect();
    let mut quarters = [0usize; 4];
    for gap in &gaps {
        assert!(
            *gap >= delay / 2 && *gap <= delay,
            "gap {gap:?} outside [500ms, 1s] (the paused clock rounds to whole ms): {gaps:?}"
        );
        let offset = gap.as_secs_f64() - 0.5;
        quarters[((offset / 0.125) as usize).min(3)] += 1;
    }
    assert!(
        quarters.iter().all(|&n| n >= 5),
        "gaps per quarter of [500ms, 1s): {quarters:?}"
    );
    let mean = gaps.iter().sum::<Duration>() / 80;
    assert!(
        mean >= Duration::from_millis(690) && mean <= Duration::from_millis(810),
        "mean gap {mean:?}"
    );
}
