//! Hot reload and discovery, against the Consul double: a reload that drops a service stops
//! its watch (no more blocking queries for it), one that adds a service starts its watch before
//! any call, and the service that stays keeps being watched through the same watcher.

mod discovery_support;
mod pipeline_support;

use std::time::Duration;

use federation_core::FederatedServiceClient;
use federation_core::config::Config;
use federation_testkit::consul::ConsulDouble;
use pipeline_support::{eventually, service, start};

/// `user` plus `other` (both backed by the double's services of the same name + `-service`).
fn config(consul: &ConsulDouble, other: &str) -> Config {
    pipeline_support::config(
        vec![discovery_support::cluster(
            "zervigo",
            &consul.url(),
            Duration::from_secs(5),
            None,
        )],
        vec![
            service("user", &[("zervigo", "user-service")], None),
            service(other, &[("zervigo", &format!("{other}-service"))], None),
        ],
    )
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_reload_stops_the_watches_of_removed_services_and_starts_new_ones() {
    let consul = discovery_support::double().await;
    let z = start("zervigo", "user-service", 1).await;
    for (i, name) in ["user-service", "order-service", "billing-service"]
        .iter()
        .enumerate()
    {
        let id = format!("instance-{i}");
        let reg = discovery_support::instance(&id, name, "127.0.0.1", z[0].port());
        consul.register(reg).expect("registered");
    }
    let client = FederatedServiceClient::from_config(config(&consul, "order")).expect("client");
    client
        .wait_ready(Duration::from_secs(5))
        .await
        .expect("watched");
    assert_eq!(consul.health_requests("billing-service"), 0);

    let changes = client
        .reload(config(&consul, "billing"))
        .expect("valid")
        .changes;
    assert_eq!(
        changes,
        ["services.billing: added", "services.order: removed"]
    );
    // The new service is watched before its first call.
    let watched = eventually(Duration::from_secs(5), || {
        consul.health_requests("billing-service") > 0
    })
    .await;
    assert!(watched, "billing-service is not watched");

    // Wake both services' blocked queries until the kept watch has asked again twice: a wake
    // sent between a query's arrival and its subscription is missed, so wake on every check.
    // A stray `order` watcher gets the same wake-ups and would ask again too.
    let order = consul.health_requests("order-service");
    let user = consul.health_requests("user-service");
    let asked = eventually(Duration::from_secs(5), || {
        consul.spurious_wakeup("user-service");
        consul.spurious_wakeup("order-service");
        consul.health_requests("user-service") >= user + 2
    })
    .await;
    assert!(asked, "user-service's watch stopped");
    assert_eq!(
        consul.health_requests("order-service"),
        order,
        "the removed service is still watched"
    );
    let response = client.get("billing", "/x").send().await.expect("answer");
    assert_eq!(response.status(), 200);
    consul.shutdown().await;
}
