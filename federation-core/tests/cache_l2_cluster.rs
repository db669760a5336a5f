//! The shared L2 tier on a real three-master Redis Cluster: values are shared between processes,
//! follow their hash slot when it moves to another master, and invalidations reach every process
//! and delete the key wherever it lives.

mod cache_l2_support;

use std::time::Duration;

use cache_l2_support::{Peer, client, get, wait_subscribed, yaml};
use federation_testkit::instance::{Behavior, Identity, ServiceInstance};
use federation_testkit::redis::RedisCluster;

/// Not a test: the entry point of the peer processes the tests below start (does nothing
/// unless started by `Peer::spawn`).
#[test]
fn peer_process() {
    cache_l2_support::peer_main();
}

async fn setup() -> (RedisCluster, ServiceInstance, String) {
    let cluster = RedisCluster::start().await.expect("cluster starts");
    let instance = ServiceInstance::start(Identity::new("zervigo", "user-service", "u1"))
        .await
        .expect("instance starts");
    let seeds = cluster.seeds().join(", ");
    let cfg = yaml(
        instance.port(),
        &format!("cluster: [{seeds}], timeout: 250ms"),
    );
    (cluster, instance, cfg)
}

/// The Redis key holding `path`'s value, once it was stored (the store runs in the background).
async fn stored_key(cluster: &RedisCluster, path: &str) -> String {
    for _ in 0..200 {
        let keys = cluster.keys(&format!("*:{path} *")).await.expect("KEYS");
        if let Some(key) = keys.into_iter().next() {
            return key;
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    panic!("{path} was never stored in the cluster");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn values_are_shared_and_follow_their_slot_to_another_master() {
    let (cluster, instance, cfg) = setup().await;
    let here = client(&cfg);
    wait_subscribed(&here).await;
    let mut peer = Peer::spawn(&cfg);

    assert_eq!(get(&here, "/api/v1/users/1").await.1, "miss");
    stored_key(&cluster, "/api/v1/users/1").await;
    assert_eq!(
        peer.get("/api/v1/users/1").1,
        "hit",
        "another process reads it"
    );

    get(&here, "/api/v1/users/2").await;
    let key = stored_key(&cluster, "/api/v1/users/2").await;
    let from = cluster.owner_of(&key).await.expect("owner");
    let to = *cluster
        .ports()
        .iter()
        .find(|p| **p != from)
        .expect("another master");
    cluster.move_slot_of(&key, to).await.expect("slot moves");
    assert_eq!(cluster.owner_of(&key).await.expect("owner"), to);
    assert_eq!(
        peer.get("/api/v1/users/2").1,
        "hit",
        "read from the new owner"
    );
    assert_eq!(instance.requests_for("/api/v1/users/2"), 1);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_invalidation_reaches_other_processes_and_deletes_the_key_on_its_master() {
    let (cluster, instance, cfg) = setup().await;
    let here = client(&cfg);
    wait_subscribed(&here).await;
    let mut peer = Peer::spawn(&cfg);
    let (_, _, old_len) = get(&here, "/api/v1/users/3").await;
    stored_key(&cluster, "/api/v1/users/3").await;
    assert_eq!(peer.get("/api/v1/users/3").1, "hit");
    let new_len = old_len + 300;
    instance.set_behavior(Behavior {
        body_size: Some(new_len),
        ..Behavior::default()
    });
    here.invalidate_prefix("user", "/api/v1/users/");
    let mut deleted = false;
    for _ in 0..200 {
        if cluster
            .keys("*:/api/v1/users/3 *")
            .await
            .expect("KEYS")
            .is_empty()
        {
            deleted = true;
            break;
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    assert!(deleted, "the key was deleted on its master");
    let reply = peer.ask(&format!("until_len /api/v1/users/3 {new_len} 2000"));
    assert!(reply.starts_with("ok "), "{reply}");
    stored_key(&cluster, "/api/v1/users/3").await;
    assert_eq!(get(&here, "/api/v1/users/3").await.2, new_len);
}
