//! The shared L2 tier when Redis misbehaves, against real `redis-server` processes: killed
//! mid-traffic (no call fails), slow (each L2 step costs at most the timeout), down at start,
//! full (writes refused). Options and configuration: cache_l2_options.rs.

mod cache_l2_support;

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use cache_l2_support::{
    client, get, instance, keys_now, l2_health, wait_for, wait_subscribed, yaml,
};
use federation_testkit::redis::RedisServer;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn redis_killed_mid_traffic_fails_no_call_and_the_tier_recovers() {
    let redis = RedisServer::start().await.expect("redis-server starts");
    let upstream = instance().await;
    let port = redis.port().expect("tcp");
    let cfg = yaml(
        upstream.port(),
        &format!("address: 127.0.0.1:{port}, timeout: 50ms"),
    );
    let c = client(&cfg);
    wait_subscribed(&c).await;
    let failures = Arc::new(AtomicU64::new(0));
    let calls = Arc::new(AtomicU64::new(0));
    let stop_at = Instant::now() + Duration::from_millis(1500);
    let workers: Vec<_> = (0..4)
        .map(|w| {
            let (c, failures, calls) = (c.clone(), Arc::clone(&failures), Arc::clone(&calls));
            tokio::spawn(async move {
                let mut i = 0u64;
                while Instant::now() < stop_at {
                    i += 1;
                    let path = format!("/api/v1/users/{}", (w * 1000 + i) % 40);
                    match c.get("user", &path).send().await {
                        Ok(r) if r.status().is_success() => {}
                        _ => {
                            failures.fetch_add(1, Ordering::Relaxed);
                        }
                    }
                    calls.fetch_add(1, Ordering::Relaxed);
                    if i.is_multiple_of(7) {
                        c.invalidate("user", &path);
                    }
                }
            })
        })
        .collect();
    tokio::time::sleep(Duration::from_millis(500)).await;
    redis.kill();
    for w in workers {
        w.await.expect("worker ran");
    }
    assert!(calls.load(Ordering::Relaxed) > 100, "traffic flowed");
    assert_eq!(failures.load(Ordering::Relaxed), 0, "no call failed");
    let h = l2_health(&c);
    assert!(h.degraded && !h.subscribed, "health says so: {h:?}");
    let text = c.metrics_text();
    assert!(
        text.contains("federation_cache_l2_degraded{service=\"user\"} 1"),
        "{text}"
    );

    redis.restart().await.expect("redis restarts");
    wait_subscribed(&c).await;
    for i in 0..3 {
        get(&c, &format!("/recovered/{i}")).await;
    }
    assert!(
        wait_for(Duration::from_secs(5), || !l2_health(&c).degraded).await,
        "recovers: {:?}",
        l2_health(&c)
    );
    let h = l2_health(&c);
    assert!(h.degraded_seconds > 0.0 && h.resyncs >= 2, "{h:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_stalled_redis_costs_each_call_at_most_the_timeout_per_step() {
    let redis = RedisServer::start().await.expect("redis-server starts");
    let upstream = instance().await;
    let port = redis.port().expect("tcp");
    let cfg = yaml(
        upstream.port(),
        &format!("address: 127.0.0.1:{port}, timeout: 30ms"),
    );
    let c = client(&cfg);
    wait_subscribed(&c).await;
    get(&c, "/warm").await;
    redis
        .pause(Duration::from_secs(4))
        .await
        .expect("CLIENT PAUSE");
    let mut slowest = Duration::ZERO;
    for i in 0..5 {
        let start = Instant::now();
        let (status, cache, _) = get(&c, &format!("/api/v1/users/{i}")).await;
        slowest = slowest.max(start.elapsed());
        assert_eq!((status, cache.as_str()), (200, "miss"));
    }
    // A miss makes two L2 steps before upstream (GET, then the lease), each abandoned after
    // 30 ms; the store runs in the background. Redis itself stays stalled for 4 s.
    assert!(
        slowest < Duration::from_millis(400),
        "a call took {slowest:?} while Redis was stalled"
    );
    let h = l2_health(&c);
    assert!(h.timeouts >= 5 && h.degraded, "{h:?}");
    let hit_start = Instant::now();
    let (_, cache, _) = get(&c, "/api/v1/users/0").await;
    assert_eq!(cache, "hit", "L1 still serves");
    assert!(hit_start.elapsed() < Duration::from_millis(20));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn redis_down_at_start_is_reported_and_calls_go_upstream() {
    let upstream = instance().await;
    // A port nobody listens on.
    let dead = std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .expect("port")
        .port();
    let c = client(&yaml(
        upstream.port(),
        &format!("address: 127.0.0.1:{dead}"),
    ));
    for i in 0..3 {
        let (status, cache, _) = get(&c, &format!("/u/{i}")).await;
        assert_eq!((status, cache.as_str()), (200, "miss"));
        assert_eq!(get(&c, &format!("/u/{i}")).await.1, "hit", "L1 works alone");
    }
    let h = l2_health(&c);
    assert!(!h.connected && h.degraded, "{h:?}");
    assert_eq!(h.target, format!("redis 127.0.0.1:{dead}"));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_full_redis_fails_no_call_and_is_counted() {
    let redis =
        RedisServer::start_with_args(&["--maxmemory", "2mb", "--maxmemory-policy", "noeviction"])
            .await
            .expect("redis-server starts");
    let mut conn = redis.connection().await.expect("connects");
    let filler = vec![b'x'; 64 * 1024];
    let mut full = false;
    for i in 0..200 {
        let set: redis::RedisResult<()> = redis::cmd("SET")
            .arg(format!("filler:{i}"))
            .arg(&filler[..])
            .query_async(&mut conn)
            .await;
        if set.is_err() {
            full = true;
            break;
        }
    }
    assert!(full, "Redis refuses writes (OOM)");
    let upstream = instance().await;
    let port = redis.port().expect("tcp");
    let c = client(&yaml(
        upstream.port(),
        &format!("address: 127.0.0.1:{port}, timeout: 250ms"),
    ));
    wait_subscribed(&c).await;
    for i in 0..5 {
        let (status, cache, _) = get(&c, &format!("/full/{i}")).await;
        assert_eq!((status, cache.as_str()), (200, "miss"));
        assert_eq!(
            get(&c, &format!("/full/{i}")).await.1,
            "hit",
            "L1 still works"
        );
    }
    assert!(
        wait_for(Duration::from_secs(5), || l2_health(&c).errors >= 5).await,
        "refused writes are counted: {:?}",
        l2_health(&c)
    );
    assert_eq!(keys_now(&redis, "*/full/*"), 0, "nothing was stored");
}
