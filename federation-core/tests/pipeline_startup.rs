//! Startup routing against a real Consul double: a fresh client waits (briefly) for the first
//! answer of the registry it would rank highest instead of routing to whichever registry
//! answered first or failing with "discovery has not answered yet"; a service's discovery
//! watches start on its first call (or in `wait_ready`), never for services nobody calls;
//! Consul service names are watched case-insensitively.

mod discovery_support;
mod pipeline_support;

use std::time::{Duration, Instant};

use federation_core::client::FederatedServiceClient;
use federation_core::config::Config;
use federation_core::error::{ErrorKind, UnavailableReason};
use federation_testkit::consul::{ConsulDouble, Fault};
use federation_testkit::instance::ServiceInstance;

/// A Consul double answering every request only after `delay`, with one `user-service`
/// instance registered (`zervigo-1`).
async fn slow_zervigo(delay: Duration) -> (ConsulDouble, ServiceInstance) {
    let consul = discovery_support::double().await;
    let z = pipeline_support::start("zervigo", "user-service", 1)
        .await
        .remove(0);
    consul
        .register(discovery_support::instance(
            "zervigo-1",
            "user-service",
            "127.0.0.1",
            z.port(),
        ))
        .expect("registered");
    consul.set_fault(Fault::Slow(delay));
    (consul, z)
}

