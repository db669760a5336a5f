//! Shared setup of the real-broker tests: one Kafka broker per test binary (stopped by its guard),
//! a two-cluster configuration sharing that broker (the plan's simple setup), and polling helpers.
#![allow(dead_code, reason = "each test binary uses a different subset")]

use std::future::Future;
use std::sync::Arc;
use std::sync::atomic::{AtomicU32, Ordering};
use std::time::Duration;

use federation_core::config::{
    ClusterConfig, Config, ConflictPolicy, DiscoverySource, EntityType, StaticInstance,
    SyncCluster, SyncConfig,
};
use federation_sync::model::EntityState;
use federation_sync::model::Operation;
use federation_sync::{
    AppliedChange, Change, FederatedDataSync, MemoryTarget, Published, SyncTarget, TargetError,
};
use federation_testkit::kafka::{KafkaBroker, skip_without_java};
use futures_util::future::BoxFuture;
use serde_json::Value;

/// Start a broker, or `None` (after printing why) when this machine has no Java.
pub async fn broker() -> Option<KafkaBroker> {
    if let Some(skip) = skip_without_java() {
        eprintln!("{skip}");
        return None;
    }
    match KafkaBroker::start().await {
        Ok(broker) => Some(broker),
        Err(e) => panic!("the Kafka broker did not start: {e}"),
    }
}

static PREFIX: AtomicU32 = AtomicU32::new(0);

/// A configuration with clusters `zervigo` and `looma` whose sync sections both point at
/// `bootstrap`; topics under a prefix unique to this call; types `user` (policy `policy`),
/// `resume` (merge_fields) and `company` (last_writer_wins, requires `name`).
pub fn config(bootstrap: &str, policy: ConflictPolicy) -> Config {
    let clusters = ["zervigo", "looma"];
    let mut user = EntityType::new("user");
    user.policy = policy;
    let mut resume = EntityType::new("resume");
    resume.policy = ConflictPolicy::MergeFields;
    let mut company = EntityType::new("company");
    company.required_fields = vec!["name".into()];
    let mut sync = SyncConfig::new(
        clusters
            .iter()
            .map(|name| SyncCluster {
                name: (*name).into(),
                bootstrap_servers: vec![bootstrap.to_string()],
            })
            .collect(),
        vec![user, resume, company],
    );
    sync.topic_prefix = format!(
        "t{}-{}",
        std::process::id(),
        PREFIX.fetch_add(1, Ordering::Relaxed)
    );
    sync.partitions = 3;
    sync.handler.initial_backoff = Duration::from_millis(20);
    sync.handler.max_backoff = Duration::from_millis(100);
    sync.handler.max_attempts = 3;
    sync.publish_timeout = Duration::from_secs(20);
    let config = Config {
        clusters: clusters
            .iter()
            .map(|name| {
                let instance = StaticInstance {
                    id: None,
                    address: "127.0.0.1".into(),
                    port: 8080,
                    tags: Vec::new(),
                    meta: Default::default(),
                    weight: 1,
                };
                let services = [("user-service".to_string(), vec![instance])].into();
                ClusterConfig::new(*name, DiscoverySource::Static(services))
            })
            .collect(),
        sync: Some(sync),
        ..Config::default()
    };
    if let Err(e) = config.validate() {
        panic!("test configuration invalid: {e}");
    }
    config
}

/// A runtime publishing as `local`.
pub async fn runtime(config: &Config, local: &str) -> FederatedDataSync {
    match FederatedDataSync::builder(config)
        .local_cluster(local)
        .build()
        .await
    {
        Ok(sync) => sync,
        Err(e) => panic!("sync runtime for {local} did not start: {e}"),
    }
}

/// Publish a change of `user`/`id` in `sync`'s cluster based on what `store` holds, then store
/// the result locally (what a service does).
pub async fn write(
    sync: &FederatedDataSync,
    store: &MemoryTarget,
    entity_type: &str,
    id: &str,
    operation: Operation,
    data: Value,
) -> Published {
    let change = Change::new(entity_type, id, operation)
        .data(data)
        .base(store.get(entity_type, id));
    match sync.publish(change).await {
        Ok(published) => {
            if let Err(e) = sync.apply_local(store, &published.event).await {
                panic!("recording {entity_type}/{id} locally failed: {e}");
            }
            published
        }
        Err(e) => panic!("publish {entity_type}/{id} failed: {e}"),
    }
}

/// Poll `cond` every 25 ms until it holds or `limit` passes; returns whether it held.
pub async fn eventually<F, Fut>(limit: Duration, mut cond: F) -> bool
where
    F: FnMut() -> Fut,
    Fut: Future<Output = bool>,
{
    let deadline = tokio::time::Instant::now() + limit;
    loop {
        if cond().await {
            return true;
        }
        if tokio::time::Instant::now() >= deadline {
            return false;
        }
        tokio::time::sleep(Duration::from_millis(25)).await;
    }
}

