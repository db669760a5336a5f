//! [`FederatedDataSync`]: the runtime a service holds: publish, subscribe, status, metrics.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;

use federation_core::config::{Config, ConflictPolicy, SyncConfig};
use rdkafka::consumer::{Consumer, StreamConsumer};
use rdkafka::message::Message;
use rdkafka::producer::FutureProducer;
use tokio::task::JoinHandle;

use crate::error::SyncError;
use crate::health::{HealthBoard, SyncHealth};
use crate::kafka::{consumer_config, ensure_topics, producer_config};
use crate::kafka_stats::StatsContext;
use crate::metrics::SyncMetrics;
use crate::model::{ConflictCallback, HybridClock, Policy};
use crate::publisher::{Change, Published, publish};
use crate::status::{StatusTracker, SyncStatus};
use crate::subscriber::{self, Subscription};
use crate::target::SyncTarget;

/// Batching delay of the producers to other clusters (acks), ms.
const REPORT_LINGER_MS: &str = "20";

/// State shared by the publisher, the subscribers and the status reader.
pub(crate) struct Shared {
    pub(crate) config: SyncConfig,
    pub(crate) local: String,
    pub(crate) clock: HybridClock,
    pub(crate) metrics: SyncMetrics,
    pub(crate) status: StatusTracker,
    pub(crate) health: HealthBoard,
    policies: HashMap<String, Policy>,
    producers: HashMap<String, FutureProducer<StatsContext>>,
    /// Every sync cluster but the local one (the targets of each published change).
    remotes: Vec<String>,
    /// The local cluster's change topic.
    changes_topic: String,
}

impl Shared {
    pub(crate) fn policy(&self, entity_type: &str) -> Option<&Policy> {
        self.policies.get(entity_type)
    }

    pub(crate) fn entity_names(&self) -> String {
        let names: Vec<&str> = self
            .config
            .entities
            .iter()
            .map(|e| e.name.as_str())
            .collect();
        names.join(", ")
    }

    /// Every sync cluster but the local one.
    pub(crate) fn remote_clusters(&self) -> Vec<String> {
        self.remotes.clone()
    }

    /// Every sync cluster but the local one, borrowed (per publish and per ack).
    pub(crate) fn remotes(&self) -> &[String] {
        &self.remotes
    }

    /// The topic this cluster publishes its changes to.
    pub(crate) fn changes_topic(&self) -> &str {
        &self.changes_topic
    }

    pub(crate) fn producer(&self, cluster: &str) -> Option<&FutureProducer<StatsContext>> {
        self.producers.get(cluster)
    }
}

/// Builds a [`FederatedDataSync`].
#[must_use]
pub struct SyncBuilder {
    config: Option<SyncConfig>,
    local: Option<String>,
    callbacks: HashMap<String, ConflictCallback>,
    clock: Option<HybridClock>,
}

impl SyncBuilder {
    /// The cluster this process publishes as (overrides `sync.local_cluster`).
    pub fn local_cluster(mut self, cluster: impl Into<String>) -> Self {
        self.local = Some(cluster.into());
        self
    }

    /// The conflict callback of an entity type with `policy: callback`.
    pub fn callback(mut self, entity_type: impl Into<String>, callback: ConflictCallback) -> Self {
        self.callbacks.insert(entity_type.into(), callback);
        self
    }

    /// A clock (tests inject wall time). Default: the system clock.
    pub fn clock(mut self, clock: HybridClock) -> Self {
        self.clock = Some(clock);
        self
    }

    /// Check the settings, create this cluster's topics, connect the producers and start
    /// reading acknowledgements.
    pub async fn build(self) -> Result<FederatedDataSync, SyncError> {
        let config = self
            .config
            .ok_or_else(|| SyncError::config("the configuration has no `sync` section"))?;
        let local = self
            .local
            .or_else(|| config.local_cluster.clone())
            .ok_or_else(|| {
                SyncError::config(
                    "no local cluster: set sync.local_cluster or call SyncBuilder::local_cluster",
                )
            })?;
        if config.cluster(&local).is_none() {
            return Err(SyncError::config(format!(
                "local cluster {local:?} is not under sync.clusters"
            )));
        }
        let policies = policies(&config, self.callbacks)?;
        let mut producers = HashMap::new();
        for cluster in &config.clusters {
            let mut settings = producer_config(
                &cluster.bootstrap_servers,
                config.publish_timeout,
                config.max_message_bytes,
            );
            if cluster.name != local {
                // Only acks (and republished dead letters) go to other clusters: nobody waits
                // for them, so fewer, larger batches spare the brokers a request per millisecond.
                settings.set("linger.ms", REPORT_LINGER_MS);
            }
            settings.set("client.id", format!("{local}.producer.{}", cluster.name));
            let producer = settings.create_with_context(StatsContext).map_err(|e| {
                SyncError::kafka(&format!("creating the producer for {}", cluster.name), &e)
            })?;
            producers.insert(cluster.name.clone(), producer);
        }
        ensure_topics(&config, &local).await?;
        for remote in config.clusters.iter().filter(|c| c.name != local) {
            if let Err(error) = ensure_topics(&config, &remote.name).await {
                tracing::warn!(cluster = %remote.name, %error, "could not create the cluster's sync topics; its runtime will");
            }
        }
        let remotes = config
            .clusters
            .iter()
            .filter(|c| c.name != local)
            .map(|c| c.name.clone())
            .collect();
        let changes_topic = config.changes_topic(&local);
        let shared = Arc::new(Shared {
            remotes,
            changes_topic,
            config,
            local,
            clock: self.clock.unwrap_or_default(),
            metrics: SyncMetrics::new(),
            status: StatusTracker::default(),
            health: HealthBoard::default(),
            policies,
            producers,
        });
        let acks = start_ack_reader(&shared)?;
        Ok(FederatedDataSync {
            shared,
            _acks: Arc::new(AbortOnDrop(acks)),
        })
    }
}

