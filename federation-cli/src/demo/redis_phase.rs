//! The demo's shared-cache phase: two processes of a fleet share the `ai` results through Redis
//! (`cache.l2`), an invalidation made by one reaches the other, and Redis dying mid-traffic
//! fails no call.
//!
//! Without it a user only sees one process's in-memory cache and has to take the fleet
//! behaviour on trust. It runs after the call story against a real `redis-server` started by the
//! testkit when one is on the `PATH`; otherwise it is skipped with a line saying how to enable
//! it, so the demo still works on a machine without Redis.

use std::fmt::Write as _;
use std::time::{Duration, Instant};

use federation_core::client::FederatedServiceClient;
use federation_core::config::{Config, ConfigFormat};
use federation_testkit::redis::{RedisServer, available};
use federation_testkit::sandbox::Sandbox;
use serde::Serialize;

use super::story::Prompts;
use super::traffic::{SplitMix64, Target};

/// How long each step may take to show its result.
const STEP: Duration = Duration::from_secs(15);
/// Traffic before and after Redis is killed, per side.
const TRAFFIC_HALF: Duration = Duration::from_secs(2);
/// The cached service.
const AI: &str = "ai";
/// The path of every `ai` request (what an invalidation names).
const AI_PATH: &str = "/v1/inference";

/// What the shared-cache phase showed (the `redis` member of the `--json` document).
#[derive(Debug, Default, Serialize)]
pub struct RedisReport {
    /// Whether it ran (false: skipped, see `skipped`).
    pub ran: bool,
    /// Why it did not run, and how to enable it.
    pub skipped: Option<String>,
    /// Every check held.
    pub passed: bool,
    /// How the first process's first call was served (`miss`: fetched upstream).
    pub first_call: String,
    /// How the second process's call of the same request was served (`hit`: from Redis).
    pub second_process_call: String,
    /// Values the second process found in Redis.
    pub second_process_l2_hits: u64,
    /// Milliseconds from the first process's invalidation to the second process receiving it.
    pub invalidation_ms: Option<f64>,
    /// How the second process served the request after the invalidation (`miss`: refetched).
    pub after_invalidation: String,
    /// Calls made by both processes while Redis was killed mid-traffic.
    pub calls_around_kill: u64,
    /// Of those, calls that failed (error or non-2xx).
    pub failed_around_kill: u64,
    /// Whether the processes reported the tier degraded after the kill.
    pub degraded_seen: bool,
    /// What went wrong, when `passed` is false.
    pub error: Option<String>,
    /// Seconds the phase took.
    pub seconds: f64,
}

/// Run the phase against the sandbox's `ai` service, or skip it when there is no Redis.
pub async fn run(sandbox: &Sandbox) -> RedisReport {
    if !available() {
        return skipped(
            "`redis-server` is not on the PATH. Install it (e.g. apt-get install redis-server) \
             to see two processes share the ai cache through Redis"
                .to_owned(),
        );
    }
    let started = Instant::now();
    eprintln!("── shared cache: starting redis-server…");
    let redis = match RedisServer::start().await {
        Ok(redis) => redis,
        Err(e) => return skipped(format!("redis-server did not start: {e}")),
    };
    let mut report = RedisReport {
        ran: true,
        ..RedisReport::default()
    };
    if let Err(e) = story(sandbox, &redis, &mut report).await {
        report.error = Some(e);
    }
    report.passed = report.error.is_none();
    report.seconds = started.elapsed().as_secs_f64();
    report
}

fn skipped(reason: String) -> RedisReport {
    RedisReport {
        skipped: Some(format!("shared cache (Redis) phase skipped: {reason}.")),
        ..RedisReport::default()
    }
}

fn process(sandbox: &Sandbox, redis: &RedisServer) -> Result<FederatedServiceClient, String> {
    let port = redis.port().ok_or("the Redis server has no TCP port")?;
    let yaml = sandbox.config_yaml_with_l2(&format!("127.0.0.1:{port}"));
    let config = Config::parse(&yaml, ConfigFormat::Yaml)
        .map_err(|e| format!("the sandbox configuration with cache.l2 is invalid: {e}"))?;
    FederatedServiceClient::from_config(config).map_err(|e| format!("client: {e}"))
}

fn l2(client: &FederatedServiceClient) -> federation_core::telemetry::L2Health {
    client
        .health()
        .service(AI)
        .and_then(|s| s.cache_l2.clone())
        .unwrap_or_default()
}

