//! Blocking-query watching against the Consul double: latency of changes, idle request rate,
//! index resets, address fallback, health classification, sharing and static sources.

mod discovery_support;

use std::collections::BTreeMap;
use std::time::{Duration, Instant};

use discovery_support::*;
use federation_core::config::{ClusterConfig, DiscoverySource, StaticInstance};
use federation_core::discovery::{ClusterDiscovery, Health, InstanceWatch};
use federation_testkit::consul::{CheckStatus, ConsulDouble, Fault};

/// Waits until the double has received at least `n` health requests for `service` (the watcher
/// sent its next query), polling every 5 ms; panics after [`EVENTUALLY`].
async fn until_requests(consul: &ConsulDouble, service: &str, n: u64) {
    let deadline = tokio::time::Instant::now() + EVENTUALLY;
    while consul.health_requests(service) < n {
        assert!(
            tokio::time::Instant::now() < deadline,
            "{service}: {} health requests, waited for {n}",
            consul.health_requests(service)
        );
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
}

/// Adds instance `u{n}` of `user-api` once the watcher has parked its next blocking query (the
/// first read, one blocking query, and one more per change seen so far: `n` requests), and waits
/// until the subscriber sees it. Returns the instance's id.
async fn add_once_parked(consul: &ConsulDouble, rx: &mut InstanceWatch, n: u16) -> String {
    until_requests(consul, "user-api", u64::from(n)).await;
    let id = format!("u{n}");
    consul
        .register(instance(&id, "user-api", "127.0.0.1", 8080 + n))
        .expect("register");
    until(rx, "the new instance", |s| ids(s).contains(&id)).await;
    id
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn changes_reach_subscribers_with_a_median_delay_under_100ms() {
    let consul = double().await;
    consul
        .register(instance("u1", "user-api", "127.0.0.1", 8081))
        .expect("register");
    // A 30 s wait: anything seen well before that came from the blocking query returning.
    let d = discovery(&cluster(
        "zervigo",
        &consul.url(),
        Duration::from_secs(30),
        None,
    ));
    d.wait_initialized("user-api", EVENTUALLY)
        .await
        .expect("initial read");
    let mut rx = d.watch("user-api");
    rx.borrow_and_update();

    let mut delays = Vec::new();
    for n in 2..=6u16 {
        add_once_parked(&consul, &mut rx, n).await;
        let seen = Instant::now();
        let changed = consul
            .last_change("user-api")
            .expect("the double recorded the change");
        delays.push(seen.saturating_duration_since(changed));
    }
    delays.sort();
    // The median (of 5) tolerates two scheduling hiccups on a loaded machine; every change must
    // still arrive far sooner than the 30 s wait.
    assert!(
        delays[2] < Duration::from_millis(100),
        "median delay {:?} (all: {delays:?})",
        delays[2]
    );
    assert!(
        delays.iter().all(|d| *d < Duration::from_secs(5)),
        "{delays:?}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_storm_of_changes_is_followed_without_pacing() {
    let consul = double().await;
    consul
        .register(instance("u1", "user-api", "127.0.0.1", 8081))
        .expect("register");
    // A bucket of 2 that refills once a minute: if polls after real changes took tokens, the
    // third change would wait a minute (the bench's change storm saw 250 ms per refill).
    let paced = federation_core::discovery::DiscoveryTuning {
        pace_burst: 2,
        pace_refill: Duration::from_secs(60),
        ..tuning()
    };
    let cluster = cluster("zervigo", &consul.url(), Duration::from_secs(30), None);
    let d = federation_core::discovery::ClusterDiscovery::with_tuning(&cluster, paced)
        .expect("valid cluster config");
    let mut rx = d.watch("user-api");
    until(&mut rx, "the first read", |s| s.initialized).await;
    for n in 2..=7u16 {
        add_once_parked(&consul, &mut rx, n).await;
    }
    d.shutdown();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_idle_watch_sends_at_most_one_request_per_wait_period() {
    let consul = double().await;
    consul
        .register(instance("u1", "idle-api", "127.0.0.1", 8081))
        .expect("register");
    let d = discovery(&cluster(
        "zervigo",
        &consul.url(),
        Duration::from_secs(1),
        None,
    ));
    let mut rx = d.watch("idle-api");
    until(&mut rx, "initialized", |s| s.initialized).await;
    // The first blocking query has started (after the index-0 read); observe three periods.
    until_requests(&consul, "idle-api", 2).await;
    let before = consul.health_requests("idle-api");
    tokio::time::sleep(Duration::from_secs(3)).await;
    let sent = consul.health_requests("idle-api") - before;
    // Three periods, plus one request that may start right at the window's edge.
    assert!(sent <= 4, "{sent} requests in 3 s with wait=1s");
    assert!(
        sent >= 2,
        "{sent} requests: the watch should keep long-polling"
    );
    assert!(
        !rx.has_changed().expect("open"),
        "idle timeouts do not wake subscribers"
    );
    let stats = d.stats();
    assert_eq!(stats.services["idle-api"].errors, 0, "{stats:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_index_reset_is_detected_and_later_changes_are_seen() {
    let consul = double().await;
    consul
        .register(instance("a", "reset-api", "127.0.0.1", 9001))
        .expect("register");
    // With a 30 s wait, a watcher that kept its old (too high) index would block past the
    // test's patience after the reset.
    let d = discovery(&cluster(
        "zervigo",
        &consul.url(),
        Duration::from_secs(30),
        None,
    ));
    let first = d
        .wait_initialized("reset-api", EVENTUALLY)
        .await
        .expect("initial read");
    let mut rx = d.watch("reset-api");
    // The blocking query is parked (index-0 read, then the blocking one). A reset that landed in
    // the instant between its arrival and its parking would be missed by the double itself, so
    // the reset is repeated until the parked query has returned (request 3: the re-read).
    until_requests(&consul, "reset-api", 2).await;
    let deadline = tokio::time::Instant::now() + EVENTUALLY;
    while consul.health_requests("reset-api") < 3 {
        assert!(
            tokio::time::Instant::now() < deadline,
            "the reset never returned the query"
        );
        consul.set_fault(Fault::IndexReset);
        let settle = tokio::time::Instant::now() + Duration::from_millis(500);
        while consul.health_requests("reset-api") < 3 && tokio::time::Instant::now() < settle {
            tokio::time::sleep(Duration::from_millis(5)).await;
        }
    }
    // The watcher is blocking again, now in the new index space (read at 0, then blocking).
    until_requests(&consul, "reset-api", 4).await;
    consul
        .register(instance("b", "reset-api", "127.0.0.1", 9002))
        .expect("register");
    let set = until(&mut rx, "instance b after the reset", |s| {
        ids(s) == ["a", "b"]
    })
    .await;
    assert!(!set.stale);
    assert!(
        set.index < first.index,
        "the index followed the server down: {} -> {}",
        first.index,
        set.index
    );
    // And it keeps blocking on the new index space.
    consul.deregister("a").expect("deregister");
    until(&mut rx, "a removed", |s| ids(s) == ["b"]).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_empty_service_address_falls_back_to_the_node_address() {
    let consul = double().await;
    consul
        .register(instance("no-addr", "fallback-api", "", 7000))
        .expect("register");
    consul
        .register(instance("own-addr", "fallback-api", "10.1.2.3", 7001))
        .expect("register");
    let d = discovery(&cluster(
        "zervigo",
        &consul.url(),
        Duration::from_secs(5),
        None,
    ));
    let set = d
        .wait_initialized("fallback-api", EVENTUALLY)
        .await
        .expect("initial read");
    let by_id = |id: &str| {
        set.instances
            .iter()
            .find(|i| i.id == id)
            .unwrap_or_else(|| panic!("{id} missing from {set:?}"))
            .clone()
    };
    assert_eq!(
        by_id("no-addr").authority(),
        "127.0.0.1:7000",
        "Node.Address used"
    );
    assert_eq!(by_id("own-addr").authority(), "10.1.2.3:7001");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn warning_instances_are_kept_and_marked_critical_ones_are_not_routable() {
    let consul = double().await;
    for (id, port) in [("ok", 1), ("warn", 2), ("crit", 3), ("maint", 4)] {
        consul
            .register(with_ttl_check(
                instance(id, "health-api", "127.0.0.1", 9000 + port),
                "passing",
            ))
            .expect("register");
    }
    let d = discovery(&cluster(
        "zervigo",
        &consul.url(),
        Duration::from_secs(30),
        None,
    ));
    let mut rx = d.watch("health-api");
    until(&mut rx, "all passing", |s| {
        s.instances.len() == 4 && s.instances.iter().all(|i| i.health == Health::Passing)
    })
    .await;

    consul
        .set_check_status("check:warn", CheckStatus::Warning, "HTTP 429")
        .expect("set status");
    consul
        .set_check_status("check:crit", CheckStatus::Critical, "down")
        .expect("set status");
    consul
        .set_maintenance("maint", true, Some("deploy"))
        .expect("maintenance");
    let health_of = |s: &federation_core::discovery::InstanceSet, id: &str| {
        s.instances.iter().find(|i| i.id == id).map(|i| i.health)
    };
    let set = until(&mut rx, "warning/critical/maintenance", |s| {
        health_of(s, "warn") == Some(Health::Warning)
            && health_of(s, "crit") == Some(Health::Critical)
            && health_of(s, "maint") == Some(Health::Critical)
    })
    .await;
    assert_eq!(set.instances.len(), 4, "critical instances stay listed");
    let mut routable: Vec<_> = set.routable().map(|i| i.id.as_str()).collect();
    routable.sort_unstable();
    assert_eq!(
        routable,
        ["ok", "warn"],
        "warning kept, critical and maintenance out"
    );

    consul
        .set_maintenance("maint", false, None)
        .expect("maintenance off");
    until(&mut rx, "maintenance over", |s| {
        health_of(s, "maint") == Some(Health::Passing)
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn one_watcher_is_shared_per_service_and_spurious_wakeups_are_silent() {
    let consul = double().await;
    consul
        .register(instance("a", "shared-api", "127.0.0.1", 9100))
        .expect("register");
    let d = discovery(&cluster(
        "zervigo",
        &consul.url(),
        Duration::from_secs(30),
        None,
    ));
    let mut first = d.watch("shared-api");
    let mut second = d.clone().watch("shared-api");
    until(&mut first, "initialized", |s| s.initialized).await;
    until(&mut second, "initialized", |s| s.initialized).await;
    until_requests(&consul, "shared-api", 2).await;
    // Not a wait for a state: a window in which a second watcher would show its own requests.
    tokio::time::sleep(Duration::from_millis(200)).await;
    let polls = d.stats().services["shared-api"].polls;
    assert!(polls <= 3, "one watcher for two subscribers: {polls} polls");

    let deadline = tokio::time::Instant::now() + EVENTUALLY;
    while d.stats().services["shared-api"].polls <= polls {
        assert!(
            tokio::time::Instant::now() < deadline,
            "the wakeup was never answered"
        );
        consul.spurious_wakeup("shared-api");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    assert!(
        !first.has_changed().expect("open"),
        "an unchanged answer does not notify"
    );
}

#[tokio::test]
async fn static_sources_answer_at_once_with_passing_instances() {
    let mut services = BTreeMap::new();
    services.insert(
        "user-service".to_owned(),
        vec![StaticInstance {
            id: None,
            address: "::1".to_owned(),
            port: 8081,
            tags: vec!["v2".to_owned()],
            meta: BTreeMap::new(),
            weight: 3,
        }],
    );
    let cluster = ClusterConfig::new("local", DiscoverySource::Static(services));
    let d = ClusterDiscovery::new(&cluster).expect("static cluster");
    let set = d
        .wait_initialized("user-service", Duration::from_millis(10))
        .await
        .expect("static sets are ready at once");
    assert!(!set.stale);
    let [i] = &set.instances[..] else {
        panic!("one instance expected: {set:?}")
    };
    assert_eq!(i.authority(), "[::1]:8081");
    assert_eq!((i.health, i.weights.passing), (Health::Passing, 3));
    let unknown = d.watch("nope").borrow().clone();
    assert!(unknown.initialized && unknown.instances.is_empty());
    let err = d
        .deregister("x")
        .await
        .expect_err("static clusters cannot register");
    assert!(err.to_string().contains("`local`"), "{err}");
}

#[test]
fn creating_discovery_needs_no_runtime_and_no_network() {
    let c = cluster(
        "zervigo",
        "http://127.0.0.1:1",
        Duration::from_secs(60),
        None,
    );
    let d = ClusterDiscovery::new(&c).expect("no I/O at construction");
    assert_eq!(d.cluster(), "zervigo");
    // Outside a runtime, watch() reports the problem instead of panicking.
    let set = d.watch("user").borrow().clone();
    assert!(!set.initialized);
    assert!(
        set.last_error
            .as_deref()
            .is_some_and(|e| e.contains("runtime"))
    );

    // A token variable that is not set is a configuration error naming it, not a later 403.
    let mut c = c;
    if let DiscoverySource::Consul(source) = &mut c.source {
        source.token_env = Some("FEDERATION_DISCOVERY_TEST_UNSET_TOKEN".to_owned());
    }
    let err = ClusterDiscovery::new(&c).expect_err("unset token variable");
    assert_eq!(
        *err.kind(),
        federation_core::discovery::DiscoveryErrorKind::Config
    );
    assert!(
        err.to_string()
            .contains("FEDERATION_DISCOVERY_TEST_UNSET_TOKEN"),
        "{err}"
    );
}
