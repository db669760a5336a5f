//! The `sync` section: cross-cluster data sync over Kafka (run by the `federation-sync` crate).
//!
//! Both clusters must agree on topic names, entity types and conflict policies, or a change made
//! in one never reaches the other or is resolved differently on each side. So the sync settings
//! live in the same file as the rest of the federation, are checked with the same field paths, and
//! every default is documented here where it is set.
//!
//! ```yaml
//! sync:
//!   local_cluster: zervigo             # which cluster this process publishes as
//!   clusters:
//!     zervigo: { bootstrap_servers: "kafka-zervigo:9092" }
//!     looma:   { bootstrap_servers: ["kafka-looma:9092"] }
//!   entities:
//!     user:    { policy: prefer_cluster, owner: zervigo, required_fields: [email] }
//!     resume:  { policy: merge_fields }
//!     company: {}                      # last_writer_wins
//!   handler: { max_attempts: 5, initial_backoff: 100ms, max_backoff: 5s }
//! ```

use std::time::Duration;

use serde::Serialize;

/// Settings of the cross-cluster data sync. `None` in [`Config::sync`](super::Config::sync)
/// means the file has no `sync` section.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct SyncConfig {
    /// The cluster this process publishes as (the origin in every stamp). Default: none; the
    /// sync runtime can be told instead, and must know it one way or the other.
    pub local_cluster: Option<String>,
    /// Kafka brokers per cluster, in declaration order. A cluster publishes to its own brokers
    /// and consumes the others' change topics. Required: at least one.
    pub clusters: Vec<SyncCluster>,
    /// Entity types that are synced, each with its conflict policy. Required: at least one.
    pub entities: Vec<EntityType>,
    /// First part of every topic name. Default `federation.sync`.
    pub topic_prefix: String,
    /// Consumer group prefix; the group is `<group>.<local cluster>`. Default `federation-sync`.
    pub group: String,
    /// Partitions of the topics the runtime creates. Default 6.
    pub partitions: u32,
    /// Handler retries before an event goes to the dead-letter topic.
    pub handler: HandlerRetry,
    /// Largest encoded change event (bytes); larger ones are refused on publish and dead-lettered
    /// on receipt. Default 1 MiB (Kafka's default broker limit is slightly above).
    pub max_message_bytes: u64,
    /// How long deletes are remembered as tombstones. An event older than this is not applied to
    /// an entity the target has no record of (it could predate a forgotten delete). Default 7 days.
    #[serde(serialize_with = "super::units::ser_duration")]
    pub tombstone_window: Duration,
    /// How long `publish` waits for the broker's durable acknowledgement by default. Default 10 s.
    #[serde(serialize_with = "super::units::ser_duration")]
    pub publish_timeout: Duration,
}

impl SyncConfig {
    /// Default topic prefix.
    pub const DEFAULT_TOPIC_PREFIX: &'static str = "federation.sync";
    /// Default consumer group prefix.
    pub const DEFAULT_GROUP: &'static str = "federation-sync";
    /// Default partitions per created topic.
    pub const DEFAULT_PARTITIONS: u32 = 6;
    /// Default largest event.
    pub const DEFAULT_MAX_MESSAGE_BYTES: u64 = 1 << 20;
    /// Default tombstone window.
    pub const DEFAULT_TOMBSTONE_WINDOW: Duration = Duration::from_secs(7 * 24 * 3600);
    /// Default publish deadline.
    pub const DEFAULT_PUBLISH_TIMEOUT: Duration = Duration::from_secs(10);

    /// A sync configuration for `clusters` and `entities` with every other field at its default.
    pub fn new(clusters: Vec<SyncCluster>, entities: Vec<EntityType>) -> Self {
        Self {
            local_cluster: None,
            clusters,
            entities,
            topic_prefix: Self::DEFAULT_TOPIC_PREFIX.to_string(),
            group: Self::DEFAULT_GROUP.to_string(),
            partitions: Self::DEFAULT_PARTITIONS,
            handler: HandlerRetry::default(),
            max_message_bytes: Self::DEFAULT_MAX_MESSAGE_BYTES,
            tombstone_window: Self::DEFAULT_TOMBSTONE_WINDOW,
            publish_timeout: Self::DEFAULT_PUBLISH_TIMEOUT,
        }
    }

