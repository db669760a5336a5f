//! Self-registration through `FederatedServiceClient` against the Consul double: an HTTP-checked
//! instance passes only once the double ran its check and then serves another client's calls;
//! a TTL registration is kept passing by the handle's heartbeats and lapses after the handle is
//! dropped; deregistration removes the instance; errors say whose fault they are.

mod discovery_support;
mod pipeline_support;

use std::time::Duration;

use discovery_support::{double, until};
use federation_core::client::FederatedServiceClient;
use federation_core::config::Config;
use federation_core::discovery::{Health, InstanceSet, Registration, RegistrationCheck};
use federation_core::error::ErrorKind;
use federation_testkit::consul::ConsulDouble;
use federation_testkit::instance::{Identity, ServiceInstance};

fn health(set: &InstanceSet, id: &str) -> Option<Health> {
    set.instances.iter().find(|i| i.id == id).map(|i| i.health)
}

/// A client whose `looma` cluster is the double; logical service `order` is `order-svc` there.
fn client_for(consul: &ConsulDouble) -> FederatedServiceClient {
    let cluster = discovery_support::cluster("looma", &consul.url(), Duration::from_secs(30), None);
    let order = pipeline_support::service("order", &[("looma", "order-svc")], None);
    let config: Config = pipeline_support::config(vec![cluster], vec![order]);
    FederatedServiceClient::from_config(config).expect("valid config")
}

