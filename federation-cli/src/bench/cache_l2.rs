//! G3 (shared tier): what an L2 hit costs next to a bare redis-rs `GET` of the same bytes on the
//! same server, and how fast an invalidation reaches 4 other processes.
//!
//! A shared cache tier is only worth having when reading through it costs about what reading
//! Redis directly does, and invalidations only help when every process hears them quickly.
//! Both are measured against a real `redis-server` started for the run (skipped, and said so,
//! where none is installed). The L2 hit runs through the SDK with L1 effectively off
//! (`max_bytes: 1`, so every call is an L1 miss answered from Redis). Propagation is measured by
//! 4 peer processes (this binary again, in peer mode) whose own
//! `federation_cache_l2_propagation_seconds` histograms record each message's delay.

use std::io::{BufRead, BufReader, Write};
use std::process::{Child, ChildStdin, Command, Stdio};
use std::sync::mpsc::{Receiver, channel};
use std::time::Duration;

use federation_core::client::{CacheStatus, FederatedServiceClient};
use federation_core::config::{Config, ConfigFormat};
use federation_testkit::redis::RedisServer;

use super::Settings;
use super::fixture;
use super::interleave::interleave;
use super::report::{GoalRow, Report, Verdict, comparison_table, fmt_ratio};
use super::runner::Load;
use super::target::Target;
use crate::exit::{CliError, Exit};

/// Environment variable that turns `federation bench` into a propagation peer (its value: the
/// configuration YAML).
const PEER: &str = "FEDERATION_BENCH_L2_PEER";

/// Operations per timed batch.
const BATCH: u32 = 10;

#[derive(Clone)]
enum Variant {
    Sdk(FederatedServiceClient),
    Redis(redis::aio::MultiplexedConnection, String),
}

impl std::fmt::Debug for Variant {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            Self::Sdk(_) => "Sdk",
            Self::Redis(..) => "Redis",
        })
    }
}

impl Target for Variant {
    async fn call(&self) -> bool {
        match self {
            Self::Sdk(client) => client
                .get(fixture::CACHED, fixture::PATH)
                .send()
                .await
                .is_ok_and(|r| r.served().cache() == CacheStatus::Hit),
            Self::Redis(conn, key) => {
                let mut conn = conn.clone();
                redis::cmd("GET")
                    .arg(key)
                    .query_async::<Option<Vec<u8>>>(&mut conn)
                    .await
                    .is_ok_and(|v| v.is_some())
            }
        }
    }
}

fn yaml(instance_port: u16, redis_port: u16) -> String {
    format!(
        "clusters:\n  {c}:\n    static:\n      {u}: [{{ address: 127.0.0.1, port: {instance_port} }}]\n\
         services:\n  {s}:\n    names: {{ {c}: {u} }}\n    cache: {{ ttl: 10m, methods: [GET], max_bytes: 1, \
         l2: {{ address: 127.0.0.1:{redis_port}, timeout: 50ms }} }}\n",
        c = fixture::CLUSTER,
        u = fixture::UPSTREAM,
        s = fixture::CACHED,
    )
}

fn client(yaml: &str) -> Result<FederatedServiceClient, CliError> {
    let config = Config::parse(yaml, ConfigFormat::Yaml)
        .map_err(|e| CliError::failure(format!("bench: cache l2 config: {e}")))?;
    Ok(FederatedServiceClient::from_config(config)?)
}

