//! Shared helpers of the L2 cache tests: configurations pointing a `user` service at one
//! loopback instance with a Redis tier, and *peers*: other processes (this test binary run
//! again as `peer_process`) each with their own client, driven over stdin/stdout, so "another
//! process" in these tests is a real one with its own memory.
#![allow(dead_code, reason = "each test file uses a different subset")]

use std::io::{BufRead, BufReader, Write};
use std::process::{Child, ChildStdin, Command, Stdio};
use std::sync::mpsc::{Receiver, RecvTimeoutError, channel};
use std::time::Duration;

use federation_core::client::FederatedServiceClient;
use federation_core::config::{Config, ConfigFormat};
use federation_testkit::instance::{Identity, ServiceInstance};
use federation_testkit::redis::RedisServer;

/// Environment variable carrying a peer's configuration (YAML).
const PEER_CONFIG: &str = "FEDERATION_L2_PEER_CONFIG";

/// A configuration: service `user` on the instance at `port`, cached 60 s, with `cache.l2`
/// given as YAML flow-map entries (`address: 127.0.0.1:6379, timeout: 50ms`).
pub fn yaml(port: u16, l2: &str) -> String {
    yaml_cache(port, "ttl: 60s", l2)
}

/// Like [`yaml`] with the other `cache` entries given (`ttl: 1s, stale_if_error: 30s`).
pub fn yaml_cache(port: u16, cache: &str, l2: &str) -> String {
    format!(
        "clusters:\n  zervigo:\n    static:\n      user-service:\n        - {{ address: 127.0.0.1, port: {port} }}\n\
         services:\n  user:\n    names: {{ zervigo: user-service }}\n    timeout: {{ attempt: 2s, total: 5s }}\n\
         \x20   cache: {{ {cache}, l2: {{ {l2} }} }}\n"
    )
}

/// A client of `yaml`.
pub fn client(yaml: &str) -> FederatedServiceClient {
    let config = Config::parse(yaml, ConfigFormat::Yaml).expect("test configuration parses");
    FederatedServiceClient::from_config(config).expect("client builds")
}

