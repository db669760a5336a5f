//! Self-registration through the SDK against the Consul double: HTTP checks run by the double,
//! TTL checks kept alive by the heartbeat and expiring without it, deregistration.

mod discovery_support;

use std::time::Duration;

use discovery_support::*;
use federation_core::discovery::{
    DiscoveryErrorKind, Health, InstanceSet, Registration, RegistrationCheck,
};

fn health(set: &InstanceSet, id: &str) -> Option<Health> {
    set.instances.iter().find(|i| i.id == id).map(|i| i.health)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_http_checked_instance_passes_only_after_the_double_runs_the_check() {
    let consul = double().await;
    let endpoint = HealthEndpoint::start(500).await;
    let d = discovery(&cluster(
        "looma",
        &consul.url(),
        Duration::from_secs(30),
        None,
    ));

    let mut reg = Registration::new("order-1", "order-svc", "127.0.0.1", 7443);
    reg.tags = vec!["v1".to_owned()];
    reg.checks = vec![RegistrationCheck::Http {
        url: endpoint.url.clone(),
        interval: Duration::from_millis(100),
        timeout: Duration::from_secs(1),
        deregister_critical_after: None,
    }];
    d.register(&reg).await.expect("registered");

    let mut rx = d.watch("order-svc");
    let set = until(&mut rx, "registered", |s| s.instances.len() == 1).await;
    assert_eq!(
        health(&set, "order-1"),
        Some(Health::Critical),
        "checks start critical"
    );
    assert_eq!(set.instances[0].tags, ["v1"]);

    // The double probes a failing endpoint: still critical.
    tokio::time::sleep(Duration::from_millis(400)).await;
    assert!(endpoint.hits() > 0, "the double ran the check");
    assert_eq!(health(&rx.borrow(), "order-1"), Some(Health::Critical));

    endpoint.set_status(200);
    until(&mut rx, "passing", |s| {
        health(s, "order-1") == Some(Health::Passing)
    })
    .await;
    endpoint.set_status(429);
    until(&mut rx, "warning on 429", |s| {
        health(s, "order-1") == Some(Health::Warning)
    })
    .await;

    d.deregister("order-1").await.expect("deregistered");
    until(&mut rx, "gone", |s| s.instances.is_empty()).await;
    let err = d.deregister("order-1").await.expect_err("unknown id");
    assert!(
        matches!(err.kind(), DiscoveryErrorKind::Status { code: 404, .. }),
        "{err}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn ttl_checks_expire_to_critical_and_the_heartbeat_keeps_them_passing() {
    let consul = double().await;
    let d = discovery(&cluster(
        "looma",
        &consul.url(),
        Duration::from_secs(30),
        None,
    ));
    let mut reg = Registration::new("worker-1", "worker", "127.0.0.1", 9300);
    reg.checks = vec![RegistrationCheck::Ttl {
        check_id: None,
        ttl: Duration::from_millis(600),
        deregister_critical_after: None,
    }];
    let check_id = reg.ttl_check_ids().remove(0);
    assert_eq!(check_id, "worker-1:ttl");
    d.register(&reg).await.expect("registered");
    let mut rx = d.watch("worker");
    until(&mut rx, "critical at first", |s| {
        health(s, "worker-1") == Some(Health::Critical)
    })
    .await;

    // One manual pass, then silence: the TTL lapses.
    d.update_ttl(&check_id, Health::Passing, Some("ready"))
        .await
        .expect("pass");
    until(&mut rx, "passing", |s| {
        health(s, "worker-1") == Some(Health::Passing)
    })
    .await;
    until(&mut rx, "TTL expired", |s| {
        health(s, "worker-1") == Some(Health::Critical)
    })
    .await;

    // A heartbeat well inside the TTL keeps it passing for several TTLs.
    let heartbeat = d.spawn_heartbeat(&check_id, Duration::from_millis(150));
    until(&mut rx, "passing again", |s| {
        health(s, "worker-1") == Some(Health::Passing)
    })
    .await;
    for _ in 0..20 {
        tokio::time::sleep(Duration::from_millis(100)).await;
        assert_eq!(
            health(&rx.borrow(), "worker-1"),
            Some(Health::Passing),
            "the heartbeat keeps the check alive"
        );
    }
    assert!(heartbeat.is_running());

    // Dropping the handle stops the heartbeat; warn/fail are reported as such.
    drop(heartbeat);
    until(&mut rx, "critical after the heartbeat stops", |s| {
        health(s, "worker-1") == Some(Health::Critical)
    })
    .await;
    d.update_ttl(&check_id, Health::Warning, None)
        .await
        .expect("warn");
    until(&mut rx, "warning", |s| {
        health(s, "worker-1") == Some(Health::Warning)
    })
    .await;

    let err = d
        .update_ttl("no-such-check", Health::Passing, None)
        .await
        .expect_err("unknown check");
    assert!(err.to_string().contains("`looma`"), "{err}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn invalid_registrations_fail_before_any_request() {
    let consul = double().await;
    let d = discovery(&cluster(
        "looma",
        &consul.url(),
        Duration::from_secs(5),
        None,
    ));
    let err = d
        .register(&Registration::new("x", "svc", "0.0.0.0", 80))
        .await
        .expect_err("unroutable address");
    assert_eq!(*err.kind(), DiscoveryErrorKind::Config);
    assert!(err.message().contains("address"), "{err}");
}
