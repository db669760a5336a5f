//! Failover to a cluster that could not serve when the call was ranked: a registry that had not
//! answered yet (a fresh or very slow process, e.g. under valgrind) must not turn the failure
//! of the preferred cluster into a failed call while the deadline still allows a failover; and
//! when the call does fail, the error says why no other cluster was tried.

mod discovery_support;
mod pipeline_support;

use std::time::{Duration, Instant};

use federation_core::client::{AttemptOutcome, FederatedServiceClient};
use federation_core::config::Config;
use federation_core::error::{ErrorKind, UnavailableReason};
use federation_testkit::consul::{ConsulDouble, Fault};
use federation_testkit::instance::{Behavior, Mode, ServiceInstance};

/// zervigo: two static `user-service` instances (preferred); looma: a Consul double with one
/// `looma-user-api` instance registered, behind `fault`.
async fn setup(
    fault: Fault,
) -> (
    FederatedServiceClient,
    Vec<ServiceInstance>,
    ServiceInstance,
    ConsulDouble,
) {
    let z = pipeline_support::start("zervigo", "user-service", 2).await;
    let l = pipeline_support::start("looma", "looma-user-api", 1)
        .await
        .remove(0);
    let consul = discovery_support::double().await;
    consul
        .register(discovery_support::instance(
            "looma-1",
            "looma-user-api",
            "127.0.0.1",
            l.port(),
        ))
        .expect("registered");
    consul.set_fault(fault);
    let cfg: Config = pipeline_support::config(
        vec![
            pipeline_support::cluster("zervigo", "user-service", &z),
            discovery_support::cluster("looma", &consul.url(), Duration::from_secs(5), None),
        ],
        vec![pipeline_support::service(
            "user",
            &[("zervigo", "user-service"), ("looma", "looma-user-api")],
            Some("zervigo"),
        )],
    );
    let client = FederatedServiceClient::from_config(cfg).expect("client builds");
    (client, z, l, consul)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn failover_waits_for_a_registry_that_had_not_answered_yet() {
    let (client, z, l, consul) = setup(Fault::Slow(Duration::from_millis(400))).await;
    for instance in &z {
        instance.kill().await;
    }
    // zervigo's static list is ready at once, looma's registry answers ~400 ms later: the call
    // is ranked with zervigo only, spends its zervigo attempts, then must still fail over.
    let r = client
        .get("user", "/first")
        .timeout(Duration::from_secs(10))
        .send()
        .await
        .expect("served by looma");
    assert_eq!(r.served().cluster(), "looma");
    let attempts = r.served().attempts();
    assert!(attempts.len() >= 2, "{attempts:?}");
    assert!(
        attempts[..attempts.len() - 1]
            .iter()
            .all(|a| a.cluster() == "zervigo" && a.outcome() == AttemptOutcome::ConnectFailed),
        "{attempts:?}"
    );
    assert_eq!(l.requests(), 1);
    consul.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn slow_attempts_still_fail_over_to_a_cluster_that_answered_meanwhile() {
    let (client, z, l, consul) = setup(Fault::Slow(Duration::from_millis(200))).await;
    for instance in &z {
        instance.set_behavior(Behavior::mode(Mode::Hang));
    }
    // Each zervigo attempt times out after 300 ms; looma's registry answered during the first,
    // so once zervigo has no untried instance the call fails over instead of retrying there.
    let r = client
        .get("user", "/slow")
        .timeout(Duration::from_secs(10))
        .attempt_timeout(Duration::from_millis(300))
        .send()
        .await
        .expect("served by looma");
    assert_eq!(r.served().cluster(), "looma");
    let attempts = r.served().attempts();
    assert_eq!(attempts.len(), 3, "two zervigo attempts, then looma");
    assert!(
        attempts[..2]
            .iter()
            .all(|a| a.cluster() == "zervigo" && a.outcome() == AttemptOutcome::Timeout),
        "{attempts:?}"
    );
    assert_eq!(l.requests(), 1);
    consul.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_deadline_spent_waiting_for_the_other_registry_is_a_timeout_that_says_so() {
    let (client, z, _l, consul) = setup(Fault::Hang).await;
    for instance in &z {
        instance.kill().await;
    }
    let started = Instant::now();
    let err = client
        .get("user", "/hang")
        .timeout(Duration::from_millis(600))
        .send()
        .await
        .expect_err("looma's registry never answers");
    let took = started.elapsed();
    assert_eq!(err.kind(), ErrorKind::Timeout, "{err}");
    assert!(took >= Duration::from_millis(550), "waited: {took:?}");
    assert!(
        took < Duration::from_secs(5),
        "bounded by the deadline: {took:?}"
    );
    assert_eq!(err.clusters_tried(), ["zervigo"]);
    assert_eq!(err.unavailable().len(), 1, "{err}");
    assert_eq!(err.unavailable()[0].cluster(), "looma");
    assert_eq!(
        *err.unavailable()[0].reason(),
        UnavailableReason::DiscoveryPending
    );
    let text = err.to_string();
    assert!(text.contains("deadline"), "{text}");
    assert!(
        text.contains("looma: discovery has not answered yet"),
        "{text}"
    );
    consul.clear_fault();
    consul.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_transport_error_names_the_clusters_it_could_not_fail_over_to() {
    let (client, z, _l, consul) = setup(Fault::Down).await;
    for instance in &z {
        instance.kill().await;
    }
    let err = client
        .get("user", "/down")
        .timeout(Duration::from_secs(10))
        .send()
        .await
        .expect_err("zervigo is dead and looma's registry is down");
    assert_eq!(err.kind(), ErrorKind::Transport, "{err}");
    assert_eq!(err.unavailable().len(), 1, "{err}");
    assert_eq!(err.unavailable()[0].cluster(), "looma");
    assert!(
        matches!(
            *err.unavailable()[0].reason(),
            UnavailableReason::DiscoveryStale { .. }
        ),
        "{err}"
    );
    let text = err.to_string();
    assert!(text.contains("not failed over"), "{text}");
    consul.clear_fault();
    consul.shutdown().await;
}
