//! The two pipes G9 compares on one broker: a plain rdkafka producer → consumer pair, and
//! `FederatedDataSync` publish → subscriber → `MemoryTarget`.
//!
//! An overhead ratio means nothing if the baseline is set up to lose: the plain pair uses the
//! SDK's own producer settings (`federation_sync::kafka::producer_config`: idempotent,
//! `acks=all`, `linger.ms=1`) and consumer settings (`consumer_config`: a consumer group, no
//! auto-commit, offsets committed asynchronously in the SDK's batches after the messages were
//! handled), the same
//! topic partitioning (6) and keys (`user/<id>` over 1,000 ids) and the same record. Its handler
//! parses the JSON and stores it in a map, as a hand-written consumer would. Both measure from
//! the send's intended time to the moment the record is stored on the consuming side, with one
//! clock ([`Arrivals`]); the SDK adds stamping, the envelope, the per-entity read/decide/write,
//! the ack to the origin and the status tracking, which is the overhead being measured.

use std::collections::HashMap;
use std::future::Future;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use federation_core::config::{EntityType, SyncCluster, SyncConfig};
use federation_sync::commits::OffsetBatch;
use federation_sync::kafka::{consumer_config, producer_config};
use federation_sync::kafka_stats::StatsContext;
use federation_sync::model::{Effect, EntityState, Operation, Record};
use federation_sync::{
    AppliedChange, Change, FederatedDataSync, MemoryTarget, Subscription, SyncTarget, TargetError,
};
use futures_util::future::BoxFuture;
use rdkafka::consumer::{CommitMode, Consumer, StreamConsumer};
use rdkafka::message::Message;
use rdkafka::producer::{FutureProducer, FutureRecord};
use rdkafka::util::Timeout;
use serde_json::{Map, Value, json};
use tokio::task::JoinHandle;

use crate::exit::CliError;

/// Distinct entities the events cycle through.
pub const ENTITIES: u64 = 1_000;
/// Partitions of both pipes' topics (the sync's default).
pub const PARTITIONS: u32 = 6;
/// How long a send may wait for the broker.
const SEND_TIMEOUT: Duration = Duration::from_secs(30);

/// What the consuming side saw, against one clock shared by both pipes.
#[derive(Debug)]
pub struct Arrivals {
    epoch: Instant,
    count: AtomicU64,
    last_ns: AtomicU64,
    latencies: Mutex<Vec<u64>>,
}

impl Arrivals {
    /// A recorder whose clock starts now.
    pub fn new() -> Arc<Self> {
        Arc::new(Self {
            epoch: Instant::now(),
            count: AtomicU64::new(0),
            last_ns: AtomicU64::new(0),
            latencies: Mutex::new(Vec::new()),
        })
    }

    /// Nanoseconds from the epoch to `at`.
    pub fn ns_at(&self, at: Instant) -> u64 {
        u64::try_from(at.saturating_duration_since(self.epoch).as_nanos()).unwrap_or(u64::MAX)
    }

    /// Nanoseconds since the epoch.
    pub fn now_ns(&self) -> u64 {
        self.ns_at(Instant::now())
    }

    /// One record stored on the consuming side, sent at `sent_ns`.
    pub fn record(&self, sent_ns: u64) {
        let now = self.now_ns();
        self.lock().push(now.saturating_sub(sent_ns));
        self.last_ns.fetch_max(now, Ordering::Relaxed);
        self.count.fetch_add(1, Ordering::Release);
    }

    /// Records stored so far (all runs).
    pub fn count(&self) -> u64 {
        self.count.load(Ordering::Acquire)
    }

    /// When the latest record was stored (ns since the epoch).
    pub fn last_ns(&self) -> u64 {
        self.last_ns.load(Ordering::Relaxed)
    }