/// The runnable policy of every entity type.
fn policies(
    config: &SyncConfig,
    mut callbacks: HashMap<String, ConflictCallback>,
) -> Result<HashMap<String, Policy>, SyncError> {
    let mut out = HashMap::new();
    for entity in &config.entities {
        let policy = match &entity.policy {
            ConflictPolicy::LastWriterWins => Policy::LastWriterWins,
            ConflictPolicy::PreferCluster { owner } => Policy::PreferCluster(owner.clone()),
            ConflictPolicy::MergeFields => Policy::MergeFields,
            ConflictPolicy::Callback => Policy::Callback(callbacks.remove(&entity.name).ok_or_else(|| {
                SyncError::config(format!(
                    "sync.entities.{}.policy is `callback` but no callback was registered (SyncBuilder::callback)",
                    entity.name
                ))
            })?),
        };
        out.insert(entity.name.clone(), policy);
    }
    if let Some(name) = callbacks.keys().next() {
        return Err(SyncError::config(format!(
            "a callback was registered for {name:?}, which is not a `policy: callback` entity type"
        )));
    }
    Ok(out)
}

/// Read this cluster's acks topic from the beginning into the status tracker.
fn start_ack_reader(shared: &Arc<Shared>) -> Result<JoinHandle<()>, SyncError> {
    let servers = shared
        .config
        .cluster(&shared.local)
        .map(|c| c.bootstrap_servers.clone())
        .unwrap_or_default();
    let group = format!(
        "{}.status.{}",
        shared.config.group_id(&shared.local),
        crate::model::new_event_id()
    );
    let consumer: StreamConsumer<StatsContext> = consumer_config(&servers, &group)
        .set("client.id", format!("{}.ack-reader", shared.local))
        .create_with_context(StatsContext)
        .map_err(|e| SyncError::kafka("creating the acks reader", &e))?;
    let topic = shared.config.acks_topic(&shared.local);
    consumer
        .subscribe(&[&topic])
        .map_err(|e| SyncError::kafka(&format!("subscribing to {topic}"), &e))?;
    let shared = Arc::clone(shared);
    Ok(tokio::spawn(async move {
        let targets = shared.remotes().to_vec();
        let owner = crate::kafka::Closing::new(consumer);
        let Some(consumer) = owner.get() else {
            return;
        };
        loop {
            match consumer.recv().await {
                Ok(message) => match crate::acks::decode(message.payload().unwrap_or_default()) {
                    Ok(acks) => shared.status.acks(&acks, &targets),
                    Err(error) => {
                        tracing::warn!(topic = %message.topic(), %error, "unreadable sync ack record ignored")
                    }
                },
                Err(error) => tracing::debug!(%error, "acks reader error"),
            }
        }
    }))
}

/// Cross-cluster data sync for one service process. Cheap to clone.
///
/// ```no_run
/// # async fn demo(config: federation_core::config::Config) -> Result<(), federation_sync::SyncError> {
/// use std::sync::Arc;
/// use federation_sync::{Change, FederatedDataSync, MemoryTarget, model::Operation};
///
/// let sync = FederatedDataSync::builder(&config).local_cluster("zervigo").build().await?;
/// let users = MemoryTarget::new();
/// let _subscription = sync.subscribe(Arc::new(users.clone()))?;
/// let change = Change::new("user", "42", Operation::Update)
///     .data(serde_json::json!({"name": "Ada"}))
///     .base(users.get("user", "42"));
/// let published = sync.publish(change).await?;
/// sync.apply_local(&users, &published.event).await?; // store the new version with the record
/// # Ok(()) }
/// ```
#[derive(Clone)]
pub struct FederatedDataSync {
    shared: Arc<Shared>,
    _acks: Arc<AbortOnDrop>,
}

impl std::fmt::Debug for FederatedDataSync {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("FederatedDataSync")
            .field("local", &self.shared.local)
            .finish()
    }
}

