//! Coherence hooks on a real Redis tier: `invalidate_entity` drops an entity's mapped paths in
//! every process (what data sync calls after applying a change), and warm-up fetches the
//! configured list at start with bounded concurrency, reported in health.

mod cache_l2_support;

use std::time::{Duration, Instant};

use cache_l2_support::{Peer, client, get, wait_subscribed, yaml_cache};
use federation_core::config::{Config, ConfigFormat};
use federation_testkit::instance::{Behavior, Identity, ServiceInstance};
use federation_testkit::redis::RedisServer;

/// Not a test: the entry point of the peer processes the tests below start (does nothing
/// unless started by `Peer::spawn`).
#[test]
fn peer_process() {
    cache_l2_support::peer_main();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_entity_change_drops_its_mapped_paths_in_every_process() {
    let redis = RedisServer::start().await.expect("redis-server starts");
    let upstream = ServiceInstance::start(Identity::new("zervigo", "user-service", "u1"))
        .await
        .expect("instance starts");
    let cfg = yaml_cache(
        upstream.port(),
        r#"ttl: 60s, entities: { user: ["/api/v1/users/{id}", "/api/v1/users/{id}/*"] }"#,
        &format!(
            "address: 127.0.0.1:{}, timeout: 250ms",
            redis.port().expect("tcp")
        ),
    );
    let here = client(&cfg);
    wait_subscribed(&here).await;
    let mut peer = Peer::spawn(&cfg);
    let paths = [
        "/api/v1/users/42",
        "/api/v1/users/42/orders",
        "/api/v1/users/43",
    ];
    let old = get(&here, paths[0]).await.2;
    for path in paths {
        get(&here, path).await;
        peer.get(path);
        assert_eq!(peer.get(path).1, "hit");
    }
    let new = old + 700;
    upstream.set_behavior(Behavior {
        body_size: Some(new),
        ..Behavior::default()
    });
    assert_eq!(
        here.invalidate_entity("user", "42"),
        2,
        "two templates map `user`"
    );
    assert_eq!(
        here.invalidate_entity("order", "42"),
        0,
        "nothing maps `order`"
    );
    for path in &paths[..2] {
        assert_eq!(get(&here, path).await.2, new);
        let reply = peer.ask(&format!("until_len {path} {new} 2000"));
        assert!(reply.starts_with("ok "), "{path}: {reply}");
    }
    let (_, cache, len) = peer.get(paths[2]);
    assert_eq!((cache.as_str(), len), ("hit", old), "user 43 untouched");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_configured_warm_up_list_is_fetched_at_start_with_bounded_concurrency() {
    let redis = RedisServer::start().await.expect("redis-server starts");
    let upstream = ServiceInstance::start(Identity::new("zervigo", "user-service", "u1"))
        .await
        .expect("instance starts");
    upstream.set_behavior(Behavior::delayed(Duration::from_millis(100)));
    let cfg = yaml_cache(
        upstream.port(),
        "ttl: 60s, warm: [/w/1, /w/2, /w/3, /w/4, /w/5, /w/6], warm_concurrency: 2",
        &format!(
            "address: 127.0.0.1:{}, timeout: 250ms",
            redis.port().expect("tcp")
        ),
    );
    let start = Instant::now();
    let c = client(&cfg);
    let mut most_in_flight = 0;
    let warm = loop {
        let warm = c
            .health()
            .service("user")
            .and_then(|s| s.cache_warm.clone());
        if let Some(w) = &warm {
            most_in_flight = most_in_flight.max(w.in_flight);
            if w.fetched + w.failed == 6 {
                break warm;
            }
        }
        assert!(
            start.elapsed() < Duration::from_secs(10),
            "warm-up stalled: {warm:?}"
        );
        tokio::time::sleep(Duration::from_millis(5)).await;
    };
    let took = start.elapsed();
    let warm = warm.expect("reported");
    assert_eq!((warm.planned, warm.fetched, warm.failed), (6, 6, 0));
    assert!(
        most_in_flight <= 2,
        "at most 2 at once, saw {most_in_flight}"
    );
    assert!(
        took >= Duration::from_millis(280),
        "6 × 100 ms two at a time: {took:?}"
    );
    for i in 1..=6 {
        assert_eq!(get(&c, &format!("/w/{i}")).await.1, "hit");
    }
    assert_eq!(upstream.requests(), 6);

    // `warm` on demand: failures are counted, unknown services are errors.
    upstream.set_behavior(Behavior::status(503));
    let report = c
        .warm("user", &["/x/1".to_owned(), "/x/2".to_owned()])
        .await
        .expect("warm runs");
    assert_eq!((report.fetched, report.failed), (0, 2));
    let err = c.warm("nope", &[]).await.expect_err("unknown service");
    assert!(err.to_string().contains("unknown service `nope`"), "{err}");
}

#[test]
fn bad_warm_and_entity_settings_name_the_field() {
    let text = yaml_cache(
        8080,
        r#"ttl: 60s, warm: [users], warm_concurrency: 0, entities: { user: ["/api/v1/users"] }"#,
        "address: 127.0.0.1:6379",
    );
    let err = Config::parse(&text, ConfigFormat::Yaml).expect_err("three problems");
    let text = err.to_string();
    assert!(text.contains("services.user.cache.warm[0]"), "{text}");
    assert!(
        text.contains("services.user.cache.warm_concurrency"),
        "{text}"
    );
    assert!(
        text.contains("services.user.cache.entities.user[0]") && text.contains("{id}"),
        "{text}"
    );
}