/// `user` in zervigo (Consul at `url`, preferred) and, when given, looma (static, answers at
/// once).
fn config(url: &str, looma: Option<&ServiceInstance>) -> Config {
    let mut clusters = vec![discovery_support::cluster(
        "zervigo",
        url,
        Duration::from_secs(5),
        None,
    )];
    let mut targets = vec![("zervigo", "user-service")];
    if let Some(l) = looma {
        clusters.push(pipeline_support::cluster(
            "looma",
            "looma-user-api",
            std::slice::from_ref(l),
        ));
        targets.push(("looma", "looma-user-api"));
    }
    pipeline_support::config(
        clusters,
        vec![pipeline_support::service("user", &targets, Some("zervigo"))],
    )
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn first_calls_wait_for_the_preferred_registry_instead_of_going_elsewhere() {
    let (consul, z) = slow_zervigo(Duration::from_millis(300)).await;
    let l = pipeline_support::start("looma", "looma-user-api", 1)
        .await
        .remove(0);
    let client = FederatedServiceClient::builder()
        .config(config(&consul.url(), Some(&l)))
        .discovery_startup_grace(Duration::from_secs(8))
        .build()
        .expect("client builds");
    // Looma's static list is ready at once; zervigo's Consul answers ~300 ms later.
    let r = client
        .get("user", "/hello")
        .timeout(Duration::from_secs(8))
        .send()
        .await
        .expect("first call succeeds");
    assert_eq!(
        r.served().cluster(),
        "zervigo",
        "served by the preferred cluster"
    );
    assert_eq!(z.requests(), 1);
    assert_eq!(l.requests(), 0, "nothing went to looma");
    consul.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_call_before_the_first_answer_waits_instead_of_failing() {
    let (consul, z) = slow_zervigo(Duration::from_millis(300)).await;
    let client = FederatedServiceClient::builder()
        .config(config(&consul.url(), None))
        .discovery_startup_grace(Duration::from_secs(8))
        .build()
        .expect("client builds");
    let r = client
        .get("user", "/hello")
        .timeout(Duration::from_secs(8))
        .send()
        .await
        .expect("no DiscoveryPending failure");
    assert_eq!(r.served().cluster(), "zervigo");
    assert_eq!(z.requests(), 1);
    consul.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_wait_is_bounded_by_the_grace_and_the_deadline() {
    let (consul, _z) = slow_zervigo(Duration::from_millis(0)).await;
    consul.set_fault(Fault::Hang);
    let client = FederatedServiceClient::builder()
        .config(config(&consul.url(), None))
        .discovery_startup_grace(Duration::from_millis(1500))
        .build()
        .expect("client builds");

    // A call whose deadline is shorter than the grace waits only until its deadline.
    let started = Instant::now();
    let err = client
        .get("user", "/hello")
        .timeout(Duration::from_millis(100))
        .send()
        .await
        .expect_err("the registry never answers");
    assert!(started.elapsed() >= Duration::from_millis(90), "it waited");
    assert!(
        started.elapsed() < Duration::from_millis(1400),
        "not past its deadline: {:?}",
        started.elapsed()
    );
    assert_eq!(err.kind(), ErrorKind::NoHealthyInstance, "{err}");
    assert_eq!(
        *err.unavailable()[0].reason(),
        UnavailableReason::DiscoveryPending
    );

    // A call with a long deadline waits until the grace ends, then fails with the reason.
    let err = client
        .get("user", "/hello")
        .timeout(Duration::from_secs(20))
        .send()
        .await
        .expect_err("the registry never answers");
    assert!(
        started.elapsed() >= Duration::from_millis(1400),
        "waited for the grace: {:?}",
        started.elapsed()
    );
    assert!(
        started.elapsed() < Duration::from_secs(15),
        "not for its whole deadline"
    );
    assert_eq!(err.kind(), ErrorKind::NoHealthyInstance, "{err}");
    assert_eq!(
        *err.unavailable()[0].reason(),
        UnavailableReason::DiscoveryPending
    );

    // After the grace, calls fail fast again.
    let fast = Instant::now();
    let err = client
        .get("user", "/hello")
        .timeout(Duration::from_secs(20))
        .send()
        .await
        .expect_err("still no answer");
    assert_eq!(err.kind(), ErrorKind::NoHealthyInstance, "{err}");
    assert!(
        fast.elapsed() < Duration::from_secs(2),
        "{:?}",
        fast.elapsed()
    );
    consul.clear_fault();
    consul.shutdown().await;
}

/// `user` (Consul `user-service`) and `billing` (`billing-service`), both in zervigo only.
fn two_services(url: &str) -> Config {
    pipeline_support::config(
        vec![discovery_support::cluster(
            "zervigo",
            url,
            Duration::from_secs(5),
            None,
        )],
        vec![
            pipeline_support::service("user", &[("zervigo", "user-service")], None),
            pipeline_support::service("billing", &[("zervigo", "billing-service")], None),
        ],
    )
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn lazy_watches_start_on_a_services_first_call_and_in_wait_ready() {
    let (consul, z) = slow_zervigo(Duration::from_millis(0)).await;
    consul.clear_fault();
    let client = FederatedServiceClient::builder()
        .config(two_services(&consul.url()))
        .lazy_discovery_watches(true)
        .build()
        .expect("client builds");
    client
        .get("user", "/hello")
        .timeout(Duration::from_secs(8))
        .send()
        .await
        .expect("the first call waits for its registry and succeeds");
    assert_eq!(z.requests(), 1);
    assert!(
        consul.health_requests("user-service") > 0,
        "called: watched"
    );
    assert_eq!(
        consul.health_requests("billing-service"),
        0,
        "a configured service never called is not watched"
    );
    client
        .wait_ready(Duration::from_secs(8))
        .await
        .expect("every route answers");
    assert!(
        consul.health_requests("billing-service") > 0,
        "wait_ready starts the watches no call started"
    );
    consul.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn with_lazy_watches_a_first_call_long_after_build_still_waits_for_its_registry() {
    let (consul, z) = slow_zervigo(Duration::from_millis(300)).await;
    let client = FederatedServiceClient::builder()
        .config(config(&consul.url(), None))
        .discovery_startup_grace(Duration::from_millis(600))
        .lazy_discovery_watches(true)
        .build()
        .expect("client builds");
    // Longer than the grace: counted from build, it would be over before the first call.
    tokio::time::sleep(Duration::from_millis(800)).await;
    assert_eq!(consul.health_requests("user-service"), 0, "not watched yet");
    let r = client
        .get("user", "/hello")
        .timeout(Duration::from_secs(8))
        .send()
        .await
        .expect("the grace starts with the service's watches: no DiscoveryPending failure");
    assert_eq!(r.served().cluster(), "zervigo");
    assert_eq!(z.requests(), 1);
    consul.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn consul_names_differing_in_case_share_one_watcher() {
    let consul = discovery_support::double().await;
    consul
        .register(discovery_support::instance(
            "u1",
            "user-service",
            "127.0.0.1",
            8081,
        ))
        .expect("registered");
    let cfg = discovery_support::cluster("zervigo", &consul.url(), Duration::from_secs(5), None);
    let discovery = discovery_support::discovery(&cfg);
    let mut lower = discovery.watch("user-service");
    let mut mixed = discovery.watch("User-Service");
    let a = discovery_support::until(&mut lower, "lower-case answer", |s| s.initialized).await;
    let b = discovery_support::until(&mut mixed, "mixed-case answer", |s| s.initialized).await;
    assert_eq!(discovery_support::ids(&a), vec!["u1"]);
    assert_eq!(discovery_support::ids(&b), vec!["u1"]);
    assert_eq!(discovery.stats().services.len(), 1, "one watcher");
    discovery.shutdown();
    consul.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_configurations_lazy_watches_key_defers_watches_and_the_builder_overrides_it() {
    let (consul, _z) = slow_zervigo(Duration::from_millis(0)).await;
    consul.clear_fault();
    let mut lazy = two_services(&consul.url());
    lazy.discovery.lazy_watches = true;
    let client = FederatedServiceClient::from_config(lazy.clone()).expect("client builds");
    client
        .get("user", "/hello")
        .timeout(Duration::from_secs(8))
        .send()
        .await
        .expect("the first call waits for its registry and succeeds");
    assert_eq!(
        consul.health_requests("billing-service"),
        0,
        "`discovery.lazy_watches: true`: a service never called is not watched"
    );
    drop(client);
    let eager = FederatedServiceClient::builder()
        .config(lazy)
        .lazy_discovery_watches(false)
        .build()
        .expect("client builds");
    let deadline = Instant::now() + Duration::from_secs(8);
    while consul.health_requests("billing-service") == 0 && Instant::now() < deadline {
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    assert!(
        consul.health_requests("billing-service") > 0,
        "the builder's `lazy_discovery_watches(false)` wins over the configuration"
    );
    drop(eager);
    consul.shutdown().await;
}
