//! Sync meets the cache: a user changed in the other cluster stops being served from cache once
//! the change is applied here. Real Kafka broker, real loopback upstream, real Redis tier (when
//! `redis-server` is installed; the in-process tier alone otherwise).

mod support;

use std::sync::Arc;
use std::time::Duration;

use federation_core::client::FederatedServiceClient;
use federation_core::config::{Config, ConfigFormat, ConflictPolicy};
use federation_sync::model::{
    ChangeEvent, ENVELOPE_VERSION, Effect, EntityState, Hlc, Operation, Stamp,
};
use federation_sync::{AppliedChange, CoherentTarget, MemoryTarget, SyncTarget};
use federation_testkit::instance::{Behavior, Identity, ServiceInstance};
use federation_testkit::redis::{self, RedisServer};
use serde_json::json;
use support::{config, eventually, runtime, write};

const WAIT: Duration = Duration::from_secs(90);

/// A client of service `user` (the instance at `port`), cached 60 s, `user` entities mapped to
/// `/api/v1/users/{id}`, with a Redis tier at `redis_port` if given.
fn cached_client(port: u16, redis_port: Option<u16>) -> FederatedServiceClient {
    let l2 = redis_port
        .map(|p| format!(", l2: {{ address: 127.0.0.1:{p}, timeout: 250ms }}"))
        .unwrap_or_default();
    let yaml = format!(
        "clusters:\n  looma:\n    static:\n      user-service:\n        - {{ address: 127.0.0.1, port: {port} }}\n\
         services:\n  user:\n    names: {{ looma: user-service }}\n    timeout: {{ attempt: 2s, total: 5s }}\n\
         \x20   cache: {{ ttl: 60s, entities: {{ user: [\"/api/v1/users/{{id}}\"] }}{l2} }}\n"
    );
    let config = Config::parse(&yaml, ConfigFormat::Yaml).expect("client configuration parses");
    FederatedServiceClient::from_config(config).expect("client builds")
}

/// One `GET` of `user` `path`: (cache status, body length).
async fn get(client: &FederatedServiceClient, path: &str) -> (String, usize) {
    let response = client
        .get("user", path)
        .send()
        .await
        .expect("call succeeds");
    assert!(
        response.status().is_success(),
        "{path}: {}",
        response.status()
    );
    (
        response.served().cache().as_str().to_owned(),
        response.body().len(),
    )
}

