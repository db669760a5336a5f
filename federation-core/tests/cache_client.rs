//! The result cache as a client user sees it, against real loopback instances: identical
//! concurrent calls make one upstream request, hits touch no balancer or breaker statistics, a
//! failover does not split the cache, stale-if-error answers when both clusters are down,
//! stale-while-revalidate refreshes once, invalidation works and POST is keyed by body.

mod pipeline_support;

use std::time::Duration;

use federation_core::client::{CacheStatus, FederatedServiceClient};
use federation_core::config::{CachePolicy, Config, Policy};
use federation_testkit::instance::{Behavior, ServiceInstance};
use pipeline_support::{cluster, config, eventually, service, start};

/// `user` in zervigo (preferred) and looma, one instance each, cached with `cache`.
async fn two_clusters(
    cache: CachePolicy,
) -> (FederatedServiceClient, ServiceInstance, ServiceInstance) {
    let z = start("zervigo", "user-service", 1).await.remove(0);
    let l = start("looma", "looma-user-api", 1).await.remove(0);
    let mut cfg: Config = config(
        vec![
            cluster("zervigo", "user-service", std::slice::from_ref(&z)),
            cluster("looma", "looma-user-api", std::slice::from_ref(&l)),
        ],
        vec![service(
            "user",
            &[("zervigo", "user-service"), ("looma", "looma-user-api")],
            Some("zervigo"),
        )],
    );
    cfg.defaults = Policy {
        cache: Some(cache),
        ..Policy::default()
    };
    let client = FederatedServiceClient::from_config(cfg).expect("client builds");
    (client, z, l)
}