    /// The latencies recorded since the last call.
    pub fn take(&self) -> Vec<u64> {
        std::mem::take(&mut *self.lock())
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Vec<u64>> {
        self.latencies.lock().unwrap_or_else(|p| p.into_inner())
    }
}

/// One side of the comparison.
pub trait Pipe: Send + Sync {
    /// Send event `seq` (entity `seq % ENTITIES`), stamped as sent at `sent_ns`; whether the
    /// broker took it.
    fn send(&self, seq: u64, sent_ns: u64) -> impl Future<Output = bool> + Send + '_;
    /// The consuming side's recorder.
    fn arrivals(&self) -> &Arrivals;
}

/// The record both pipes carry (≈ 200 bytes of JSON).
fn record(seq: u64, sent_ns: u64) -> Value {
    let id = seq % ENTITIES;
    json!({
        "name": format!("user {id}"),
        "email": format!("user{id}@example.com"),
        "plan": "pro",
        "bio": "x".repeat(100),
        "seq": seq,
        "sent_ns": sent_ns,
    })
}

fn sent_ns(record: &Map<String, Value>) -> Option<u64> {
    record.get("sent_ns").and_then(Value::as_u64)
}

/// The send time in an SDK record, read as the one field needed (no map).
fn record_sent_ns(record: &Record) -> Option<u64> {
    #[derive(serde::Deserialize)]
    struct Sent {
        sent_ns: u64,
    }
    record.parse_as::<Sent>().ok().map(|s| s.sent_ns)
}

/// Aborts a task when dropped.
struct AbortOnDrop(JoinHandle<()>);

impl Drop for AbortOnDrop {
    fn drop(&mut self) {
        self.0.abort();
    }
}

/// A plain rdkafka producer → consumer pair on the SDK's settings.
pub struct Plain {
    producer: FutureProducer<StatsContext>,
    topic: String,
    arrivals: Arc<Arrivals>,
    _consumer: AbortOnDrop,
}

impl Plain {
    /// Create its topic on `broker` and start its consumer.
    pub async fn start(
        broker: &federation_testkit::kafka::KafkaBroker,
        arrivals: Arc<Arrivals>,
    ) -> Result<Self, CliError> {
        let fail = |what: &str, e: &dyn std::fmt::Display| {
            CliError::failure(format!("bench: sync: plain pair: {what}: {e}"))
        };
        let topic = "bench.plain.changes".to_string();
        broker
            .create_topic(&topic, PARTITIONS)
            .await
            .map_err(|e| fail("creating the topic", &e))?;
        let servers = [broker.bootstrap_servers()];
        // The SDK's context (it only records librdkafka's statistics when they are asked for).
        let producer: FutureProducer<StatsContext> =
            producer_config(&servers, SEND_TIMEOUT, 1 << 20)
                .set("client.id", "plain.producer")
                .create_with_context(StatsContext)
                .map_err(|e| fail("producer", &e))?;
        let consumer: StreamConsumer<StatsContext> = consumer_config(&servers, "bench-plain")
            .set("client.id", "plain.consumer")
            .create_with_context(StatsContext)
            .map_err(|e| fail("consumer", &e))?;
        consumer
            .subscribe(&[&topic])
            .map_err(|e| fail("subscribe", &e))?;
        let task = tokio::spawn(consume(consumer, Arc::clone(&arrivals)));
        Ok(Self {
            producer,
            topic,
            arrivals,
            _consumer: AbortOnDrop(task),
        })
    }
}

/// The plain handler: parse, store by key, then note the offset; offsets are committed the way
/// the SDK commits them (`federation_sync::commits::OffsetBatch`: every 100 ms or 1,000
/// messages, asynchronously, only past handled messages).
async fn consume(consumer: StreamConsumer<StatsContext>, arrivals: Arc<Arrivals>) {
    let mut store: HashMap<Vec<u8>, Map<String, Value>> = HashMap::new();
    let mut batch = OffsetBatch::new();
    loop {
        let due = batch.due();
        let received = match due {
            Some(due) => tokio::time::timeout_at(due, consumer.recv()).await.ok(),
            None => Some(consumer.recv().await),
        };
        let Some(Ok(message)) = received else {
            if batch.ready() {
                let _ = batch.commit(&consumer, CommitMode::Async);
            }
            continue;
        };
        let parsed = message
            .payload()
            .and_then(|p| serde_json::from_slice::<Map<String, Value>>(p).ok());
        if let Some(record) = parsed {
            let sent = sent_ns(&record);
            store.insert(message.key().unwrap_or_default().to_vec(), record);
            if let Some(sent) = sent {
                arrivals.record(sent);
            }
        }
        batch.finished(message.topic(), message.partition(), message.offset());
        if batch.ready() {
            let _ = batch.commit(&consumer, CommitMode::Async);
        }
    }
}

impl Pipe for Plain {
    async fn send(&self, seq: u64, sent_ns: u64) -> bool {
        let key = format!("user/{}", seq % ENTITIES);
        let payload = record(seq, sent_ns).to_string();
        let record = FutureRecord::to(&self.topic).key(&key).payload(&payload);
        self.producer
            .send(record, Timeout::After(SEND_TIMEOUT))
            .await
            .is_ok()
    }

