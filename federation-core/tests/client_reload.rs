//! Hot reload (`FederatedServiceClient::reload` and the file watch) against real loopback
//! instances: an invalid configuration is rejected and the running one keeps serving; an open
//! breaker stays open across a reload that changes the service's policy and its cluster; calls
//! in flight finish on the generation they started with; services come and go; N callers see no
//! failed call while the configuration is reloaded several times; the file watch applies an
//! edit and rejects a broken file; `health()` shows the generation.

mod pipeline_support;

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::Duration;

use federation_core::config::{Config, ConfigFormat, LoadBalancing, Policy};
use federation_core::telemetry::BreakerStateValue;
use federation_core::{ErrorKind, FederatedServiceClient};
use federation_testkit::instance::{Behavior, ServiceInstance};
use pipeline_support::{breaker_of, cluster, config, eventually, service, start};

/// `user` in one static cluster over `instances`, with `policy`, declared after the `extra`
/// services, which have no instance (so a call of `user` routed by another generation's index
/// would fail).
fn user_config(instances: &[ServiceInstance], policy: Policy, extra: &[&str]) -> Config {
    let mut user = service("user", &[("zervigo", "user-service")], None);
    user.policy = Some(policy);
    let mut services: Vec<_> = extra
        .iter()
        .map(|name| service(name, &[("zervigo", "nothing-here")], None))
        .collect();
    services.push(user);
    config(
        vec![cluster("zervigo", "user-service", instances)],
        services,
    )
}

/// Ejects on the first failure and keeps the instance out for a minute (no probe during a test).
fn ejecting_policy() -> Policy {
    let mut policy = Policy::default();
    policy.breaker.consecutive_failures = 1;
    policy.breaker.open_for = Duration::from_secs(60);
    policy.breaker.max_open_for = Duration::from_secs(60);
    policy.load_balancing = Some(LoadBalancing::RoundRobin);
    policy
}