    /// The sync cluster named `name`.
    pub fn cluster(&self, name: &str) -> Option<&SyncCluster> {
        self.clusters.iter().find(|c| c.name == name)
    }

    /// The entity type named `name`.
    pub fn entity(&self, name: &str) -> Option<&EntityType> {
        self.entities.iter().find(|e| e.name == name)
    }

    /// Change events published by `origin`: `<prefix>.<origin>.changes` (on `origin`'s brokers).
    pub fn changes_topic(&self, origin: &str) -> String {
        format!("{}.{origin}.changes", self.topic_prefix)
    }

    /// Apply acknowledgements for changes of `origin`: `<prefix>.<origin>.acks` (on `origin`'s
    /// brokers, written by the consuming clusters; how the origin learns a change's status).
    pub fn acks_topic(&self, origin: &str) -> String {
        format!("{}.{origin}.acks", self.topic_prefix)
    }

    /// Events `cluster` could not apply: `<prefix>.<cluster>.dead-letters` (on its brokers).
    pub fn dead_letter_topic(&self, cluster: &str) -> String {
        format!("{}.{cluster}.dead-letters", self.topic_prefix)
    }

    /// Conflicts `cluster` resolved, with both versions: `<prefix>.<cluster>.conflicts`.
    pub fn conflict_topic(&self, cluster: &str) -> String {
        format!("{}.{cluster}.conflicts", self.topic_prefix)
    }

    /// The consumer group of `cluster`: `<group>.<cluster>`.
    pub fn group_id(&self, cluster: &str) -> String {
        format!("{}.{cluster}", self.group)
    }
}

/// One cluster's Kafka brokers.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct SyncCluster {
    /// A cluster declared under `clusters`.
    pub name: String,
    /// `host:port` of one or more brokers (Kafka `bootstrap.servers`). Two clusters may name the
    /// same brokers (one shared broker).
    pub bootstrap_servers: Vec<String>,
}

/// A synced entity type.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct EntityType {
    /// Type name as it appears in events (`user`).
    pub name: String,
    /// How a conflict on this type is resolved. Default [`ConflictPolicy::LastWriterWins`].
    pub policy: ConflictPolicy,
    /// Top-level fields every create and update must carry in `data`; an event without them is
    /// a schema violation (dead-lettered). Default: none.
    pub required_fields: Vec<String>,
}

impl EntityType {
    /// A type with the default policy and no required fields.
    pub fn new(name: impl Into<String>) -> Self {
        Self {
            name: name.into(),
            policy: ConflictPolicy::default(),
            required_fields: Vec::new(),
        }
    }
}

/// How two versions of one entity written without seeing each other are reconciled. Every
/// policy picks the same result on both sides.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case", tag = "policy")]
pub enum ConflictPolicy {
    /// The later hybrid-logical-clock timestamp wins; ties broken by cluster name (default).
    #[default]
    LastWriterWins,
    /// The owning cluster's version wins; between versions of one cluster, last writer wins.
    PreferCluster {
        /// The owning cluster (e.g. users owned by `zervigo`).
        owner: String,
    },
    /// Each top-level field is resolved on its own, last writer wins per field.
    MergeFields,
    /// A callback registered with the sync runtime decides.
    Callback,
}

impl ConflictPolicy {
    /// The name used in the file and in metric labels.
    pub fn name(&self) -> &'static str {
        match self {
            ConflictPolicy::LastWriterWins => "last_writer_wins",
            ConflictPolicy::PreferCluster { .. } => "prefer_cluster",
            ConflictPolicy::MergeFields => "merge_fields",
            ConflictPolicy::Callback => "callback",
        }
    }
}

/// Retries of a failing handler, with exponential backoff.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct HandlerRetry {
    /// Attempts in all (1 = no retry) before the event is dead-lettered. Default 5.
    pub max_attempts: u32,
    /// Pause after the first failure; doubled after each. Default 100 ms.
    #[serde(serialize_with = "super::units::ser_duration")]
    pub initial_backoff: Duration,
    /// Longest pause. Default 5 s.
    #[serde(serialize_with = "super::units::ser_duration")]
    pub max_backoff: Duration,
}

impl Default for HandlerRetry {
    fn default() -> Self {
        Self {
            max_attempts: 5,
            initial_backoff: Duration::from_millis(100),
            max_backoff: Duration::from_secs(5),
        }
    }
}