    fn arrivals(&self) -> &Arrivals {
        &self.arrivals
    }
}

/// `FederatedDataSync`: zervigo publishes, looma's subscriber applies into a `MemoryTarget`.
pub struct Ours {
    zervigo: FederatedDataSync,
    arrivals: Arc<Arrivals>,
    _looma: FederatedDataSync,
    _subscription: Subscription,
}

impl Ours {
    /// Both runtimes on `bootstrap` (the shared-broker setup) and looma's subscription.
    pub async fn start(bootstrap: &str, arrivals: Arc<Arrivals>) -> Result<Self, CliError> {
        let clusters = ["zervigo", "looma"]
            .iter()
            .map(|name| SyncCluster {
                name: (*name).into(),
                bootstrap_servers: vec![bootstrap.to_string()],
            })
            .collect();
        let mut config = SyncConfig::new(clusters, vec![EntityType::new("user")]);
        config.topic_prefix = "bench".into();
        config.partitions = PARTITIONS;
        config.publish_timeout = SEND_TIMEOUT;
        let build = |local: &'static str| {
            FederatedDataSync::builder_for(Some(config.clone()))
                .local_cluster(local)
                .build()
        };
        let fail =
            |e: federation_sync::SyncError| CliError::failure(format!("bench: sync: runtime: {e}"));
        let zervigo = build("zervigo").await.map_err(fail)?;
        let looma = build("looma").await.map_err(fail)?;
        let target = Timed {
            store: MemoryTarget::new(),
            arrivals: Arc::clone(&arrivals),
        };
        let subscription = looma.subscribe(Arc::new(target)).map_err(fail)?;
        Ok(Self {
            zervigo,
            arrivals,
            _looma: looma,
            _subscription: subscription,
        })
    }
}

impl Pipe for Ours {
    async fn send(&self, seq: u64, sent_ns: u64) -> bool {
        let id = (seq % ENTITIES).to_string();
        let change = Change::new("user", id, Operation::Update).data(record(seq, sent_ns));
        self.zervigo.publish(change).await.is_ok()
    }

    fn arrivals(&self) -> &Arrivals {
        &self.arrivals
    }
}

/// A `MemoryTarget` that records each applied event's latency after the write.
struct Timed {
    store: MemoryTarget,
    arrivals: Arc<Arrivals>,
}

impl SyncTarget for Timed {
    fn read<'a>(
        &'a self,
        entity_type: &'a str,
        entity_id: &'a str,
    ) -> BoxFuture<'a, Result<Option<EntityState>, TargetError>> {
        self.store.read(entity_type, entity_id)
    }

    fn write<'a>(&'a self, change: &'a AppliedChange) -> BoxFuture<'a, Result<(), TargetError>> {
        Box::pin(async move {
            self.store.write(change).await?;
            let applied = change.effect == Effect::Applied;
            if let Some(sent) = record_sent_ns(&change.event.data).filter(|_| applied) {
                self.arrivals.record(sent);
            }
            Ok(())
        })
    }
}