async fn ready(client: &FederatedServiceClient) -> Result<(), CliError> {
    for _ in 0..1000 {
        let h = client.health();
        if h.service(fixture::CACHED)
            .and_then(|s| s.cache_l2.as_ref())
            .is_some_and(|l2| l2.connected && l2.subscribed)
        {
            return Ok(());
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    Err(CliError::failure(
        "bench: cache l2: the tier never connected",
    ))
}

/// Runs the L2 comparisons and adds their table and goal rows (skipped without redis-server).
///
/// # Errors
/// When Redis or the clients cannot be set up, or the SDK never reports an L2 hit.
pub async fn run(settings: &Settings, report: &mut Report) -> Result<(), CliError> {
    if !federation_testkit::redis::available() {
        for what in [
            "Rust L2 hit vs a bare redis-rs GET (mean)",
            "invalidation propagation p99, 4 processes",
        ] {
            report.goal(GoalRow {
                id: "G3",
                what: what.into(),
                measured: "skipped: redis-server is not installed".into(),
                goal: String::new(),
                verdict: Verdict::Skipped,
            });
        }
        return Ok(());
    }
    let redis = RedisServer::start()
        .await
        .map_err(|e| CliError::failure(format!("bench: cache l2: {e}")))?;
    let instances = fixture::start_instances(1).await?;
    let redis_port = redis.port().unwrap_or_default();
    let cfg = yaml(instances[0].port(), redis_port);
    let sdk = client(&cfg)?;
    ready(&sdk).await?;
    sdk.get(fixture::CACHED, fixture::PATH).send().await?;
    let key = stored_key(&redis).await?;
    let conn = redis
        .connection()
        .await
        .map_err(|e| CliError::failure(format!("bench: cache l2: {e}")))?;
    let variants = [
        ("sdk L2 hit", Variant::Sdk(sdk.clone())),
        ("redis-rs GET", Variant::Redis(conn, key)),
    ];
    let cmp = interleave(
        "cache-l2",
        &variants,
        Load::Micro { batch: BATCH },
        settings.plan,
    )
    .await;
    if cmp.median_of(0).errors > 0 {
        return Err(CliError::failure(
            "bench: cache l2: the SDK did not answer the primed GET from Redis",
        ));
    }
    let mut section = String::from(
        "### cache L2 (G3): SDK L2 hit (L1 off) vs a bare redis-rs GET of the same key\n\n",
    );
    section.push_str(&comparison_table(
        &format!("per operation, timed in batches of {BATCH}"),
        &cmp,
    ));
    let mean = |s: &super::stats::Sample| s.mean.as_secs_f64();
    let (ratio, reps) = cmp.ratio(0, 1, mean);
    report.goal(GoalRow {
        id: "G3",
        what: "Rust L2 hit vs a bare redis-rs GET of the same bytes (mean)".into(),
        measured: fmt_ratio(ratio, &reps),
        goal: "≤ 1.3x".into(),
        verdict: Verdict::of(ratio <= 1.3),
    });
    let messages = if settings.smoke { 20 } else { 300 };
    let p99 = propagation(&cfg, &sdk, messages).await?;
    section.push_str(&format!(
        "\nInvalidation propagation to 4 peer processes, {messages} invalidations 5 ms apart: \
         p99 ≤ {:.2} ms (upper bound of the histogram bucket holding the 99th percentile).\n",
        p99 * 1e3
    ));
    report.section(section);
    report.goal(GoalRow {
        id: "G3",
        what: "invalidation propagation p99 across 4 processes (loopback)".into(),
        measured: format!("≤ {:.2} ms", p99 * 1e3),
        goal: "≤ 10 ms".into(),
        verdict: Verdict::of(p99 <= 0.010),
    });
    Ok(())
}

async fn stored_key(redis: &RedisServer) -> Result<String, CliError> {
    for _ in 0..500 {
        if let Ok(keys) = redis.keys("*:v:*").await
            && let Some(key) = keys.into_iter().next()
        {
            return Ok(key);
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    Err(CliError::failure(
        "bench: cache l2: the value never reached Redis",
    ))
}

/// A peer process (killed by pid when dropped).
struct Peer {
    child: Child,
    stdin: ChildStdin,
    lines: Receiver<String>,
}

impl Peer {
    fn spawn(cfg: &str) -> Result<Self, CliError> {
        let exe = std::env::current_exe()
            .map_err(|e| CliError::failure(format!("bench: cache l2: own path: {e}")))?;
        let mut child = Command::new(exe)
            .args(["bench", "--scenario", "cache"])
            .env(PEER, cfg)
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit())
            .spawn()
            .map_err(|e| CliError::failure(format!("bench: cache l2: peer: {e}")))?;
        let (Some(stdin), Some(stdout)) = (child.stdin.take(), child.stdout.take()) else {
            return Err(CliError::failure("bench: cache l2: peer pipes"));
        };
        let (tx, lines) = channel();
        std::thread::spawn(move || {
            for line in BufReader::new(stdout).lines().map_while(Result::ok) {
                if tx.send(line).is_err() {
                    return;
                }
            }
        });
        Ok(Self {
            child,
            stdin,
            lines,
        })
    }

    fn ask(&mut self, line: &str) -> Result<String, CliError> {
        writeln!(self.stdin, "{line}")
            .and_then(|()| self.stdin.flush())
            .map_err(|e| CliError::failure(format!("bench: cache l2: peer: {e}")))?;
        self.lines
            .recv_timeout(Duration::from_secs(30))
            .map_err(|_| CliError::failure("bench: cache l2: a peer did not answer"))
    }
}

impl Drop for Peer {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Sends `messages` invalidations from `sdk` and returns the p99 delay (seconds) seen by 4
/// peers, merged from their histograms.
async fn propagation(
    cfg: &str,
    sdk: &FederatedServiceClient,
    messages: usize,
) -> Result<f64, CliError> {
    let mut peers = (0..4)
        .map(|_| Peer::spawn(cfg))
        .collect::<Result<Vec<_>, _>>()?;
    for peer in &mut peers {
        if peer.ask("ready")? != "ready" {
            return Err(CliError::failure(
                "bench: cache l2: a peer did not get ready",
            ));
        }
    }
    for i in 0..messages {
        sdk.invalidate(fixture::CACHED, &format!("/p/{i}"));
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    let mut buckets: Vec<(f64, u64)> = Vec::new();
    for peer in &mut peers {
        let mut received = String::new();
        for _ in 0..200 {
            received = peer.ask("stats")?;
            if received
                .split(' ')
                .next_back()
                .and_then(|n| n.parse::<usize>().ok())
                == Some(messages)
            {
                break;
            }
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
        merge(&mut buckets, &received);
    }
    let total = buckets.last().map_or(0, |b| b.1);
    let need = (total as f64 * 0.99).ceil() as u64;
    Ok(buckets
        .iter()
        .find(|(_, count)| *count >= need)
        .map_or(f64::INFINITY, |(le, _)| *le))
}

/// Adds a peer's `stats` reply (`le=count ...` cumulative, then the total) to `into`.
fn merge(into: &mut Vec<(f64, u64)>, reply: &str) {
    for part in reply.split(' ') {
        let Some((le, count)) = part.split_once('=') else {
            continue;
        };
        let (Ok(le), Ok(count)) = (le.parse::<f64>(), count.parse::<u64>()) else {
            continue;
        };
        match into.iter_mut().find(|(l, _)| *l == le) {
            Some(slot) => slot.1 += count,
            None => into.push((le, count)),
        }
    }
    into.sort_by(|a, b| a.0.total_cmp(&b.0));
}

/// Peer mode: when [`PEER`] is set, serve `ready` and `stats` on stdin/stdout instead of
/// benchmarking. `None` when not a peer.
pub async fn peer_mode() -> Option<Result<Exit, CliError>> {
    let cfg = std::env::var(PEER).ok()?;
    Some(serve_peer(&cfg).await)
}

async fn serve_peer(cfg: &str) -> Result<Exit, CliError> {
    let client = client(cfg)?;
    let (tx, mut rx) = tokio::sync::mpsc::unbounded_channel::<String>();
    std::thread::spawn(move || {
        for line in std::io::stdin().lock().lines().map_while(Result::ok) {
            if tx.send(line).is_err() {
                return;
            }
        }
    });
    while let Some(line) = rx.recv().await {
        let reply = match line.as_str() {
            "ready" => ready(&client).await.map(|()| "ready".to_owned())?,
            "stats" => stats(&client),
            other => format!("unknown {other}"),
        };
        println!("{reply}");
    }
    Ok(Exit::Ok)
}

/// `le=count` pairs of this process's propagation histogram, then the messages received.
fn stats(client: &FederatedServiceClient) -> String {
    let text = client.metrics_text();
    let mut out = Vec::new();
    for line in text.lines() {
        let Some(rest) = line.strip_prefix("federation_cache_l2_propagation_seconds_bucket{")
        else {
            continue;
        };
        let le = rest.split("le=\"").nth(1).and_then(|s| s.split('"').next());
        let count = line.rsplit(' ').next();
        if let (Some(le), Some(count)) = (le, count) {
            let le = if le == "+Inf" { "inf" } else { le };
            out.push(format!("{le}={count}"));
        }
    }
    let received = client
        .health()
        .service(fixture::CACHED)
        .and_then(|s| s.cache_l2.as_ref())
        .map_or(0, |l2| l2.invalidations_received);
    out.push(received.to_string());
    out.join(" ")
}
