//! The testkit's Redis servers: a standalone server stops, dies and comes back on the same
//! address; a cluster reaches `cluster_state:ok` and moves a slot with its keys.

use federation_testkit::redis::{RedisCluster, RedisServer};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_standalone_server_restarts_on_the_same_port_and_dies_with_its_owner() {
    let redis = RedisServer::start().await.expect("redis-server starts");
    let url = redis.url();
    let pid = redis.pid().expect("running");
    let mut conn = redis.connection().await.expect("connects");
    redis::cmd("SET")
        .arg("k")
        .arg("v")
        .query_async::<()>(&mut conn)
        .await
        .expect("SET");
    assert_eq!(redis.keys("*").await.expect("KEYS"), vec!["k".to_owned()]);
    redis.kill();
    assert!(!redis.is_running());
    assert!(
        redis.connection().await.is_err(),
        "nothing listens after kill"
    );
    redis.restart().await.expect("restarts");
    assert_eq!(redis.url(), url, "same address");
    assert!(
        redis.keys("*").await.expect("KEYS").is_empty(),
        "empty after restart"
    );
    let new_pid = redis.pid().expect("running");
    assert_ne!(new_pid, pid);
    drop(redis);
    assert!(
        !std::path::Path::new(&format!("/proc/{new_pid}")).exists()
            || std::fs::read_to_string(format!("/proc/{new_pid}/stat"))
                .is_ok_and(|s| s.contains(") Z")),
        "the process is gone after drop"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_unix_socket_server_answers_on_its_socket() {
    let redis = RedisServer::start_unix()
        .await
        .expect("redis-server starts");
    let path = redis.socket_path().expect("unix");
    assert!(path.exists());
    assert!(redis.url().starts_with("unix://"));
    redis.flush().await.expect("FLUSHALL over the socket");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_cluster_moves_a_slot_with_its_keys() {
    let cluster = RedisCluster::start().await.expect("cluster starts");
    assert_eq!(cluster.seeds().len(), 3);
    let client = redis::cluster::ClusterClient::new(
        cluster
            .seeds()
            .iter()
            .map(|s| format!("redis://{s}"))
            .collect::<Vec<_>>(),
    )
    .expect("cluster client");
    let mut conn = client.get_async_connection().await.expect("connects");
    redis::cmd("SET")
        .arg("moving")
        .arg("1")
        .query_async::<()>(&mut conn)
        .await
        .expect("SET");
    let from = cluster.owner_of("moving").await.expect("owner");
    let to = *cluster
        .ports()
        .iter()
        .find(|p| **p != from)
        .expect("another");
    cluster.move_slot_of("moving", to).await.expect("moves");
    assert_eq!(cluster.owner_of("moving").await.expect("owner"), to);
    let value: String = redis::cmd("GET")
        .arg("moving")
        .query_async(&mut conn)
        .await
        .expect("GET follows");
    assert_eq!(value, "1");
    cluster.kill_node(0).await;
    cluster.restart_node(0).await.expect("node rejoins");
}
