//! Health reporting as instances degrade and churn: `client.health()` scores a healthy cluster
//! above zero and a degraded one lower, and an instance that leaves discovery leaves the
//! Prometheus exposition too (its breaker series are forgotten), so the output does not grow
//! without bound as instances come and go. (Kept apart from `telemetry_client.rs`, whose span
//! capture is sensitive to concurrent tests in the same process.)

mod discovery_support;
mod pipeline_support;

use std::time::{Duration, Instant};

use federation_core::client::FederatedServiceClient;
use federation_core::config::{Config, LoadBalancing};
use pipeline_support::{cluster, config, service, start};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_instance_that_leaves_discovery_leaves_the_metrics() {
    let consul = discovery_support::double().await;
    let running = pipeline_support::start("zervigo", "user-service", 2).await;
    for (id, instance) in ["u1", "u2"].iter().zip(&running) {
        consul
            .register(discovery_support::instance(
                id,
                "user-service",
                "127.0.0.1",
                instance.port(),
            ))
            .expect("registered");
    }
    let cfg = pipeline_support::config(
        vec![discovery_support::cluster(
            "zervigo",
            &consul.url(),
            Duration::from_secs(5),
            None,
        )],
        vec![pipeline_support::service(
            "user",
            &[("zervigo", "user-service")],
            None,
        )],
    );
    let client = FederatedServiceClient::from_config(cfg).expect("client builds");
    for _ in 0..10 {
        client
            .get("user", "/hello")
            .timeout(Duration::from_secs(8))
            .send()
            .await
            .expect("call succeeds");
    }
    let text = client.metrics_text();
    assert!(text.contains(r#"instance="u1""#), "{text}");
    assert!(text.contains(r#"instance="u2""#), "{text}");

    consul.deregister("u2").expect("deregistered");
    let until = Instant::now() + Duration::from_secs(10);
    let mut text = client.metrics_text();
    while text.contains(r#"instance="u2""#) && Instant::now() < until {
        tokio::time::sleep(Duration::from_millis(20)).await;
        text = client.metrics_text();
    }
    assert!(
        !text.contains(r#"instance="u2""#),
        "u2 left discovery but not the metrics:\n{text}"
    );
    assert!(text.contains(r#"instance="u1""#), "u1 stays: {text}");
    consul.shutdown().await;
}

#[tokio::test]
async fn health_scores_healthy_clusters_above_zero_and_degraded_ones_lower() {
    let z = start("zervigo", "user-service", 2).await;
    let l = start("looma", "looma-user-api", 2).await;
    let mut cfg: Config = config(
        vec![
            cluster("zervigo", "user-service", &z),
            cluster("looma", "looma-user-api", &l),
        ],
        vec![service(
            "user",
            &[("zervigo", "user-service"), ("looma", "looma-user-api")],
            Some("zervigo"),
        )],
    );
    cfg.defaults.load_balancing = Some(LoadBalancing::RoundRobin);
    let client = FederatedServiceClient::from_config(cfg).expect("client builds");
    for _ in 0..10 {
        for cluster in ["zervigo", "looma"] {
            client
                .get("user", "/warm")
                .cluster(cluster)
                .send()
                .await
                .expect("healthy");
        }
    }
    let score = |client: &FederatedServiceClient, cluster: &str| {
        client
            .health()
            .service("user")
            .and_then(|s| s.cluster(cluster))
            .map(|c| c.score)
            .expect("cluster in the snapshot")
    };
    let (healthy_z, healthy_l) = (score(&client, "zervigo"), score(&client, "looma"));
    assert!(healthy_z > 0.0, "healthy zervigo scores {healthy_z}");
    assert!(healthy_l > 0.0, "healthy looma scores {healthy_l}");

    // One of zervigo's two instances dies and is ejected (round robin sends it every other
    // call): zervigo scores below looma. Scores are read from the snapshot that shows the
    // ejection, so the breaker's open period cannot end in between.
    z[0].kill().await;
    let mut snapshot = None;
    for _ in 0..200 {
        let health = client.health();
        let zervigo = health.service("user").and_then(|s| s.cluster("zervigo"));
        if zervigo.is_some_and(|c| c.ejected == 1) {
            snapshot = Some(health);
            break;
        }
        let _ = client.get("user", "/x").cluster("zervigo").send().await;
    }
    let health = snapshot.expect("the dead instance is ejected");
    let user = health.service("user").expect("user");
    let degraded = user.cluster("zervigo").map(|c| c.score).expect("zervigo");
    let looma = user.cluster("looma").map(|c| c.score).expect("looma");
    assert!(degraded > 0.0, "one instance still serves: {degraded}");
    assert!(
        degraded < looma,
        "degraded zervigo {degraded} scores below healthy looma {looma}"
    );
    assert!(degraded < healthy_z, "{degraded} < {healthy_z}");
}