fn http_checked(id: &str, instance: &ServiceInstance) -> Registration {
    let mut reg = Registration::new(id, "order-svc", "127.0.0.1", instance.port());
    reg.checks = vec![RegistrationCheck::Http {
        url: format!("{}/health", instance.url()),
        interval: Duration::from_millis(100),
        timeout: Duration::from_secs(2),
        deregister_critical_after: None,
    }];
    reg
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_http_checked_instance_becomes_routable_for_another_client_after_its_check_passes() {
    let consul = double().await;
    let instance = ServiceInstance::start(Identity::new("looma", "order-svc", "order-1"))
        .await
        .expect("instance starts");
    instance.set_health_status(500);
    let announcer = client_for(&consul);
    let caller = client_for(&consul);
    let observer = discovery_support::discovery(&discovery_support::cluster(
        "looma",
        &consul.url(),
        Duration::from_secs(30),
        None,
    ));
    let mut rx = observer.watch("order-svc");

    let registered = announcer
        .register("looma", &http_checked("order-1", &instance))
        .await
        .expect("registered");
    assert_eq!(registered.cluster(), "looma");
    assert_eq!(registered.service_id(), "order-1");
    assert!(registered.ttl_check_ids().is_empty());
    let set = until(&mut rx, "registered", |s| s.instances.len() == 1).await;
    assert_eq!(
        health(&set, "order-1"),
        Some(Health::Critical),
        "starts critical"
    );

    // The double probes the failing endpoint: still critical, and not routable.
    tokio::time::sleep(Duration::from_millis(400)).await;
    assert_eq!(health(&rx.borrow(), "order-1"), Some(Health::Critical));
    let err = caller
        .get("order", "/hello")
        .send()
        .await
        .expect_err("no passing instance yet");
    assert_eq!(err.kind(), ErrorKind::NoHealthyInstance, "{err}");

    instance.set_health_status(200);
    until(&mut rx, "passing once the check succeeds", |s| {
        health(s, "order-1") == Some(Health::Passing)
    })
    .await;
    let mut response = None;
    for _ in 0..500 {
        match caller.get("order", "/hello").send().await {
            Ok(r) => {
                response = Some(r);
                break;
            }
            Err(e) => {
                assert_eq!(e.kind(), ErrorKind::NoHealthyInstance, "{e}");
                tokio::time::sleep(Duration::from_millis(20)).await;
            }
        }
    }
    let response = response.expect("the other client routes to the registered instance");
    assert_eq!(response.served().cluster(), "looma");
    assert_eq!(response.served().instance(), "order-1");
    assert!(instance.requests() >= 1);

    registered.deregister().await.expect("deregistered");
    until(&mut rx, "gone after deregister", |s| s.instances.is_empty()).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_handle_heartbeats_ttl_checks_and_dropping_it_lets_them_lapse() {
    let consul = double().await;
    let client = client_for(&consul);
    let observer = discovery_support::discovery(&discovery_support::cluster(
        "looma",
        &consul.url(),
        Duration::from_secs(30),
        None,
    ));
    let mut rx = observer.watch("worker");

    let mut reg = Registration::new("worker-1", "worker", "127.0.0.1", 9300);
    reg.checks = vec![RegistrationCheck::Ttl {
        check_id: None,
        ttl: Duration::from_millis(900),
        deregister_critical_after: None,
    }];
    let registered = client.register("looma", &reg).await.expect("registered");
    assert_eq!(registered.ttl_check_ids(), ["worker-1:ttl"]);
    until(&mut rx, "passing from the first heartbeat", |s| {
        health(s, "worker-1") == Some(Health::Passing)
    })
    .await;
    // Several TTLs: the heartbeat (every 300 ms) keeps it passing.
    for _ in 0..30 {
        tokio::time::sleep(Duration::from_millis(100)).await;
        assert_eq!(
            health(&rx.borrow(), "worker-1"),
            Some(Health::Passing),
            "the heartbeat keeps the TTL check alive"
        );
    }
    assert!(registered.is_heartbeating());

    // Dropping the handle stops the heartbeat without deregistering: the check lapses.
    drop(registered);
    let set = until(&mut rx, "critical after the TTL expires", |s| {
        health(s, "worker-1") == Some(Health::Critical)
    })
    .await;
    assert_eq!(set.instances.len(), 1, "still registered");

    client
        .deregister("looma", "worker-1")
        .await
        .expect("deregistered by id");
    until(&mut rx, "gone", |s| s.instances.is_empty()).await;
    let err = client
        .deregister("looma", "worker-1")
        .await
        .expect_err("already gone");
    assert_eq!(err.kind(), ErrorKind::Discovery, "{err}");
    assert!(err.to_string().contains("`looma`"), "{err}");
    assert!(err.to_string().contains("404"), "{err}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn caller_mistakes_are_invalid_requests_and_agent_failures_are_discovery_errors() {
    let consul = double().await;
    let client = client_for(&consul);
    let reg = Registration::new("x-1", "x", "127.0.0.1", 8080);

    let err = client.register("nowhere", &reg).await.expect_err("unknown");
    assert_eq!(err.kind(), ErrorKind::InvalidRequest, "{err}");
    assert!(
        err.to_string().contains("unknown cluster `nowhere`"),
        "{err}"
    );
    assert!(err.to_string().contains("looma"), "lists the known: {err}");

    let bad = Registration::new("x-1", "x", "0.0.0.0", 8080);
    let err = client.register("looma", &bad).await.expect_err("bad addr");
    assert_eq!(err.kind(), ErrorKind::InvalidRequest, "{err}");
    assert!(err.to_string().contains("address"), "{err}");

    let err = client.deregister("looma", " ").await.expect_err("no id");
    assert_eq!(err.kind(), ErrorKind::InvalidRequest, "{err}");

    // A static cluster cannot take registrations.
    let instance = ServiceInstance::start(Identity::new("zervigo", "x", "x-static"))
        .await
        .expect("instance starts");
    let static_cluster = pipeline_support::cluster("zervigo", "x", &[instance]);
    let static_client = FederatedServiceClient::from_config(pipeline_support::config(
        vec![static_cluster],
        vec![pipeline_support::service("x", &[("zervigo", "x")], None)],
    ))
    .expect("valid config");
    let err = static_client
        .register("zervigo", &reg)
        .await
        .expect_err("static");
    assert_eq!(err.kind(), ErrorKind::InvalidRequest, "{err}");
    assert!(
        err.to_string()
            .contains("registration needs a Consul cluster"),
        "{err}"
    );
    let err = static_client
        .deregister("zervigo", "x-1")
        .await
        .expect_err("static");
    assert_eq!(err.kind(), ErrorKind::InvalidRequest, "{err}");

    // The agent goes away: a discovery error naming the cluster.
    consul.shutdown().await;
    let err = client.register("looma", &reg).await.expect_err("down");
    assert_eq!(err.kind(), ErrorKind::Discovery, "{err}");
    assert!(err.to_string().contains("`looma`"), "{err}");
}