async fn until(what: &str, mut done: impl FnMut() -> bool) -> Result<Duration, String> {
    let start = Instant::now();
    while !done() {
        if start.elapsed() >= STEP {
            return Err(format!("{what}: not within {STEP:?}"));
        }
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    Ok(start.elapsed())
}

/// One `ai` call of prompt pool member `seed`: how it was served.
async fn ask(client: &FederatedServiceClient, seed: u64) -> Result<String, String> {
    let request = Target::Ai.request(&mut SplitMix64::new(seed), Prompts::Unique);
    let response = client.call(AI, request).await.map_err(|e| e.to_string())?;
    if !response.status().is_success() {
        return Err(format!("ai answered {}", response.status()));
    }
    Ok(response.served().cache().as_str().to_owned())
}

async fn story(sandbox: &Sandbox, redis: &RedisServer, r: &mut RedisReport) -> Result<(), String> {
    let (a, b) = (process(sandbox, redis)?, process(sandbox, redis)?);
    until("both processes subscribe to the shared tier", || {
        [&a, &b].iter().all(|c| {
            let h = l2(c);
            h.connected && h.subscribed
        })
    })
    .await?;
    r.first_call = ask(&a, 1).await?;
    // A's answer reaches Redis in the background: B asks once it is there.
    until("process A stores its value in Redis", || l2(&a).stored >= 1).await?;
    r.second_process_call = ask(&b, 1).await?;
    r.second_process_l2_hits = l2(&b).hits;
    eprintln!(
        "   process A: {}, process B (same prompt): {} ({} value(s) found in Redis)",
        r.first_call, r.second_process_call, r.second_process_l2_hits
    );
    if r.first_call != "miss" || r.second_process_call != "hit" || r.second_process_l2_hits == 0 {
        return Err("process B did not find process A's value in Redis".to_owned());
    }

    a.invalidate(AI, AI_PATH);
    let took = until("process B receives process A's invalidation", || {
        l2(&b).invalidations_received >= 1
    })
    .await?;
    r.invalidation_ms = Some((took.as_secs_f64() * 1e6).round() / 1e3);
    r.after_invalidation = ask(&b, 1).await?;
    eprintln!(
        "   A invalidated {AI_PATH}: B received it within {:.1} ms and then served a {}",
        took.as_secs_f64() * 1e3,
        r.after_invalidation
    );
    if r.after_invalidation != "miss" {
        return Err("process B served the invalidated value".to_owned());
    }
    kill_mid_traffic(redis, &a, &b, r).await
}

/// Steady calls from both processes over a small prompt pool; Redis is killed half-way.
async fn kill_mid_traffic(
    redis: &RedisServer,
    a: &FederatedServiceClient,
    b: &FederatedServiceClient,
    r: &mut RedisReport,
) -> Result<(), String> {
    let drive = |client: FederatedServiceClient, seed: u64| {
        tokio::spawn(async move {
            let (mut calls, mut failed, mut rng) = (0, 0, SplitMix64::new(seed));
            let end = Instant::now() + 2 * TRAFFIC_HALF;
            while Instant::now() < end {
                let request = Target::Ai.request(&mut rng, Prompts::Pool(16));
                calls += 1;
                match client.call(AI, request).await {
                    Ok(response) if response.status().is_success() => {}
                    _ => failed += 1,
                }
                tokio::time::sleep(Duration::from_millis(20)).await;
            }
            (calls, failed)
        })
    };
    let tasks = [drive(a.clone(), 11), drive(b.clone(), 12)];
    tokio::time::sleep(TRAFFIC_HALF).await;
    eprintln!("   killing redis-server mid-traffic…");
    redis.kill();
    let degraded = until("the processes see the tier degraded", || {
        l2(a).degraded && l2(b).degraded
    })
    .await;
    r.degraded_seen = degraded.is_ok();
    for task in tasks {
        let (calls, failed) = task.await.map_err(|e| format!("traffic task: {e}"))?;
        r.calls_around_kill += calls;
        r.failed_around_kill += failed;
    }
    eprintln!(
        "   {} calls around the kill, {} failed",
        r.calls_around_kill, r.failed_around_kill
    );
    degraded?;
    if r.failed_around_kill > 0 {
        return Err(format!(
            "{} of {} calls failed after Redis was killed",
            r.failed_around_kill, r.calls_around_kill
        ));
    }
    Ok(())
}

/// The human lines of the phase (empty when skipped: the skip reason is printed on stderr).
pub fn render(r: &RedisReport) -> String {
    let mut out = String::new();
    if !r.ran {
        return out;
    }
    let _ = writeln!(out, "\nshared cache (Redis, two processes)");
    let _ = writeln!(
        out,
        "  A's call: {}; B's call of the same prompt: {} ({} L2 hit(s))",
        r.first_call, r.second_process_call, r.second_process_l2_hits
    );
    let ms = r
        .invalidation_ms
        .map_or("never".to_owned(), |ms| format!("{ms:.1} ms"));
    let _ = writeln!(
        out,
        "  A's invalidation seen by B: {ms}; B then served a {}",
        r.after_invalidation
    );
    let _ = writeln!(
        out,
        "  Redis killed mid-traffic: {} calls, {} failed (degraded seen: {})",
        r.calls_around_kill, r.failed_around_kill, r.degraded_seen
    );
    if let Some(e) = &r.error {
        let _ = writeln!(out, "  FAILED: {e}");
    }
    out
}
