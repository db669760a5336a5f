//! `federation sandbox --redis`: the sandbox with a real Redis whose address the written
//! configuration gives the cached services as their shared `cache.l2` tier, so two clients of
//! that configuration share cached answers.

use std::path::PathBuf;
use std::process::{Child, Command};
use std::time::Duration;

use federation_core::client::{CacheStatus, FederatedServiceClient};
use federation_core::config::Config;

/// The running `federation sandbox`, stopped with Ctrl-C (SIGINT) by its pid when dropped, so
/// it stops its own Redis server; killed if it does not exit within 10 s.
struct Running(Child);

impl Drop for Running {
    fn drop(&mut self) {
        let pid = self.0.id().to_string();
        let _ = Command::new("kill").args(["-INT", &pid]).status();
        for _ in 0..100 {
            if matches!(self.0.try_wait(), Ok(Some(_))) {
                return;
            }
            std::thread::sleep(Duration::from_millis(100));
        }
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

async fn ready(client: &FederatedServiceClient) {
    for _ in 0..1000 {
        let h = client.health();
        if h.service("ai")
            .and_then(|s| s.cache_l2.as_ref())
            .is_some_and(|l2| l2.connected && l2.subscribed)
        {
            return;
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    panic!(
        "the ai service's L2 tier never connected: {}",
        client.health().to_json_pretty()
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sandbox_with_redis_gives_cached_services_a_shared_tier() {
    if !federation_testkit::redis::available() {
        eprintln!("skipped: redis-server is not installed");
        return;
    }
    let path: PathBuf =
        std::env::temp_dir().join(format!("federation-cli-{}-redis.yaml", std::process::id()));
    let _ = std::fs::remove_file(&path);
    let child = Command::new(env!("CARGO_BIN_EXE_federation"))
        .args(["sandbox", "--redis", "--write-config"])
        .arg(&path)
        .spawn()
        .expect("federation sandbox starts");
    let _running = Running(child);
    let mut config = None;
    for _ in 0..600 {
        if let Ok(parsed) = Config::from_file(&path) {
            config = Some(parsed);
            break;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let config = config.expect("the sandbox wrote its configuration");
    let text = std::fs::read_to_string(&path).expect("config text");
    assert!(text.contains("l2: { address: \"127.0.0.1:"), "{text}");
    let a = FederatedServiceClient::from_config(config.clone()).expect("client a");
    let b = FederatedServiceClient::from_config(config).expect("client b");
    ready(&a).await;
    ready(&b).await;
    let first = a.get("ai", "/v1/models").send().await.expect("a calls ai");
    assert_eq!(first.served().cache(), CacheStatus::Miss);
    let mut status = CacheStatus::Miss;
    for _ in 0..100 {
        // The store reaches Redis in the background; until then b fetches itself (and then
        // answers from its own L1, which is not what is asked here: use fresh clients).
        let probe = FederatedServiceClient::from_config(Config::from_file(&path).expect("config"))
            .expect("probe client");
        ready(&probe).await;
        status = probe
            .get("ai", "/v1/models")
            .send()
            .await
            .expect("probe calls")
            .served()
            .cache();
        if status == CacheStatus::Hit {
            break;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    assert_eq!(
        status,
        CacheStatus::Hit,
        "a fresh client finds a's answer in Redis"
    );
    let _ = std::fs::remove_file(&path);
    drop(b);
}
