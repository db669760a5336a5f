//! The shared L2 tier's options against real `redis-server` processes: values over the size
//! bound (L1 only), a unix socket, a password from the environment, stale windows across tiers,
//! invalidation from outside a runtime, and configuration errors. Failure modes: cache_l2.rs.

mod cache_l2_support;

use std::time::Duration;

use cache_l2_support::{
    Peer, client, get, instance, keys_now, l2_health, wait_for, wait_subscribed, yaml, yaml_cache,
};
use federation_core::client::FederatedServiceClient;
use federation_core::config::{Config, ConfigFormat};
use federation_testkit::instance::Behavior;
use federation_testkit::redis::RedisServer;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn values_over_the_bound_stay_in_l1_only() {
    let redis = RedisServer::start().await.expect("redis-server starts");
    let upstream = instance().await;
    let port = redis.port().expect("tcp");
    let cfg = yaml(
        upstream.port(),
        &format!("address: 127.0.0.1:{port}, timeout: 250ms, max_value_bytes: 2KiB"),
    );
    let (a, b) = (client(&cfg), client(&cfg));
    wait_subscribed(&a).await;
    wait_subscribed(&b).await;
    // Small: shared.
    get(&a, "/small").await;
    assert!(
        wait_for(Duration::from_secs(2), || {
            keys_now(&redis, "*/small*") == 1
        })
        .await
    );
    assert!(wait_for(Duration::from_secs(2), || l2_health(&a).stored == 1).await);
    assert_eq!(get(&b, "/small").await.1, "hit");
    // Large: each client fetches it itself.
    upstream.set_behavior(Behavior {
        body_size: Some(8 * 1024),
        ..Behavior::default()
    });
    assert_eq!(get(&a, "/large").await.2, 8 * 1024);
    assert!(wait_for(Duration::from_secs(2), || l2_health(&a).oversized == 1).await);
    let (_, cache, len) = get(&b, "/large").await;
    assert_eq!((cache.as_str(), len), ("miss", 8 * 1024));
    assert_eq!(upstream.requests_for("/large"), 2);
    assert_eq!(get(&a, "/large").await.1, "hit", "still in L1");
    // b's fleet lease on /large (`…lease:user:…/large…`) is released in the background after its
    // fetch; once it is gone no key of /large may remain (a stored value would live 60 s).
    assert!(
        wait_for(Duration::from_secs(2), || keys_now(&redis, "*/large*") == 0).await,
        "a key of the oversized value stayed in Redis: {}",
        keys_now(&redis, "*/large*")
    );
    assert_eq!(
        l2_health(&a).stored,
        1,
        "the oversized value was not stored"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_unix_socket_tier_shares_values_and_counts_them() {
    let redis = RedisServer::start_unix()
        .await
        .expect("redis-server starts");
    let upstream = instance().await;
    let socket = redis.socket_path().expect("unix");
    let cfg = yaml(
        upstream.port(),
        &format!("unix_socket: {}, timeout: 250ms", socket.display()),
    );
    let (a, b) = (client(&cfg), client(&cfg));
    wait_subscribed(&a).await;
    wait_subscribed(&b).await;
    assert_eq!(get(&a, "/api/v1/users/1").await.1, "miss");
    // The store runs in the background: wait until it landed, then b (empty L1) reads it.
    let mut stored = false;
    for _ in 0..200 {
        if redis
            .keys("*/api/v1/users/1 *")
            .await
            .is_ok_and(|k| k.len() == 1)
        {
            stored = true;
            break;
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    assert!(stored, "the value reached Redis over the socket");
    assert_eq!(get(&b, "/api/v1/users/1").await.1, "hit");
    assert_eq!(upstream.requests_for("/api/v1/users/1"), 1);
    let text = b.metrics_text();
    assert!(
        text.contains("federation_cache_l2_events_total{service=\"user\",event=\"hit\"}"),
        "{text}"
    );
    assert!(
        text.contains("federation_cache_l2_operation_seconds_count{service=\"user\",op=\"get\"}"),
        "{text}"
    );
}

#[test]
fn l2_configuration_errors_name_the_field() {
    let bad = |l2: &str| {
        let text = yaml(8080, l2);
        match Config::parse(&text, ConfigFormat::Yaml) {
            Ok(config) => FederatedServiceClient::from_config(config)
                .err()
                .map(|e| e.to_string())
                .unwrap_or_default(),
            Err(e) => e.to_string(),
        }
    };
    let both = bad("address: 127.0.0.1:6379, cluster: [127.0.0.1:7000]");
    assert!(
        both.contains("services.user.cache.l2") && both.contains("exactly one"),
        "{both}"
    );
    let addr = bad("address: localhost");
    assert!(
        addr.contains("services.user.cache.l2.address") && addr.contains("host:port"),
        "{addr}"
    );
    let slow = bad("address: 127.0.0.1:6379, timeout: 5s");
    assert!(
        slow.contains("services.user.cache.l2.timeout") && slow.contains("at most 1s"),
        "{slow}"
    );
    let typo = bad("adress: 127.0.0.1:6379");
    assert!(typo.contains("did you mean `address`"), "{typo}");
    let var = "FEDERATION_TEST_L2_PASSWORD_NEVER_SET";
    let missing = bad(&format!("address: 127.0.0.1:6379, password_env: {var}"));
    assert!(
        missing.contains("services.user.cache.l2.password_env") && missing.contains(var),
        "{missing}"
    );
}

/// Not a test: the entry point of the peer processes the tests below start (does nothing
/// unless started by `Peer::spawn`).
#[test]
fn peer_process() {
    cache_l2_support::peer_main();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_password_comes_from_the_environment_and_is_never_shown() {
    let secret = "s3cret-l2-password";
    let redis = RedisServer::start_with_args(&["--requirepass", secret])
        .await
        .expect("redis-server starts");
    let upstream = instance().await;
    let port = redis.port().expect("tcp");
    let var = "FEDERATION_TEST_L2_PASSWORD";
    let cfg = yaml(
        upstream.port(),
        &format!("address: 127.0.0.1:{port}, timeout: 250ms, password_env: {var}"),
    );
    // A process whose environment holds the password (this one's does not).
    let mut peer = Peer::spawn_with_env(&cfg, &[(var, secret)]);
    assert_eq!(peer.get("/p").0, 200);
    let health = peer.ask("health");
    assert!(
        health.contains("\"connected\":true") && health.contains("\"degraded\":false"),
        "{health}"
    );
    assert!(!health.contains(secret));
    // With a wrong password the tier stays disconnected; calls still work.
    let mut wrong = Peer::spawn_unready_with_env(&cfg, &[(var, "wrong")]);
    assert_eq!(wrong.get("/p").0, 200);
    let health = wrong.ask("health");
    assert!(
        health.contains("\"connected\":false") && !health.contains("wrong"),
        "{health}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn stale_windows_hold_across_tiers() {
    let redis = RedisServer::start().await.expect("redis-server starts");
    let upstream = instance().await;
    let port = redis.port().expect("tcp");
    let cfg = yaml_cache(
        upstream.port(),
        "ttl: 300ms, stale_while_revalidate: 1s, stale_if_error: 30s",
        &format!("address: 127.0.0.1:{port}, timeout: 250ms"),
    );
    let writer = client(&cfg);
    wait_subscribed(&writer).await;
    get(&writer, "/swr").await;
    get(&writer, "/sie").await;
    tokio::time::sleep(Duration::from_millis(500)).await;

    // A client with an empty L1 finds /swr past its TTL in L2, within stale-while-revalidate:
    // served at once as stale, refreshed once in the background.
    let reader = client(&cfg);
    wait_subscribed(&reader).await;
    let (status, cache, _) = get(&reader, "/swr").await;
    assert_eq!((status, cache.as_str()), (200, "stale"));
    assert!(
        wait_for(Duration::from_secs(2), || upstream.requests_for("/swr")
            == 2)
        .await,
        "one background refresh"
    );

    // Upstream fails: /sie, past its TTL and its revalidate window in L2 but within
    // stale-if-error, answers from L2 for a client that never saw it.
    tokio::time::sleep(Duration::from_millis(1000)).await;
    upstream.set_behavior(Behavior::status(503));
    let third = client(&cfg);
    wait_subscribed(&third).await;
    let (status, cache, _) = get(&third, "/sie").await;
    assert_eq!((status, cache.as_str()), (200, "stale"));
    let (status, cache, _) = get(&third, "/never-stored").await;
    assert_eq!(
        (status, cache.as_str()),
        (503, "miss"),
        "no value: the error"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_invalidation_from_a_thread_outside_any_runtime_is_published() {
    // Bindings call `invalidate` from their own threads (Python, Go, C), outside tokio.
    let redis = RedisServer::start().await.expect("redis-server starts");
    let upstream = instance().await;
    let port = redis.port().expect("tcp");
    let cfg = yaml(
        upstream.port(),
        &format!("address: 127.0.0.1:{port}, timeout: 250ms"),
    );
    let (a, b) = (client(&cfg), client(&cfg));
    wait_subscribed(&a).await;
    wait_subscribed(&b).await;
    let from_a = a.clone();
    std::thread::spawn(move || from_a.invalidate("user", "/u/1"))
        .join()
        .expect("thread ran");
    assert!(
        wait_for(Duration::from_secs(5), || l2_health(&b)
            .invalidations_received
            == 1)
        .await,
        "{:?}",
        l2_health(&b)
    );
    assert!(
        wait_for(Duration::from_secs(5), || l2_health(&a).invalidations_sent
            == 1)
        .await
    );
}
