//! The cheap cache-hit path of a call nobody traces (this binary installs no `tracing`
//! subscriber, so every call takes it): hits still report `Hit` with the origin cluster and no
//! attempts, still count in `federation_requests_total{cluster="none"}` and
//! `federation_cache_events_total`, never reach upstream or the attempt metrics; a miss still
//! sends a `traceparent` upstream; a cache varying on `traceparent` never hits.

mod pipeline_support;

use std::collections::HashMap;
use std::time::Duration;

use federation_core::client::{CacheStatus, FederatedServiceClient};
use federation_core::config::{CachePolicy, Config, Policy};
use federation_core::telemetry::trace_context::TraceParent;
use federation_testkit::instance::ServiceInstance;
use pipeline_support::{cluster, config, service, start};

/// `user` in zervigo (preferred) and looma, one instance each, cached with `cache`.
async fn two_clusters(cache: CachePolicy) -> (FederatedServiceClient, ServiceInstance) {
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
    (client, z)
}

fn policy() -> CachePolicy {
    CachePolicy {
        ttl: Duration::from_secs(60),
        ..CachePolicy::default()
    }
}

/// Every sample of the exposition, by series.
fn samples(client: &FederatedServiceClient) -> HashMap<String, f64> {
    client
        .metrics_text()
        .lines()
        .filter(|l| !l.starts_with('#') && !l.is_empty())
        .filter_map(|l| {
            let (series, value) = l.rsplit_once(' ')?;
            Some((series.to_owned(), value.parse().ok()?))
        })
        .collect()
}

#[tokio::test]
async fn untraced_hits_are_reported_and_counted_like_any_hit() {
    let (client, z) = two_clusters(policy()).await;
    z.set_recording(true);
    let first = client
        .get("user", "/api/v1/users/42?b=2&a=1")
        .send()
        .await
        .expect("miss succeeds");
    assert_eq!(first.served().cache(), CacheStatus::Miss);
    let sent = z
        .recorded()
        .last()
        .and_then(|r| r.header("traceparent"))
        .and_then(TraceParent::parse);
    assert!(sent.is_some(), "the miss sent a valid traceparent upstream");

    for _ in 0..3 {
        let hit = client
            .get("user", "/api/v1/users/42?a=1&b=2")
            .send()
            .await
            .expect("hit");
        assert_eq!(hit.served().cache(), CacheStatus::Hit);
        assert_eq!(hit.served().cluster(), "zervigo", "the origin of the value");
        assert!(hit.served().attempts().is_empty());
        assert_eq!(hit.body(), first.body());
        assert_eq!(hit.status(), first.status());
    }
    assert_eq!(z.requests_for("/api/v1/users/42"), 1);

    let s = samples(&client);
    let get = |series: &str| s.get(series).copied().unwrap_or(0.0);
    let requests = |cluster: &str| {
        get(&format!(
            r#"federation_requests_total{{service="user",cluster="{cluster}",outcome="success"}}"#
        ))
    };
    assert_eq!(requests("none"), 3.0, "the hits");
    assert_eq!(requests("zervigo"), 1.0, "the miss");
    assert_eq!(
        get(r#"federation_cache_events_total{service="user",event="hit"}"#),
        3.0
    );
    assert_eq!(
        get(r#"federation_cache_events_total{service="user",event="miss"}"#),
        1.0
    );
    let attempts: f64 = s
        .iter()
        .filter(|(k, _)| k.starts_with("federation_attempts_total{"))
        .map(|(_, v)| v)
        .sum();
    assert_eq!(attempts, 1.0, "hits make no attempts");
}

#[tokio::test]
async fn a_cache_varying_on_traceparent_never_hits() {
    // Every call carries a fresh traceparent, so its key never matches an earlier one.
    let (client, z) = two_clusters(CachePolicy {
        vary_headers: vec!["traceparent".to_owned()],
        ..policy()
    })
    .await;
    for _ in 0..2 {
        let r = client
            .get("user", "/t")
            .send()
            .await
            .expect("call succeeds");
        assert_eq!(r.served().cache(), CacheStatus::Miss);
    }
    assert_eq!(z.requests_for("/t"), 2);
}
