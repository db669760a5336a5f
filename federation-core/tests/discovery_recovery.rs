//! A watcher backing off from an unreachable Consul agent polls again as soon as the agent
//! accepts connections, not when a backoff that grew during the outage runs out (issue 24:
//! after a long outage the client kept a stale instance list for up to 30 s).

mod discovery_support;

use std::time::{Duration, Instant};

use discovery_support::*;
use federation_core::discovery::{ClusterDiscovery, DiscoveryTuning};
use federation_testkit::consul::Fault;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_agent_back_after_a_long_outage_is_polled_at_once() {
    let consul = double().await;
    for (id, port) in [("a", 8081), ("b", 8082)] {
        consul
            .register(instance(id, "user-api", "127.0.0.1", port))
            .expect("register");
    }
    // The backoff doubles from 10 ms to its 4 s cap: after ten failures the next delay is
    // 2-4 s (equal jitter), so only an early poll can see the change below within 1.5 s.
    let tuning = DiscoveryTuning {
        backoff_base: Duration::from_millis(10),
        backoff_max: Duration::from_secs(4),
        ..tuning()
    };
    let config = cluster("zervigo", &consul.url(), Duration::from_secs(30), None);
    let d = ClusterDiscovery::with_tuning(&config, tuning).expect("valid cluster config");
    let mut rx = d.watch("user-api");
    until(&mut rx, "initialized", |s| s.initialized).await;

    consul.set_fault(Fault::Down);
    let grown_by = Instant::now() + EVENTUALLY;
    while d.stats().services["user-api"].errors < 10 {
        assert!(
            Instant::now() < grown_by,
            "the watcher never failed ten times"
        );
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    consul.clear_fault();
    consul.deregister("b").expect("deregister");
    let back = Instant::now();
    let set = until(&mut rx, "recovered", |s| !s.stale && ids(s) == ["a"]).await;
    assert!(set.last_error.is_none());
    assert!(
        back.elapsed() < Duration::from_millis(1500),
        "the change reached the client {:?} after the agent came back",
        back.elapsed()
    );
}