/// Waits until the client's `user` tier is connected and subscribed, or panics after 10 s.
async fn wait_tier(client: &FederatedServiceClient) {
    let ready = eventually(Duration::from_secs(10), || async {
        let health = client.health();
        let l2 = health.service("user").and_then(|s| s.cache_l2.clone());
        l2.is_some_and(|h| h.connected && h.subscribed)
    })
    .await;
    assert!(
        ready,
        "Redis tier not ready: {:?}",
        client.health().service("user")
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_user_synced_from_the_other_cluster_is_no_longer_served_from_cache() {
    let Some(broker) = support::broker().await else {
        return;
    };
    let redis = if redis::available() {
        Some(RedisServer::start().await.expect("redis-server starts"))
    } else {
        eprintln!("redis-server not installed: checking the in-process tier alone");
        None
    };
    let upstream = ServiceInstance::start(Identity::new("looma", "user-service", "u1"))
        .await
        .expect("instance starts");
    let redis_port = redis.as_ref().map(|r| r.port().expect("tcp port"));
    let client = cached_client(upstream.port(), redis_port);
    if redis.is_some() {
        wait_tier(&client).await;
    }
    // A second client with its own in-process tier, sharing only Redis (as another process would).
    let other = redis_port.map(|p| cached_client(upstream.port(), Some(p)));
    if let Some(other) = &other {
        wait_tier(other).await;
    }

    let (user42, user43) = ("/api/v1/users/42", "/api/v1/users/43");
    let (_, old) = get(&client, user42).await;
    get(&client, user43).await;
    assert_eq!(get(&client, user42).await.0, "hit", "user 42 is cached");
    if let Some(other) = &other {
        assert_eq!(get(other, user42).await.0, "hit", "shared through Redis");
    }
    let before = upstream.requests();

    // The upstream now answers the new record; the cache still has the old one.
    let new = old + 500;
    upstream.set_behavior(Behavior {
        body_size: Some(new),
        ..Behavior::default()
    });
    assert_eq!(get(&client, user42).await, ("hit".to_owned(), old));

    let bootstrap = broker.bootstrap_servers();
    let sync_config = config(&bootstrap, ConflictPolicy::LastWriterWins);
    let zervigo = runtime(&sync_config, "zervigo").await;
    let looma = runtime(&sync_config, "looma").await;
    let looma_store = MemoryTarget::new();
    let coherent = Arc::new(CoherentTarget::new(looma_store.clone(), client.clone()));
    let _subscription = looma.subscribe(coherent.clone()).expect("subscribe");
    let published = write(
        &zervigo,
        &MemoryTarget::new(),
        "user",
        "42",
        Operation::Update,
        json!({ "name": "Ada" }),
    )
    .await;
    assert!(
        support::applied(&looma_store, &published).await,
        "looma did not apply the update: {:?}",
        looma_store.writes()
    );
    let invalidated = eventually(WAIT, || async { coherent.invalidated() == 1 }).await;
    assert!(invalidated, "invalidated {} paths", coherent.invalidated());

    // Once applied, the next call is a miss answered fresh from upstream.
    assert_eq!(get(&client, user42).await, ("miss".to_owned(), new));
    assert_eq!(upstream.requests(), before + 1, "one fetch upstream");
    assert_eq!(get(&client, user42).await, ("hit".to_owned(), new));
    assert_eq!(
        get(&client, user43).await,
        ("hit".to_owned(), old),
        "user 43 untouched"
    );
    if let Some(other) = &other {
        let fresh = eventually(Duration::from_secs(5), || async {
            get(other, user42).await.1 == new
        })
        .await;
        assert!(fresh, "the other process still serves the old user 42");
    }
}

/// A change of user 42 from looma's subscriber, with `effect`.
fn change_of_user_42(effect: Effect) -> AppliedChange {
    let event = ChangeEvent {
        v: ENVELOPE_VERSION,
        entity_type: "user".into(),
        entity_id: "42".into(),
        operation: Operation::Update,
        data: json!({ "name": "Ada" })
            .as_object()
            .cloned()
            .unwrap_or_default()
            .into(),
        base: None,
        seen: Default::default(),
        stamp: Stamp::new(
            "zervigo",
            Hlc {
                wall_ms: 1,
                logical: 0,
            },
        ),
        published_at_ms: 1,
    };
    AppliedChange {
        state: EntityState::from_event(&event),
        event,
        effect,
        previous: None,
    }
}

/// Only a successful write that changed the record drops the cached answers: a `superseded`
/// change (the stored version won) and a failed write keep them.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn only_a_written_change_of_the_record_invalidates() {
    let upstream = ServiceInstance::start(Identity::new("looma", "user-service", "u1"))
        .await
        .expect("instance starts");
    let client = cached_client(upstream.port(), None);
    let store = MemoryTarget::new();
    let coherent = CoherentTarget::new(store.clone(), client.clone());
    let user42 = "/api/v1/users/42";
    get(&client, user42).await;
    assert_eq!(get(&client, user42).await.0, "hit");

    let superseded = change_of_user_42(Effect::Superseded);
    coherent
        .write(&superseded)
        .await
        .expect("superseded written");
    assert_eq!(
        get(&client, user42).await.0,
        "hit",
        "superseded: record unchanged"
    );

    store.fail_next_writes(1);
    let applied = change_of_user_42(Effect::Applied);
    coherent
        .write(&applied)
        .await
        .expect_err("the injected failure is returned");
    assert_eq!(
        get(&client, user42).await.0,
        "hit",
        "failed write: nothing changed"
    );
    assert_eq!(coherent.invalidated(), 0);

    let applied = AppliedChange {
        previous: store.get("user", "42"),
        ..applied
    };
    coherent.write(&applied).await.expect("applied written");
    assert_eq!(coherent.invalidated(), 1);
    assert_eq!(get(&client, user42).await.0, "miss", "applied: dropped");
}
