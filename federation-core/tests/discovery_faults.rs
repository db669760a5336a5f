//! Discovery under registry failures: the last known set is kept and marked stale, recovery
//! clears it, ACL problems surface as errors naming the cluster, busy loops are paced.

mod discovery_support;

use std::time::Duration;

use discovery_support::*;
use federation_core::discovery::DiscoveryErrorKind;
use federation_testkit::consul::{AclOptions, AclToken, ConsulDouble, ConsulOptions, Fault};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpListener;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn consul_down_keeps_the_last_set_marked_stale_and_recovery_clears_it() {
    let consul = double().await;
    consul
        .register(instance("a", "user-api", "127.0.0.1", 8081))
        .expect("register");
    consul
        .register(instance("b", "user-api", "127.0.0.1", 8082))
        .expect("register");
    let d = discovery(&cluster(
        "zervigo",
        &consul.url(),
        Duration::from_secs(30),
        None,
    ));
    let mut rx = d.watch("user-api");
    let fresh = until(&mut rx, "initialized", |s| s.initialized).await;
    assert_eq!(ids(&fresh), ["a", "b"]);

    consul.set_fault(Fault::Down);
    let stale = until(&mut rx, "stale", |s| s.stale).await;
    assert_eq!(
        ids(&stale),
        ["a", "b"],
        "never emptied because Consul failed"
    );
    assert_eq!(
        stale.last_success, fresh.last_success,
        "time of the last success kept"
    );
    let error = stale.last_error.clone().expect("the error is recorded");
    assert!(error.contains("`zervigo`"), "{error}");
    let stats = d.stats().services["user-api"].clone();
    assert!(stats.errors >= 1 && stats.stale, "{stats:?}");
    assert_eq!(
        stats.last_error.map(|e| e.kind().clone()),
        Some(DiscoveryErrorKind::Unreachable)
    );

    // While down, the double changes; on return the watcher catches up and clears stale.
    consul.clear_fault();
    consul.deregister("b").expect("deregister");
    let back = until(&mut rx, "recovered", |s| !s.stale && ids(s) == ["a"]).await;
    assert!(back.last_error.is_none());
    assert!(back.last_success > fresh.last_success);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn garbled_answers_and_leader_loss_are_errors_for_that_poll_only() {
    let consul = double().await;
    consul
        .register(instance("a", "user-api", "127.0.0.1", 8081))
        .expect("register");
    let d = discovery(&cluster(
        "zervigo",
        &consul.url(),
        Duration::from_secs(30),
        None,
    ));
    let mut rx = d.watch("user-api");
    until(&mut rx, "initialized", |s| s.initialized).await;

    for (fault, kind) in [
        (Fault::Garbled, "parse"),
        (Fault::NoLeader, "status"),
        (Fault::Status(429, String::new()), "status"),
    ] {
        consul.set_fault(fault.clone());
        // A change wakes the parked blocking query so it meets the fault.
        consul
            .register(instance("poke", "user-api", "127.0.0.1", 9999))
            .expect("register");
        let stale = until(&mut rx, "stale", |s| s.stale).await;
        assert!(
            ids(&stale).contains(&"a".to_owned()),
            "{fault:?}: instances kept: {stale:?}"
        );
        let last = d.stats().services["user-api"].last_error.clone();
        assert_eq!(
            last.map(|e| e.kind().label()),
            Some(kind),
            "{fault:?} classified"
        );
        consul.clear_fault();
        consul.deregister("poke").expect("deregister");
        until(&mut rx, "recovered", |s| !s.stale && ids(s) == ["a"]).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_first_failure_is_reported_per_cluster_by_wait_initialized() {
    // Nothing listens on this port once the listener is dropped.
    let port = {
        let l = TcpListener::bind("127.0.0.1:0").await.expect("bind");
        l.local_addr().expect("addr").port()
    };
    let url = format!("http://127.0.0.1:{port}");
    let d = discovery(&cluster("looma", &url, Duration::from_secs(5), None));
    let err = d
        .wait_initialized("ai-service", EVENTUALLY)
        .await
        .expect_err("Consul is unreachable");
    assert_eq!(*err.kind(), DiscoveryErrorKind::Unreachable);
    assert_eq!(err.cluster(), "looma");
    assert!(err.to_string().contains("`looma`"), "{err}");
    let set = d.watch("ai-service").borrow().clone();
    assert!(!set.initialized && set.instances.is_empty() && set.last_error.is_some());
}

fn acl_double_options() -> ConsulOptions {
    let mut options = ConsulOptions::new("zervigo-dc");
    options.acl = Some(AclOptions {
        default_deny: true,
        tokens: vec![AclToken {
            secret: "reader-secret".to_owned(),
            read: true,
            write: false,
        }],
    });
    options
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_token_is_sent_and_a_403_names_the_cluster() {
    let consul = ConsulDouble::start(acl_double_options())
        .await
        .expect("start");
    consul
        .register(instance("a", "user-api", "127.0.0.1", 8081))
        .expect("register");

    // default_deny: without the token the list would be silently filtered to [].
    let good = cluster(
        "zervigo",
        &consul.url(),
        Duration::from_secs(5),
        Some("reader-secret"),
    );
    let d = discovery(&good);
    let set = d
        .wait_initialized("user-api", EVENTUALLY)
        .await
        .expect("authorized read");
    assert_eq!(ids(&set), ["a"], "the token reached Consul");

    let bad = cluster(
        "zervigo",
        &consul.url(),
        Duration::from_secs(5),
        Some("typo-secret"),
    );
    let err = discovery(&bad)
        .wait_initialized("user-api", EVENTUALLY)
        .await
        .expect_err("unknown token");
    assert_eq!(*err.kind(), DiscoveryErrorKind::Forbidden);
    let text = err.to_string();
    assert!(
        text.contains("`zervigo`") && text.contains("ACL not found"),
        "{text}"
    );
    assert!(
        !text.contains("typo-secret"),
        "the token is never printed: {text}"
    );

    // A token deleted while watching: the set stays, marked stale with the 403.
    let mut rx = d.watch("user-api");
    consul.set_fault(Fault::AclNotFound);
    consul
        .register(instance("b", "user-api", "127.0.0.1", 8082))
        .expect("register");
    let stale = until(&mut rx, "stale", |s| s.stale).await;
    // The parked query may still deliver `b` before the next request meets the 403.
    assert!(ids(&stale).contains(&"a".to_owned()), "{stale:?}");
    let kind = d.stats().services["user-api"]
        .last_error
        .clone()
        .map(|e| e.kind().clone());
    assert_eq!(kind, Some(DiscoveryErrorKind::Forbidden));
    assert!(
        stale
            .last_error
            .as_deref()
            .is_some_and(|e| e.contains("403"))
    );
}

/// A server that answers every request at once with the same index: a busy-loop trap.
async fn instant_server() -> (String, std::sync::Arc<std::sync::atomic::AtomicU64>) {
    use std::sync::atomic::{AtomicU64, Ordering};
    let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind");
    let url = format!("http://{}", listener.local_addr().expect("addr"));
    let hits = std::sync::Arc::new(AtomicU64::new(0));
    let counter = std::sync::Arc::clone(&hits);
    tokio::spawn(async move {
        while let Ok((mut conn, _)) = listener.accept().await {
            let counter = std::sync::Arc::clone(&counter);
            tokio::spawn(async move {
                let mut buf = vec![0u8; 4096];
                loop {
                    match conn.read(&mut buf).await {
                        Ok(0) | Err(_) => return,
                        Ok(_) => {}
                    }
                    counter.fetch_add(1, Ordering::SeqCst);
                    let reply = "HTTP/1.1 200 OK\r\nX-Consul-Index: 0\r\n\
                                 content-type: application/json\r\ncontent-length: 2\r\n\r\n[]";
                    if conn.write_all(reply.as_bytes()).await.is_err() {
                        return;
                    }
                }
            });
        }
    });
    (url, hits)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_server_that_never_blocks_is_paced_not_hammered() {
    let (url, hits) = instant_server().await;
    let d = federation_core::discovery::ClusterDiscovery::with_tuning(
        &cluster("zervigo", &url, Duration::from_secs(30), None),
        federation_core::discovery::DiscoveryTuning {
            pace_burst: 4,
            pace_refill: Duration::from_millis(100),
            ..tuning()
        },
    )
    .expect("config");
    let mut rx = d.watch("busy");
    let set = until(&mut rx, "initialized", |s| s.initialized).await;
    assert_eq!(set.index, 1, "index 0 is clamped to 1");
    tokio::time::sleep(Duration::from_secs(1)).await;
    let n = hits.load(std::sync::atomic::Ordering::SeqCst);
    // Burst 4 + ~10 refills per second; without pacing this would be thousands.
    assert!(n <= 20, "{n} requests in ~1 s");
    assert!(n >= 3, "{n}: the watcher keeps polling");
    d.shutdown();
    tokio::time::sleep(Duration::from_millis(200)).await;
    let after = hits.load(std::sync::atomic::Ordering::SeqCst);
    tokio::time::sleep(Duration::from_millis(500)).await;
    assert_eq!(
        hits.load(std::sync::atomic::Ordering::SeqCst),
        after,
        "shutdown stops the watcher"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_address_pointing_at_the_other_datacenter_is_a_config_error() {
    let consul = double().await;
    consul
        .register(instance("a", "user-api", "127.0.0.1", 8081))
        .expect("register");
    let mut looma = cluster("looma", &consul.url(), Duration::from_secs(5), None);
    if let federation_core::config::DiscoverySource::Consul(source) = &mut looma.source {
        source.datacenter = Some("looma-dc".to_owned());
    }
    let err = discovery(&looma)
        .wait_initialized("user-api", EVENTUALLY)
        .await
        .expect_err("zervigo-dc answered for looma");
    assert_eq!(*err.kind(), DiscoveryErrorKind::Config);
    assert!(
        err.message().contains("zervigo-dc") && err.message().contains("looma-dc"),
        "{err}"
    );
}