impl FederatedDataSync {
    /// A builder over `config.sync`.
    pub fn builder(config: &Config) -> SyncBuilder {
        Self::builder_for(config.sync.clone())
    }

    /// A builder over a sync section directly.
    pub fn builder_for(sync: Option<SyncConfig>) -> SyncBuilder {
        SyncBuilder {
            config: sync,
            local: None,
            callbacks: HashMap::new(),
            clock: None,
        }
    }

    /// Publish a change; returns after the broker acknowledged it durably, or fails after
    /// `sync.publish_timeout`.
    pub async fn publish(&self, change: Change) -> Result<Published, SyncError> {
        self.publish_within(change, self.shared.config.publish_timeout)
            .await
    }

    /// [`publish`](Self::publish) with the caller's deadline.
    pub async fn publish_within(
        &self,
        change: Change,
        deadline: Duration,
    ) -> Result<Published, SyncError> {
        let producer = self
            .shared
            .producer(&self.shared.local)
            .ok_or_else(|| SyncError::config("no producer for the local cluster"))?;
        publish(&self.shared, producer, change, deadline).await
    }

    /// Record a change published here in the local store `target`, the same way the subscriber
    /// applies remote ones (read, decide, compare-and-set write), so a remote change applied
    /// between the publish and this call is not overwritten.
    pub async fn apply_local(
        &self,
        target: &dyn SyncTarget,
        event: &crate::model::ChangeEvent,
    ) -> Result<crate::model::Decision, SyncError> {
        let (_, decided) =
            crate::process::apply_once(&self.shared, target, event.clone(), false).await;
        decided.map_err(|e| SyncError::new(crate::error::SyncErrorKind::Target, e))
    }

    /// Run every event on this cluster's dead-letter topic through the normal path again (once
    /// the cause is fixed), from where the last replay stopped to the end as of now.
    pub async fn replay_dead_letters(
        &self,
        target: Arc<dyn SyncTarget>,
    ) -> Result<crate::replay::ReplayReport, SyncError> {
        crate::replay::replay(&self.shared, crate::replay::Mode::Process(target)).await
    }

    /// Publish every event on this cluster's dead-letter topic again on the change topic it came
    /// from (what `federation sync replay` does: the CLI has no access to the service's store).
    /// The service's subscriber receives them again; clusters that applied them ignore them.
    /// `not_json` and `oversized` dead letters are skipped: they can never apply.
    pub async fn republish_dead_letters(&self) -> Result<crate::replay::ReplayReport, SyncError> {
        crate::replay::replay(&self.shared, crate::replay::Mode::Republish).await
    }

    /// Start consuming every other cluster's changes into `target`.
    pub fn subscribe(&self, target: Arc<dyn SyncTarget>) -> Result<Subscription, SyncError> {
        subscriber::start(&self.shared, target)
    }

    /// The status of the latest change of an entity published from this cluster (or learnt from
    /// the acks topic).
    pub fn status(&self, entity_type: &str, entity_id: &str) -> Option<SyncStatus> {
        self.shared.status.get(entity_type, entity_id)
    }

    /// The cluster this process publishes as.
    pub fn local_cluster(&self) -> &str {
        &self.shared.local
    }

    /// The sync configuration in use.
    pub fn config(&self) -> &SyncConfig {
        &self.shared.config
    }

    /// The clock stamping this process's changes.
    pub fn clock(&self) -> &HybridClock {
        &self.shared.clock
    }

    /// Prometheus text of the sync metrics (`federation_sync_*`).
    pub fn metrics_text(&self) -> String {
        self.shared.metrics.encode()
    }

    /// The time before which tombstones may be purged: now on this runtime's clock minus
    /// `sync.tombstone_window` (the window the subscriber uses to refuse `too_old` changes).
    pub fn tombstone_cutoff(&self) -> crate::purge::TombstoneCutoff {
        let now = self.shared.clock.physical_ms();
        crate::purge::TombstoneCutoff::new(now, self.shared.config.tombstone_window)
    }

    /// Forget the deleted entities of `target` whose delete is older than
    /// `sync.tombstone_window`; returns how many went. Younger tombstones are kept whatever the
    /// caller does: the cutoff comes from the configured window.
    pub async fn purge_tombstones(
        &self,
        target: &dyn crate::purge::PurgeTombstones,
    ) -> Result<u64, SyncError> {
        target
            .purge_tombstones(self.tombstone_cutoff())
            .await
            .map_err(|e| {
                SyncError::new(
                    crate::error::SyncErrorKind::Target,
                    format!("purging tombstones: {e}"),
                )
            })
    }

    /// The health entry.
    pub fn health(&self) -> SyncHealth {
        SyncHealth {
            local_cluster: self.shared.local.clone(),
            origins: self.shared.health.snapshot(),
            pending: self.shared.status.pending_count(),
        }
    }
}

/// Aborts the acks reader when the last handle goes.
struct AbortOnDrop(JoinHandle<()>);

impl Drop for AbortOnDrop {
    fn drop(&mut self) {
        self.0.abort();
    }
}
