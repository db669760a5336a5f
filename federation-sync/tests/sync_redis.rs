//! `RedisTarget` end to end with a real `redis-server` and the Kafka broker: changes published in zervigo land
//! in looma's Redis, a redelivery is not applied twice, a restarted subscriber still detects a
//! conflict from the stamp stored in Redis, deletes keep a tombstone, and tombstones are purged
//! only after the window.

mod support;

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use federation_core::config::{ConflictPolicy, EntityType, SyncCluster, SyncConfig};
use federation_sync::model::{HybridClock, Operation, system_clock};
use federation_sync::{Change, FederatedDataSync, MemoryTarget, RedisTarget, SyncTarget};
use serde_json::{Value, json};
use support::{eventually, redis};

const WAIT: Duration = Duration::from_secs(90);

/// zervigo, looma and a third cluster, `legacy`, whose clock is a minute behind (its changes
/// arrive "late"); `user` is owned by looma, `company` is last-writer-wins; tombstone window 20 s.
fn sync_config(bootstrap: &str, prefix: &str) -> SyncConfig {
    let clusters = ["zervigo", "looma", "legacy"]
        .iter()
        .map(|name| SyncCluster {
            name: (*name).into(),
            bootstrap_servers: vec![bootstrap.to_string()],
        })
        .collect();
    let mut user = EntityType::new("user");
    user.policy = ConflictPolicy::PreferCluster {
        owner: "looma".into(),
    };
    let mut sync = SyncConfig::new(clusters, vec![user, EntityType::new("company")]);
    sync.topic_prefix = prefix.into();
    sync.partitions = 3;
    sync.tombstone_window = Duration::from_secs(20);
    sync.publish_timeout = Duration::from_secs(20);
    sync
}

async fn build(sync: &SyncConfig, local: &str, clock: Option<HybridClock>) -> FederatedDataSync {
    let mut builder = FederatedDataSync::builder_for(Some(sync.clone())).local_cluster(local);
    if let Some(clock) = clock {
        builder = builder.clock(clock);
    }
    builder.build().await.expect("sync runtime")
}

/// Publish in `sync`'s cluster based on `store`, then record the result in `store`.
async fn write(
    sync: &FederatedDataSync,
    store: &dyn SyncTarget,
    id: (&str, &str),
    operation: Operation,
    data: Value,
) {
    let base = store.read(id.0, id.1).await.expect("read base");
    let change = Change::new(id.0, id.1, operation).data(data).base(base);
    let published = sync.publish(change).await.expect("publish");
    sync.apply_local(store, &published.event)
        .await
        .expect("apply locally");
}

async fn record(target: &RedisTarget, t: &str, id: &str) -> Option<Value> {
    let state = target.get(t, id).await.expect("read");
    state
        .and_then(|s| s.data)
        .map(|d| Value::Object(d.to_map()))
}