/// Waits until `client` has written `count` values to Redis: a call returns before its
/// background write lands, so another process asking right away can still miss.
pub async fn wait_stored(client: &FederatedServiceClient, count: u64) {
    let until = tokio::time::Instant::now() + Duration::from_secs(10);
    loop {
        let health = client.health();
        let l2 = health.service("user").and_then(|s| s.cache_l2.clone());
        if l2.as_ref().is_some_and(|h| h.stored >= count) {
            return;
        }
        assert!(
            tokio::time::Instant::now() < until,
            "{count} value(s) not stored in Redis: {l2:?}"
        );
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
}

/// Waits until the client's `user` tier is connected and subscribed (other processes'
/// invalidations arrive), or panics after 10 s.
pub async fn wait_subscribed(client: &FederatedServiceClient) {
    let until = tokio::time::Instant::now() + Duration::from_secs(10);
    loop {
        let health = client.health();
        let l2 = health.service("user").and_then(|s| s.cache_l2.clone());
        if l2.as_ref().is_some_and(|h| h.connected && h.subscribed) {
            return;
        }
        assert!(
            tokio::time::Instant::now() < until,
            "tier not subscribed: {l2:?}"
        );
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
}

/// One `GET` of `user` `path`: (status, cache status, body length).
pub async fn get(client: &FederatedServiceClient, path: &str) -> (u16, String, usize) {
    let response = client
        .get("user", path)
        .send()
        .await
        .expect("call succeeds");
    let status = response.status().as_u16();
    let cache = response.served().cache().as_str().to_owned();
    (status, cache, response.body().len())
}

/// Another process with its own client, killed by pid when dropped.
pub struct Peer {
    child: Child,
    stdin: ChildStdin,
    lines: Receiver<String>,
}

impl Peer {
    /// Starts this test binary again as `peer_process` with `yaml`, and waits until its tier is
    /// subscribed.
    pub fn spawn(yaml: &str) -> Peer {
        Self::spawn_with_env(yaml, &[])
    }

    /// [`spawn`](Self::spawn) with extra environment variables.
    pub fn spawn_with_env(yaml: &str, env: &[(&str, &str)]) -> Peer {
        let mut peer = Self::spawn_unready_with_env(yaml, env);
        let ready = peer.ask("ready");
        assert_eq!(ready, "ok", "peer ready");
        peer
    }

    /// Starts a peer without waiting for its tier.
    pub fn spawn_unready_with_env(yaml: &str, env: &[(&str, &str)]) -> Peer {
        let exe = std::env::current_exe().expect("test binary path");
        let mut child = Command::new(exe)
            .args([
                "--exact",
                "peer_process",
                "--nocapture",
                "--test-threads",
                "1",
            ])
            .env(PEER_CONFIG, yaml)
            .envs(env.iter().copied())
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit())
            .spawn()
            .expect("peer process starts");
        let stdin = child.stdin.take().expect("piped stdin");
        let stdout = child.stdout.take().expect("piped stdout");
        let (tx, lines) = channel();
        std::thread::spawn(move || {
            for line in BufReader::new(stdout).lines().map_while(Result::ok) {
                // libtest may print `test peer_process ... ` before the first reply.
                if let Some(at) = line.find("@@ ")
                    && tx.send(line[at + 3..].to_owned()).is_err()
                {
                    return;
                }
            }
        });
        Peer {
            child,
            stdin,
            lines,
        }
    }

    /// Sends one command line.
    pub fn send(&mut self, line: &str) {
        writeln!(self.stdin, "{line}").expect("peer reads commands");
        self.stdin.flush().expect("peer reads commands");
    }

    /// The next reply (30 s at most).
    pub fn recv(&mut self) -> String {
        match self.lines.recv_timeout(Duration::from_secs(30)) {
            Ok(line) => line,
            Err(RecvTimeoutError::Timeout) => {
                panic!("peer {} did not answer in 30 s", self.child.id())
            }
            Err(RecvTimeoutError::Disconnected) => panic!("peer {} exited", self.child.id()),
        }
    }

    /// A command and its reply.
    pub fn ask(&mut self, line: &str) -> String {
        self.send(line);
        self.recv()
    }

    /// `get <path>` in the peer: (status, cache status, body length).
    pub fn get(&mut self, path: &str) -> (u16, String, usize) {
        parse_get(&self.ask(&format!("get {path}")))
    }
}

impl Drop for Peer {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// `ok <status> <cache> <len>` as a tuple; panics on anything else.
pub fn parse_get(reply: &str) -> (u16, String, usize) {
    let parts: Vec<&str> = reply.split(' ').collect();
    match parts.as_slice() {
        ["ok", status, cache, len] => (
            status.parse().expect("status"),
            (*cache).to_owned(),
            len.parse().expect("length"),
        ),
        _ => panic!("peer call failed: {reply}"),
    }
}

/// The body of `peer_process`: nothing unless started by [`Peer::spawn`].
pub fn peer_main() {
    let Ok(yaml) = std::env::var(PEER_CONFIG) else {
        return;
    };
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .expect("runtime");
    runtime.block_on(async move {
        let client = client(&yaml);
        let (tx, mut rx) = tokio::sync::mpsc::unbounded_channel::<String>();
        std::thread::spawn(move || {
            for line in std::io::stdin().lock().lines().map_while(Result::ok) {
                if tx.send(line).is_err() {
                    return;
                }
            }
        });
        while let Some(line) = rx.recv().await {
            let reply = serve(&client, &line).await;
            println!("@@ {reply}");
        }
    });
}

async fn serve(client: &FederatedServiceClient, line: &str) -> String {
    let mut words = line.split(' ');
    match (words.next(), words.next(), words.next(), words.next()) {
        (Some("ready"), ..) => {
            wait_subscribed(client).await;
            "ok".to_owned()
        }
        (Some("get"), Some(path), ..) => match client.get("user", path).send().await {
            Ok(response) => {
                let status = response.status().as_u16();
                let cache = response.served().cache().as_str().to_owned();
                format!("ok {status} {cache} {}", response.body().len())
            }
            Err(e) => format!("err {e}"),
        },
        (Some("invalidate"), Some(path), ..) => {
            client.invalidate("user", path);
            "ok".to_owned()
        }
        // Polls `path` until its body has `len` bytes; replies the microseconds it took.
        (Some("until_len"), Some(path), Some(len), Some(limit_ms)) => {
            let len: usize = len.parse().unwrap_or(0);
            let limit = Duration::from_millis(limit_ms.parse().unwrap_or(1000));
            let start = std::time::Instant::now();
            loop {
                let (_, _, got) = get(client, path).await;
                if got == len {
                    return format!("ok {}", start.elapsed().as_micros());
                }
                if start.elapsed() > limit {
                    return format!("err still {got} bytes after {limit:?}");
                }
                tokio::time::sleep(Duration::from_micros(200)).await;
            }
        }
        (Some("health"), ..) => {
            let health = client.health();
            let l2 = health.service("user").and_then(|s| s.cache_l2.clone());
            format!("ok {}", serde_json::to_string(&l2).unwrap_or_default())
        }
        _ => format!("err unknown command {line:?}"),
    }
}

/// A `user-service` instance of zervigo on a free loopback port.
pub async fn instance() -> ServiceInstance {
    ServiceInstance::start(Identity::new("zervigo", "user-service", "u1"))
        .await
        .expect("instance starts")
}
/// The `user` service's L2 health entry.
pub fn l2_health(client: &FederatedServiceClient) -> federation_core::telemetry::L2Health {
    client
        .health()
        .service("user")
        .and_then(|s| s.cache_l2.clone())
        .expect("user has an L2 tier")
}
/// Polls `cond` every 10 ms until it holds or `limit` passes; the last answer.
pub async fn wait_for(limit: Duration, mut cond: impl FnMut() -> bool) -> bool {
    let until = tokio::time::Instant::now() + limit;
    while tokio::time::Instant::now() < until {
        if cond() {
            return true;
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    cond()
}
/// Keys matching `pattern` (a blocking helper for `wait_for` conditions).
pub fn keys_now(redis: &RedisServer, pattern: &str) -> usize {
    let url = redis.url();
    let pattern = pattern.to_owned();
    std::thread::spawn(move || {
        let client = redis::Client::open(url).ok()?;
        let mut conn = client.get_connection().ok()?;
        let keys: Vec<String> = redis::cmd("KEYS").arg(pattern).query(&mut conn).ok()?;
        Some(keys.len())
    })
    .join()
    .ok()
    .flatten()
    .unwrap_or(usize::MAX)
}
