//! `FederatedServiceClient::wait_ready`: the one readiness wait of every front end (Python's
//! `wait_ready`, the CLI, the examples, the C ABI and Go). Against a real Consul double that
//! answers late or not at all, next to a static cluster that answers at once.

mod discovery_support;
mod pipeline_support;

use std::time::{Duration, Instant};

use federation_core::config::Config;
use federation_core::{ErrorKind, FederatedServiceClient};
use federation_testkit::consul::{ConsulDouble, Fault};
use federation_testkit::instance::ServiceInstance;

/// `user` in zervigo (behind the Consul double) and looma (static).
async fn federation(fault: Fault) -> (ConsulDouble, Vec<ServiceInstance>, Config) {
    let consul = discovery_support::double().await;
    let z = pipeline_support::start("zervigo", "user-service", 1).await;
    let l = pipeline_support::start("looma", "looma-user-api", 1).await;
    consul
        .register(discovery_support::instance(
            "zervigo-1",
            "user-service",
            "127.0.0.1",
            z[0].port(),
        ))
        .expect("registered");
    consul.set_fault(fault);
    let clusters = vec![
        discovery_support::cluster("zervigo", &consul.url(), Duration::from_secs(5), None),
        pipeline_support::cluster("looma", "looma-user-api", &l),
    ];
    let targets = [("zervigo", "user-service"), ("looma", "looma-user-api")];
    let config = pipeline_support::config(
        clusters,
        vec![pipeline_support::service("user", &targets, Some("zervigo"))],
    );
    (consul, z.into_iter().chain(l).collect(), config)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn waits_for_the_registry_that_answers_last() {
    let (_consul, _instances, config) = federation(Fault::Slow(Duration::from_millis(300))).await;
    let client = FederatedServiceClient::from_config(config).expect("client");
    let started = Instant::now();
    client
        .wait_ready(Duration::from_secs(10))
        .await
        .expect("both registries answer");
    let waited = started.elapsed();
    assert!(
        waited >= Duration::from_millis(250),
        "returned after {waited:?}, before zervigo answered"
    );
    assert!(waited < Duration::from_secs(5), "took {waited:?}");
    let health = client.health();
    let user = health.service("user").expect("user");
    assert!(
        user.clusters.iter().all(|c| c.last_success.is_some()),
        "{health:?}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn names_the_clusters_that_did_not_answer_in_time() {
    let (_consul, _instances, config) = federation(Fault::Slow(Duration::from_secs(30))).await;
    let client = FederatedServiceClient::from_config(config).expect("client");
    let err = client
        .wait_ready(Duration::from_millis(300))
        .await
        .expect_err("zervigo's registry does not answer within the wait");
    assert_eq!(err.kind(), ErrorKind::Discovery, "{err}");
    let text = err.to_string();
    assert!(text.contains("user in zervigo"), "{text}");
    assert!(!text.contains("looma"), "looma answered at once: {text}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_registry_that_fails_is_named_with_its_error() {
    let (_consul, _instances, config) = federation(Fault::Down).await;
    let client = FederatedServiceClient::from_config(config).expect("client");
    let err = client
        .wait_ready(Duration::from_millis(500))
        .await
        .expect_err("zervigo's registry is down");
    let text = err.to_string();
    assert!(
        text.contains("user in zervigo ("),
        "the last registry error is named: {text}"
    );
}