async fn metric(sync: &FederatedDataSync, line: &str) -> bool {
    eventually(WAIT, || async { sync.metrics_text().contains(line) }).await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn redis_target_end_to_end_on_a_real_broker() {
    let Some(server) = redis().await else {
        return;
    };
    let Some(broker) = support::broker().await else {
        return;
    };
    let config = sync_config(&broker.bootstrap_servers(), "redis-e2e");
    let zervigo = build(&config, "zervigo", None).await;
    let z_store = MemoryTarget::new();
    let looma_redis = RedisTarget::connect(&server.url(), "looma")
        .await
        .expect("connect");
    let looma = build(&config, "looma", None).await;
    let subscription = looma
        .subscribe(Arc::new(looma_redis.clone()))
        .expect("subscribe");
    for n in 0..10 {
        for id in ["1", "2"] {
            write(
                &zervigo,
                &z_store,
                ("user", id),
                Operation::Update,
                json!({"n": n}),
            )
            .await;
        }
    }
    let arrived = eventually(WAIT, || async {
        record(&looma_redis, "user", "1").await == Some(json!({"n": 9}))
            && record(&looma_redis, "user", "2").await == Some(json!({"n": 9}))
    })
    .await;
    assert!(arrived, "zervigo's updates reach looma's Redis");
    subscription.stop().await;

    // Redelivery: a consumer group of its own reads every change again; Redis already holds them.
    let mut again = config.clone();
    again.group = "redelivery".into();
    let replayer = build(&again, "looma", None).await;
    let fresh = RedisTarget::connect(&server.url(), "looma")
        .await
        .expect("connect");
    let replay = replayer.subscribe(Arc::new(fresh)).expect("subscribe");
    let duplicates = r#"federation_sync_events_total{origin="zervigo",entity_type="user",effect="duplicate"} 20"#;
    assert!(
        metric(&replayer, duplicates).await,
        "{}",
        replayer.metrics_text()
    );
    assert!(
        !replayer.metrics_text().contains(r#"effect="applied""#),
        "nothing applied twice"
    );
    replay.stop().await;

    // Restart: looma changes user 1 while its subscriber is down, zervigo concurrently; the
    // restarted subscriber (new runtime, new connection) finds looma's stamp in Redis.
    write(
        &looma,
        &looma_redis,
        ("user", "1"),
        Operation::Update,
        json!({"n": "looma"}),
    )
    .await;
    write(
        &zervigo,
        &z_store,
        ("user", "1"),
        Operation::Update,
        json!({"n": "zervigo"}),
    )
    .await;
    drop(looma);
    let looma = build(&config, "looma", None).await;
    let restarted = RedisTarget::connect(&server.url(), "looma")
        .await
        .expect("connect");
    let subscription = looma.subscribe(Arc::new(restarted)).expect("subscribe");
    let conflict =
        r#"federation_sync_conflicts_total{entity_type="user",policy="prefer_cluster"} 1"#;
    assert!(metric(&looma, conflict).await, "{}", looma.metrics_text());
    assert_eq!(
        record(&looma_redis, "user", "1").await,
        Some(json!({"n": "looma"})),
        "owner wins"
    );
    let redelivered = looma.metrics_text().contains(r#"effect="duplicate""#);
    assert!(
        !redelivered,
        "the first subscriber's stop committed what it applied"
    );
    subscription.stop().await;
    drop(looma);
    tombstones_and_purge(&config, &zervigo, &z_store, &looma_redis).await;
}

/// company 7: created and deleted in zervigo; a late update from `legacy` loses to the tombstone;
/// purging before the window removes nothing, after it the tombstone goes and a late update is
/// `too_old`, while an update written after the delete recreates the entity (last writer wins).
async fn tombstones_and_purge(
    config: &SyncConfig,
    zervigo: &FederatedDataSync,
    z_store: &MemoryTarget,
    redis: &RedisTarget,
) {
    let offset = Arc::new(AtomicU64::new(0));
    let clock = {
        let (wall, offset) = (system_clock(), Arc::clone(&offset));
        HybridClock::new(Arc::new(move || wall() + offset.load(Ordering::SeqCst)))
    };
    let behind = {
        let wall = system_clock();
        HybridClock::new(Arc::new(move || wall().saturating_sub(60_000)))
    };
    let looma = build(config, "looma", Some(clock)).await;
    let legacy = build(config, "legacy", Some(behind)).await;
    let _subscription = looma.subscribe(Arc::new(redis.clone())).expect("subscribe");
    let company = ("company", "7");
    write(
        zervigo,
        z_store,
        company,
        Operation::Create,
        json!({"name": "Acme"}),
    )
    .await;
    write(zervigo, z_store, company, Operation::Delete, Value::Null).await;
    let deleted = eventually(WAIT, || async {
        redis
            .get("company", "7")
            .await
            .ok()
            .flatten()
            .is_some_and(|s| s.is_deleted())
    })
    .await;
    assert!(deleted, "the delete reaches Redis as a tombstone");
    late_update(&legacy, "late").await;
    let lww =
        r#"federation_sync_conflicts_total{entity_type="company",policy="last_writer_wins"} 1"#;
    assert!(metric(&looma, lww).await, "{}", looma.metrics_text());
    assert_eq!(
        record(redis, "company", "7").await,
        None,
        "the late update does not resurrect"
    );

    assert_eq!(
        looma.purge_tombstones(redis).await.expect("purge"),
        0,
        "inside the window"
    );
    assert!(
        redis.get("company", "7").await.expect("read").is_some(),
        "tombstone kept"
    );
    offset.store(25_000, Ordering::SeqCst); // the 20 s window has passed on looma's clock
    assert_eq!(looma.purge_tombstones(redis).await.expect("purge"), 1);
    assert_eq!(
        redis.get("company", "7").await.expect("read"),
        None,
        "tombstone purged"
    );

    late_update(&legacy, "later").await;
    let too_old =
        r#"federation_sync_events_total{origin="legacy",entity_type="company",effect="too_old"} 1"#;
    assert!(metric(&looma, too_old).await, "{}", looma.metrics_text());
    assert_eq!(
        redis.get("company", "7").await.expect("read"),
        None,
        "still gone"
    );
    offset.store(0, Ordering::SeqCst);
    write(
        zervigo,
        z_store,
        company,
        Operation::Update,
        json!({"name": "Acme 2"}),
    )
    .await;
    let recreated = eventually(WAIT, || async {
        record(redis, "company", "7").await == Some(json!({"name": "Acme 2"}))
    })
    .await;
    assert!(recreated, "a change written after the delete recreates it");
}

/// `legacy` (a minute behind) updates company 7 without having seen anything of it.
async fn late_update(legacy: &FederatedDataSync, name: &str) {
    let company = ("company", "7");
    let data = json!({ "name": name });
    write(
        legacy,
        &MemoryTarget::new(),
        company,
        Operation::Update,
        data,
    )
    .await;
}