fn ttl(secs: u64) -> CachePolicy {
    CachePolicy {
        ttl: Duration::from_secs(secs),
        ..CachePolicy::default()
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn hundred_identical_calls_make_one_upstream_request() {
    let (client, z, _l) = two_clusters(ttl(30)).await;
    z.set_behavior(Behavior::delayed(Duration::from_millis(300)));
    let calls: Vec<_> = (0..100)
        .map(|_| {
            let client = client.clone();
            tokio::spawn(async move { client.get("user", "/api/v1/users/42").send().await })
        })
        .collect();
    for call in calls {
        let response = call.await.expect("task ran").expect("call succeeds");
        assert!(response.status().is_success());
        assert_eq!(response.served().cache(), CacheStatus::Miss);
    }
    assert_eq!(z.requests_for("/api/v1/users/42"), 1);
    let hit = client
        .get("user", "/api/v1/users/42")
        .send()
        .await
        .expect("hit");
    assert_eq!(hit.served().cache(), CacheStatus::Hit);
    assert!(hit.served().attempts().is_empty());
    assert_eq!(z.requests_for("/api/v1/users/42"), 1);
}

#[tokio::test]
async fn hits_do_not_move_balancer_or_breaker_statistics() {
    let (client, z, _l) = two_clusters(ttl(30)).await;
    let first = client.get("user", "/u/1").send().await.expect("miss");
    assert_eq!(first.served().cache(), CacheStatus::Miss);
    let before = client.health();
    let attempts_before = attempts_total(&client);
    for _ in 0..50 {
        let r = client.get("user", "/u/1").send().await.expect("hit");
        assert_eq!(r.served().cache(), CacheStatus::Hit);
    }
    assert_eq!(z.requests(), 1);
    assert_eq!(
        attempts_total(&client),
        attempts_before,
        "no attempt recorded"
    );
    let after = client.health();
    let instance = |h: &federation_core::telemetry::HealthSnapshot| {
        h.service("user")
            .and_then(|s| s.cluster("zervigo"))
            .map(|c| {
                let i = &c.instances[0];
                (i.breaker, i.in_flight, c.available, c.ejected)
            })
            .expect("zervigo instance")
    };
    // (EWMA decays with time on its own; the attempt counter above proves no sample was taken.)
    assert_eq!(
        instance(&before),
        instance(&after),
        "breaker and in-flight unchanged"
    );
}

fn attempts_total(client: &FederatedServiceClient) -> f64 {
    client
        .metrics_text()
        .lines()
        .filter(|l| l.starts_with("federation_attempts_total{"))
        .filter_map(|l| l.rsplit_once(' ').and_then(|(_, v)| v.parse::<f64>().ok()))
        .sum()
}

#[tokio::test]
async fn failover_does_not_split_the_cache() {
    let (client, z, l) = two_clusters(ttl(30)).await;
    let first = client.get("user", "/u/7").send().await.expect("miss");
    assert_eq!(first.served().cluster(), "zervigo");
    // The preferred cluster dies: the next call would fail over to looma, but the cache (keyed
    // without the cluster) answers, and an explicit looma call shares the same entry.
    z.kill().await;
    let after_failover = client.get("user", "/u/7").send().await.expect("hit");
    assert_eq!(after_failover.served().cache(), CacheStatus::Hit);
    let explicit = client
        .get("user", "/u/7")
        .cluster("looma")
        .send()
        .await
        .expect("hit");
    assert_eq!(explicit.served().cache(), CacheStatus::Hit);
    assert_eq!(l.requests(), 0);
    // A value first fetched from looma (after failover) is a hit for later calls as well.
    let fetched = client.get("user", "/u/8").send().await.expect("failover");
    assert_eq!(
        (fetched.served().cluster(), fetched.served().cache()),
        ("looma", CacheStatus::Miss)
    );
    z.restart().await.expect("restart");
    let again = client.get("user", "/u/8").send().await.expect("hit");
    assert_eq!(again.served().cache(), CacheStatus::Hit);
    assert_eq!(z.requests_for("/u/8"), 0);
}

#[tokio::test]
async fn stale_if_error_answers_when_both_clusters_are_down() {
    let policy = CachePolicy {
        ttl: Duration::from_millis(300),
        stale_if_error: Some(Duration::from_secs(60)),
        ..CachePolicy::default()
    };
    let (client, z, l) = two_clusters(policy).await;
    let fresh = client.get("user", "/u/1").send().await.expect("miss");
    z.kill().await;
    l.kill().await;
    // Time passing, not a state: the 300 ms TTL runs out.
    tokio::time::sleep(Duration::from_millis(500)).await;
    let stale = client
        .get("user", "/u/1")
        .send()
        .await
        .expect("stale value served");
    assert_eq!(stale.served().cache(), CacheStatus::Stale);
    assert_eq!(stale.body(), fresh.body());
    assert!(
        !stale.served().attempts().is_empty(),
        "the failed attempts are reported"
    );
    // Without a stored value the failure is an error.
    assert!(client.get("user", "/u/2").send().await.is_err());
    assert!(
        client
            .metrics_text()
            .contains(r#"federation_cache_events_total{service="user",event="stale"} 1"#)
    );
}

#[tokio::test]
async fn stale_while_revalidate_refreshes_once() {
    let policy = CachePolicy {
        ttl: Duration::from_millis(300),
        stale_while_revalidate: Some(Duration::from_secs(60)),
        ..CachePolicy::default()
    };
    let (client, z, _l) = two_clusters(policy).await;
    client.get("user", "/u/1").send().await.expect("miss");
    // Time passing, not a state: the 300 ms TTL runs out.
    tokio::time::sleep(Duration::from_millis(500)).await;
    z.set_behavior(Behavior::delayed(Duration::from_millis(200)));
    let calls: Vec<_> = (0..20)
        .map(|_| {
            let client = client.clone();
            tokio::spawn(async move { client.get("user", "/u/1").send().await })
        })
        .collect();
    for call in calls {
        let r = call.await.expect("task ran").expect("stale served at once");
        assert_eq!(r.served().cache(), CacheStatus::Stale);
    }
    assert!(eventually(Duration::from_secs(10), || z.requests_for("/u/1") == 2).await);
    // Calls keep being served stale (starting no other refresh) until the refreshed value is
    // stored; then they are hits.
    let deadline = tokio::time::Instant::now() + Duration::from_secs(10);
    loop {
        let r = client.get("user", "/u/1").send().await.expect("served");
        if r.served().cache() == CacheStatus::Hit {
            break;
        }
        assert_eq!(r.served().cache(), CacheStatus::Stale);
        assert!(tokio::time::Instant::now() < deadline, "never refreshed");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    assert_eq!(z.requests_for("/u/1"), 2, "exactly one background refresh");
}

#[tokio::test]
async fn invalidate_drops_entries() {
    let (client, z, _l) = two_clusters(ttl(30)).await;
    for path in ["/users/1", "/users/2", "/orders/1"] {
        client.get("user", path).send().await.expect("miss");
    }
    assert!(client.invalidate("user", "/users/1"));
    let status = |path: &'static str| {
        let client = client.clone();
        async move {
            client
                .get("user", path)
                .send()
                .await
                .expect("ok")
                .served()
                .cache()
        }
    };
    assert_eq!(status("/users/1").await, CacheStatus::Miss);
    assert_eq!(status("/users/2").await, CacheStatus::Hit);
    assert!(client.invalidate_prefix("user", "/users"));
    assert_eq!(status("/users/2").await, CacheStatus::Miss);
    client.clear_cache();
    assert_eq!(status("/orders/1").await, CacheStatus::Miss);
    assert!(!client.invalidate("nope", "/x"));
    assert_eq!(z.requests(), 6);
}

#[tokio::test]
async fn post_is_cached_by_body_when_enabled() {
    let policy = CachePolicy {
        methods: vec!["GET".into(), "POST".into()],
        ..ttl(30)
    };
    let (client, z, _l) = two_clusters(policy).await;
    let post = |body: &'static str| {
        let client = client.clone();
        async move {
            client
                .post("user", "/v1/infer")
                .body(body)
                .send()
                .await
                .expect("ok")
                .served()
                .cache()
        }
    };
    assert_eq!(post(r#"{"prompt":"a"}"#).await, CacheStatus::Miss);
    assert_eq!(post(r#"{"prompt":"a"}"#).await, CacheStatus::Hit);
    assert_eq!(post(r#"{"prompt":"b"}"#).await, CacheStatus::Miss);
    assert_eq!(z.requests_for("/v1/infer"), 2);
}

#[tokio::test]
async fn uncached_requests_bypass() {
    let (client, z, _l) = two_clusters(ttl(30)).await;
    let put = client
        .put("user", "/u/1")
        .body("x")
        .send()
        .await
        .expect("ok");
    assert_eq!(put.served().cache(), CacheStatus::Bypass);
    let with_token = client
        .get("user", "/u/1")
        .header("authorization", "Bearer t")
        .send()
        .await
        .expect("ok");
    assert_eq!(with_token.served().cache(), CacheStatus::Bypass);
    assert_eq!(z.requests(), 2);
}

#[tokio::test]
async fn a_per_call_tag_filter_has_its_own_cache_entries() {
    let v2 = start("looma", "ai-service", 1).await.remove(0);
    let v3 = start("looma", "ai-service", 1).await.remove(0);
    let tagged = |i: &ServiceInstance, tag: &str| {
        let mut e = pipeline_support::entry(i);
        e.id = Some(format!("ai-{tag}"));
        e.tags = vec![tag.to_owned()];
        e
    };
    let looma = pipeline_support::cluster_with(
        "looma",
        "ai-service",
        vec![tagged(&v2, "model=v2"), tagged(&v3, "model=v3")],
    );
    let mut ai = service("ai", &[("looma", "ai-service")], None);
    ai.tags = vec!["model=v2".to_owned()];
    let mut cfg: Config = config(vec![looma], vec![ai]);
    cfg.defaults = Policy {
        cache: Some(CachePolicy {
            methods: vec!["POST".to_owned()],
            ..ttl(30)
        }),
        ..Policy::default()
    };
    let client = FederatedServiceClient::from_config(cfg).expect("client builds");
    let ask = |tags: Option<&'static [&'static str]>| {
        let mut request = client.post("ai", "/infer").body("same prompt");
        if let Some(tags) = tags {
            request = request.tags(tags.iter().copied());
        }
        request.send()
    };
    let first = ask(None).await.expect("default model");
    assert_eq!(first.served().cache(), CacheStatus::Miss);
    assert_eq!(first.served().instance(), "ai-model=v2");
    let v3_answer = ask(Some(&["model=v3"])).await.expect("v3");
    assert_eq!(
        v3_answer.served().cache(),
        CacheStatus::Miss,
        "v2's cached answer is not served for v3"
    );
    assert_eq!(v3_answer.served().instance(), "ai-model=v3");
    assert_eq!(v3.requests(), 1);
    let again = ask(Some(&["model=v3"])).await.expect("v3 again");
    assert_eq!(again.served().cache(), CacheStatus::Hit);
    assert_eq!(again.served().instance(), "ai-model=v3");
    // Naming the default tags explicitly is the default filter: same entry.
    let explicit = ask(Some(&["model=v2"])).await.expect("explicit v2");
    assert_eq!(explicit.served().cache(), CacheStatus::Hit);
    assert_eq!(explicit.served().instance(), "ai-model=v2");
    assert_eq!(v2.requests(), 1);
    assert_eq!(v3.requests(), 1);
}
