//! The shared L2 tier across real processes on a real Redis: a value fetched by one process is
//! a hit in another, eight processes missing the same key at once make one upstream request,
//! an invalidation reaches every process, and a Redis restart never leads to a stale answer.

mod cache_l2_support;

use std::time::Duration;

use cache_l2_support::{Peer, client, get, parse_get, wait_stored, wait_subscribed, yaml};
use federation_testkit::instance::{Behavior, Identity, ServiceInstance};
use federation_testkit::redis::RedisServer;

/// Not a test: the entry point of the peer processes the tests below start (does nothing
/// unless started by `Peer::spawn`).
#[test]
fn peer_process() {
    cache_l2_support::peer_main();
}

async fn setup(l2_extra: &str) -> (RedisServer, ServiceInstance, String) {
    let redis = RedisServer::start().await.expect("redis-server starts");
    let instance = ServiceInstance::start(Identity::new("zervigo", "user-service", "u1"))
        .await
        .expect("instance starts");
    let port = redis.port().expect("tcp");
    let cfg = yaml(
        instance.port(),
        &format!("address: 127.0.0.1:{port}, timeout: 250ms{l2_extra}"),
    );
    (redis, instance, cfg)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_value_fetched_by_one_process_is_a_hit_in_another() {
    let (_redis, instance, cfg) = setup("").await;
    let here = client(&cfg);
    wait_subscribed(&here).await;
    let (status, cache, len) = get(&here, "/api/v1/users/42").await;
    wait_stored(&here, 1).await;
    assert_eq!((status, cache.as_str()), (200, "miss"));
    let mut peer = Peer::spawn(&cfg);
    let (status, cache, peer_len) = peer.get("/api/v1/users/42");
    assert_eq!((status, cache.as_str(), peer_len), (200, "hit", len));
    assert_eq!(
        instance.requests_for("/api/v1/users/42"),
        1,
        "one upstream request in all"
    );
    let health = parse_health(&peer.ask("health"));
    assert!(health["hits"].as_u64() >= Some(1), "{health}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn eight_processes_missing_the_same_key_make_one_upstream_request() {
    let (_redis, instance, cfg) = setup(", lease: 4s").await;
    let mut peers: Vec<Peer> = (0..8).map(|_| Peer::spawn(&cfg)).collect();
    instance.set_behavior(Behavior::delayed(Duration::from_millis(400)));
    for peer in &mut peers {
        peer.send("get /api/v1/infer/7");
    }
    for peer in &mut peers {
        let (status, _, _) = parse_get(&peer.recv());
        assert_eq!(status, 200);
    }
    assert_eq!(
        instance.requests_for("/api/v1/infer/7"),
        1,
        "the fleet fetched once"
    );
    let (won, waited) = peers.iter_mut().fold((0, 0), |(w, x), p| {
        let h = parse_health(&p.ask("health"));
        (
            w + h["leases_won"].as_u64().unwrap_or(0),
            x + h["leases_waited"].as_u64().unwrap_or(0),
        )
    });
    assert_eq!(won, 1, "one process held the lease");
    assert!(
        waited >= 1,
        "others waited for it (the rest found the value)"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_invalidation_reaches_four_processes() {
    let (_redis, instance, cfg) = setup("").await;
    let here = client(&cfg);
    wait_subscribed(&here).await;
    let mut peers: Vec<Peer> = (0..4).map(|_| Peer::spawn(&cfg)).collect();
    let (_, _, old_len) = get(&here, "/api/v1/users/9").await;
    wait_stored(&here, 1).await;
    for peer in &mut peers {
        let (_, cache, len) = peer.get("/api/v1/users/9");
        assert_eq!(len, old_len);
        assert_eq!(
            peer.get("/api/v1/users/9").1,
            "hit",
            "then from its own L1 ({cache} first)"
        );
    }
    // The record changes upstream; this process invalidates it.
    let new_len = old_len + 1000;
    instance.set_behavior(Behavior {
        body_size: Some(new_len),
        ..Behavior::default()
    });
    here.invalidate("user", "/api/v1/users/9");
    let (_, _, len) = get(&here, "/api/v1/users/9").await;
    assert_eq!(
        len, new_len,
        "the invalidating process never serves the old value"
    );
    for peer in &mut peers {
        let reply = peer.ask(&format!("until_len /api/v1/users/9 {new_len} 2000"));
        let micros: u64 = reply
            .strip_prefix("ok ")
            .and_then(|m| m.parse().ok())
            .unwrap_or_else(|| panic!("peer kept the old value: {reply}"));
        assert!(micros < 1_000_000, "propagated in {micros} µs");
        let h = parse_health(&peer.ask("health"));
        assert_eq!(h["invalidations_received"].as_u64(), Some(1), "{h}");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn after_a_redis_restart_no_process_serves_a_stale_value() {
    let (redis, instance, cfg) = setup("").await;
    let here = client(&cfg);
    wait_subscribed(&here).await;
    let mut peer = Peer::spawn(&cfg);
    let (_, _, old_len) = get(&here, "/api/v1/users/5").await;
    wait_stored(&here, 1).await;
    assert_eq!(peer.get("/api/v1/users/5").1, "hit");
    assert_eq!(peer.get("/api/v1/users/5").1, "hit", "now in the peer's L1");

    redis.kill();
    // While Redis is away the record changes and this process invalidates it: the message
    // cannot reach the peer.
    let new_len = old_len + 500;
    instance.set_behavior(Behavior {
        body_size: Some(new_len),
        ..Behavior::default()
    });
    here.invalidate("user", "/api/v1/users/5");
    assert_eq!(get(&here, "/api/v1/users/5").await.2, new_len);
    // The peer lost its subscription, so it dropped its L1: it never answers the old value.
    let reply = peer.ask(&format!("until_len /api/v1/users/5 {new_len} 3000"));
    assert!(
        reply.starts_with("ok"),
        "peer still served the old value: {reply}"
    );

    redis
        .restart()
        .await
        .expect("redis restarts on the same port");
    wait_subscribed(&here).await;
    assert_eq!(peer.ask("ready"), "ok");
    for _ in 0..5 {
        assert_eq!(peer.get("/api/v1/users/5").2, new_len);
        assert_eq!(get(&here, "/api/v1/users/5").await.2, new_len);
    }
    let h = parse_health(&peer.ask("health"));
    assert!(
        h["resyncs"].as_u64() >= Some(2),
        "dropped L1 on loss and on return: {h}"
    );
}

fn parse_health(reply: &str) -> serde_json::Value {
    let json = reply.strip_prefix("ok ").unwrap_or("null");
    serde_json::from_str(json).unwrap_or(serde_json::Value::Null)
}