/// The stored record of an entity (`None`: absent or deleted).
pub fn record(
    store: &MemoryTarget,
    entity_type: &str,
    id: &str,
) -> Option<serde_json::Map<String, Value>> {
    store
        .get(entity_type, id)
        .and_then(|s| s.data)
        .map(|d| d.to_map())
}

/// The target as the trait object `subscribe` takes.
pub fn target(store: &MemoryTarget) -> Arc<dyn federation_sync::SyncTarget> {
    Arc::new(store.clone())
}

/// Whether `store` applied `published` exactly once within the wait.
pub async fn applied(store: &MemoryTarget, published: &Published) -> bool {
    let id = &published.stamp.event_id;
    eventually(Duration::from_secs(90), || async {
        store.writes_of(id, federation_sync::model::Effect::Applied) == 1
    })
    .await
}

/// A consumer of `topic` from its beginning, in a group of its own.
pub fn reader(bootstrap: &str, topic: &str) -> rdkafka::consumer::StreamConsumer {
    use rdkafka::ClientConfig;
    use rdkafka::consumer::{Consumer, StreamConsumer};
    let group = format!("reader-{}", federation_sync::model::new_event_id());
    let consumer: StreamConsumer = ClientConfig::new()
        .set("bootstrap.servers", bootstrap)
        .set("group.id", group)
        .set("auto.offset.reset", "earliest")
        .create()
        .expect("topic reader");
    consumer.subscribe(&[topic]).expect("subscribe");
    consumer
}

/// The first `count` payloads of `topic`, from the beginning.
pub async fn read_topic(bootstrap: &str, topic: &str, count: usize) -> Vec<Vec<u8>> {
    use rdkafka::message::Message;
    let consumer = reader(bootstrap, topic);
    let mut out = Vec::new();
    while out.len() < count {
        match tokio::time::timeout(Duration::from_secs(60), consumer.recv()).await {
            Ok(Ok(message)) => out.push(message.payload().unwrap_or_default().to_vec()),
            Ok(Err(e)) => panic!("reading {topic}: {e}"),
            Err(_) => panic!("only {} of {count} records on {topic}", out.len()),
        }
    }
    out
}

/// Whether `sync`'s status of `t`/`id` reaches `overall` for `published` within the wait.
pub async fn status_is(
    sync: &FederatedDataSync,
    t: &str,
    id: &str,
    published: &Published,
    overall: federation_sync::Overall,
) -> bool {
    eventually(Duration::from_secs(90), || async {
        sync.status(t, id)
            .is_some_and(|s| *s.event_id == *published.stamp.event_id && s.overall() == overall)
    })
    .await
}

/// A running `redis-server`, or `None` (said why) when it is not installed.
pub async fn redis() -> Option<federation_testkit::redis::RedisServer> {
    if !federation_testkit::redis::available() {
        eprintln!("skipping: redis-server is not installed");
        return None;
    }
    Some(
        federation_testkit::redis::RedisServer::start()
            .await
            .expect("redis-server starts"),
    )
}

/// A target that hangs forever right after writing one chosen event (a process that died between
/// its write and its offset commit).
#[derive(Clone)]
pub struct DiesAfterWriting {
    pub store: MemoryTarget,
    /// The event id to hang after.
    pub victim: Arc<std::sync::Mutex<Option<String>>>,
}

impl DiesAfterWriting {
    /// Writing into `store`, no victim yet.
    pub fn new(store: &MemoryTarget) -> Self {
        Self {
            store: store.clone(),
            victim: Arc::new(std::sync::Mutex::new(None)),
        }
    }
}

impl SyncTarget for DiesAfterWriting {
    fn read<'a>(
        &'a self,
        t: &'a str,
        id: &'a str,
    ) -> BoxFuture<'a, Result<Option<EntityState>, TargetError>> {
        self.store.read(t, id)
    }

    fn write<'a>(&'a self, change: &'a AppliedChange) -> BoxFuture<'a, Result<(), TargetError>> {
        Box::pin(async move {
            self.store.write(change).await?;
            let victim = self.victim.lock().expect("lock").clone();
            if victim.as_deref() == Some(&*change.event.stamp.event_id) {
                std::future::pending::<()>().await;
            }
            Ok(())
        })
    }
}

/// Checks the write log of a one-writer stream: every write applied (no conflict), and each
/// entity's updates applied exactly once each, in publish order from its first. `published`
/// maps each event id to its entity id and update number (0, 1, …). Returns each entity's last
/// applied update number.
pub fn assert_applied_once_in_order(
    store: &MemoryTarget,
    published: &std::collections::HashMap<String, (String, usize)>,
) -> std::collections::HashMap<String, usize> {
    let mut last = std::collections::HashMap::new();
    for (event_id, effect) in store.writes() {
        assert_eq!(
            effect,
            federation_sync::model::Effect::Applied,
            "no conflicts in a one-writer stream"
        );
        let (id, n) = &published[&event_id];
        let before = last.insert(id.clone(), *n);
        assert_eq!(
            before.map_or(0, |b| b + 1),
            *n,
            "{id}: update {n} applied after {before:?}"
        );
    }
    last
}