async fn ok(client: &FederatedServiceClient, service: &str) {
    let response = client
        .get(service, "/x")
        .send()
        .await
        .expect("call answered");
    assert_eq!(response.status(), 200);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_invalid_configuration_is_rejected_and_the_running_one_stays() {
    let z = start("zervigo", "user-service", 1).await;
    let client = FederatedServiceClient::from_config(user_config(&z, Policy::default(), &[]))
        .expect("valid config");
    ok(&client, "user").await;

    let mut bad = user_config(&z, Policy::default(), &[]);
    bad.services[0].targets[0].cluster = "nowhere".to_owned();
    let err = client.reload(bad).expect_err("unknown cluster");
    assert_eq!(err.kind(), ErrorKind::Config, "{err}");
    let text = err.to_string();
    assert!(
        text.contains("services.user") && text.contains("nowhere"),
        "{text}"
    );

    ok(&client, "user").await;
    let generation = client.health().config;
    assert_eq!(generation.generation, 1, "{generation:?}");
    assert_eq!(generation.source, "build");
    let rejected = generation.last_rejected.expect("the rejection is shown");
    assert!(rejected.contains("nowhere"), "{rejected}");

    // Text that does not even parse is rejected the same way (what the bindings pass).
    let err = client
        .reload_text("clusters: [ oops\n", ConfigFormat::Yaml)
        .expect_err("syntax error");
    assert_eq!(err.kind(), ErrorKind::Config, "{err}");
    let generation = client.health().config;
    assert_eq!(generation.generation, 1);
    assert!(
        generation
            .last_rejected
            .is_some_and(|r| r.starts_with("reload: "))
    );
    ok(&client, "user").await;

    // The next accepted reload clears it.
    let accepted = client
        .reload(user_config(&z, Policy::default(), &["order"]))
        .expect("valid");
    assert_eq!(accepted.generation, 2);
    assert_eq!(accepted.changes, ["services.order: added"]);
    assert_eq!(client.health().config.last_rejected, None);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_open_breaker_stays_open_across_reloads() {
    let z = start("zervigo", "user-service", 3).await;
    let client = FederatedServiceClient::from_config(user_config(&z[..2], ejecting_policy(), &[]))
        .expect("valid config");
    z[1].set_behavior(Behavior::status(503));
    let id = "user-service-zervigo-2";
    for _ in 0..4 {
        ok(&client, "user").await;
    }
    assert_eq!(breaker_of(&client, id), Some(BreakerStateValue::Open));

    // The service's policy changes (its routes are rebuilt) ...
    let mut policy = ejecting_policy();
    policy.timeout.total = Duration::from_secs(9);
    client
        .reload(user_config(&z[..2], policy.clone(), &[]))
        .expect("valid");
    assert_eq!(breaker_of(&client, id), Some(BreakerStateValue::Open));
    // ... then its cluster too (a third instance: a new transport and discovery).
    let changes = client
        .reload(user_config(&z, policy, &[]))
        .expect("valid")
        .changes;
    assert_eq!(changes, ["clusters.zervigo: changed"]);
    assert_eq!(breaker_of(&client, id), Some(BreakerStateValue::Open));

    let before = z[1].requests();
    for _ in 0..9 {
        ok(&client, "user").await;
    }
    assert_eq!(z[1].requests(), before, "the ejected instance got traffic");
    assert!(z[2].requests() > 0, "the added instance gets traffic");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_reloaded_breaker_section_applies_to_the_instances_carried_over() {
    let z = start("zervigo", "user-service", 2).await;
    let lax = |consecutive_failures| {
        let mut policy = ejecting_policy();
        policy.breaker.consecutive_failures = consecutive_failures;
        policy.breaker.failure_rate = None;
        policy
    };
    let client =
        FederatedServiceClient::from_config(user_config(&z, lax(1000), &[])).expect("valid config");
    z[1].set_behavior(Behavior::status(503));
    let id = "user-service-zervigo-2";
    for _ in 0..6 {
        ok(&client, "user").await;
    }
    assert!(z[1].requests() >= 2, "the failing instance was tried");
    assert_eq!(breaker_of(&client, id), Some(BreakerStateValue::Closed));

    // One failure now ejects: the carried breaker follows the new section at once.
    client.reload(user_config(&z, lax(1), &[])).expect("valid");
    assert_eq!(
        breaker_of(&client, id),
        Some(BreakerStateValue::Closed),
        "state kept"
    );
    for _ in 0..4 {
        ok(&client, "user").await;
    }
    assert_eq!(breaker_of(&client, id), Some(BreakerStateValue::Open));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_call_in_flight_finishes_on_the_generation_it_started_with() {
    let z = start("zervigo", "user-service", 1).await;
    z[0].set_behavior(Behavior::delayed(Duration::from_millis(400)));
    let client = FederatedServiceClient::from_config(user_config(&z, Policy::default(), &[]))
        .expect("valid config");
    let call = tokio::spawn({
        let client = client.clone();
        async move { client.get("user", "/slow").send().await }
    });
    assert!(
        eventually(Duration::from_secs(5), || z[0].requests() == 1).await,
        "the call reached the instance"
    );
    // `user` is gone from the new configuration; the call in flight does not notice.
    let only_order = config(
        vec![cluster("zervigo", "user-service", &z)],
        vec![service("order", &[("zervigo", "user-service")], None)],
    );
    let changes = client.reload(only_order).expect("valid").changes;
    assert_eq!(changes, ["services.order: added", "services.user: removed"]);
    let response = call
        .await
        .expect("joined")
        .expect("the call in flight is answered");
    assert_eq!(response.status(), 200);

    let err = client
        .get("user", "/x")
        .send()
        .await
        .expect_err("user is no longer configured");
    assert_eq!(err.kind(), ErrorKind::InvalidRequest, "{err}");
    z[0].set_behavior(Behavior::ok());
    ok(&client, "order").await;
    assert_eq!(client.services(), ["order"]);
}

/// Callers that count every call that is not a 200 until `stop`.
fn callers(
    client: &FederatedServiceClient,
    n: usize,
    stop: &Arc<AtomicBool>,
    calls: &Arc<AtomicU64>,
    failed: &Arc<AtomicU64>,
) -> Vec<tokio::task::JoinHandle<()>> {
    (0..n)
        .map(|_| {
            let client = client.clone();
            let (stop, calls, failed) = (Arc::clone(stop), Arc::clone(calls), Arc::clone(failed));
            tokio::spawn(async move {
                while !stop.load(Ordering::Relaxed) {
                    let ok = matches!(
                        client.get("user", "/load").send().await,
                        Ok(r) if r.status() == 200
                    );
                    calls.fetch_add(1, Ordering::Relaxed);
                    if !ok {
                        failed.fetch_add(1, Ordering::Relaxed);
                    }
                }
            })
        })
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn no_call_fails_while_the_configuration_is_reloaded_under_load() {
    let z = start("zervigo", "user-service", 3).await;
    let mut slower = Policy::default();
    slower.timeout.attempt = Duration::from_secs(3);
    slower.load_balancing = Some(LoadBalancing::RoundRobin);
    let generations = [
        user_config(&z[..2], Policy::default(), &[]),
        user_config(&z, slower.clone(), &["order"]),
        user_config(&z[1..], slower, &[]),
    ];
    let client = FederatedServiceClient::from_config(generations[0].clone()).expect("valid config");
    let (stop, calls, failed) = (
        Arc::new(AtomicBool::new(false)),
        Arc::new(AtomicU64::new(0)),
        Arc::new(AtomicU64::new(0)),
    );
    let workers = callers(&client, 16, &stop, &calls, &failed);
    for round in 1..=8u64 {
        tokio::time::sleep(Duration::from_millis(300)).await;
        let next = generations[(round as usize) % generations.len()].clone();
        let generation = client.reload(next).expect("valid");
        assert_eq!(generation.generation, round + 1);
    }
    tokio::time::sleep(Duration::from_millis(300)).await;
    stop.store(true, Ordering::Relaxed);
    for worker in workers {
        worker.await.expect("caller ends");
    }
    let (calls, failed) = (
        calls.load(Ordering::Relaxed),
        failed.load(Ordering::Relaxed),
    );
    eprintln!("{calls} calls over 9 generations, {failed} failed");
    assert!(calls > 100, "only {calls} calls were made");
    assert_eq!(failed, 0, "{failed} of {calls} calls failed across reloads");
    assert_eq!(client.health().config.generation, 9);
}

/// A temporary directory removed when the test ends (also when it fails).
struct TempDir(std::path::PathBuf);

impl Drop for TempDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

fn yaml(port: u16, services: &str) -> String {
    format!(
        "clusters:\n  zervigo:\n    static:\n      user-service: [ {{ address: 127.0.0.1, port: {port} }} ]\n\
         services:\n{services}"
    )
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_file_watch_applies_an_edit_and_rejects_a_broken_file() {
    let z = start("zervigo", "user-service", 1).await;
    let dir = TempDir(std::env::temp_dir().join(format!("fed-reload-{}", std::process::id())));
    std::fs::create_dir_all(&dir.0).expect("temp dir");
    let path = dir.0.join("federation.yaml");
    let first = yaml(
        z[0].port(),
        "  user:\n    names: { zervigo: user-service }\n",
    );
    std::fs::write(&path, &first).expect("write");
    let client = FederatedServiceClient::builder()
        .config(Config::from_file(&path).expect("valid file"))
        .watch_config_file(&path, Duration::from_millis(100))
        .build()
        .expect("client");
    ok(&client, "user").await;

    let second = format!("{first}  order:\n    names: {{ zervigo: user-service }}\n");
    std::fs::write(&path, second).expect("write");
    let applied = eventually(Duration::from_secs(5), || {
        client.health().config.generation == 2
    })
    .await;
    assert!(applied, "{:?}", client.health().config);
    let generation = client.health().config;
    assert!(generation.source.starts_with("file "), "{generation:?}");
    assert_eq!(generation.changes, ["services.order: added"]);
    ok(&client, "order").await;

    std::fs::write(&path, "clusters: [ this is not\n").expect("write");
    let rejected = eventually(Duration::from_secs(5), || {
        client.health().config.last_rejected.is_some()
    })
    .await;
    assert!(rejected, "{:?}", client.health().config);
    assert_eq!(client.health().config.generation, 2);
    ok(&client, "order").await;
}
