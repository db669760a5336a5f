//! Reading the `sync` section from the document tree (see [`super::sync`] for the schema).
//!
//! Unknown keys, wrong types and unknown policy names are reported with their field paths and a
//! "did you mean"; fields that cannot be read keep their defaults so validation goes on.

use super::error::{Problems, index, join};
use super::read;
use super::sync::{ConflictPolicy, EntityType, HandlerRetry, SyncCluster, SyncConfig};
use super::tree::Node;

const SYNC_KEYS: &[&str] = &[
    "local_cluster",
    "clusters",
    "entities",
    "topic_prefix",
    "group",
    "partitions",
    "handler",
    "max_message_bytes",
    "tombstone_window",
    "publish_timeout",
];
const CLUSTER_KEYS: &[&str] = &["bootstrap_servers"];
const ENTITY_KEYS: &[&str] = &["policy", "owner", "required_fields"];
const HANDLER_KEYS: &[&str] = &["max_attempts", "initial_backoff", "max_backoff"];
/// Policy names as written in files.
pub(crate) const POLICY_NAMES: &[&str] = &[
    "last_writer_wins",
    "prefer_cluster",
    "merge_fields",
    "callback",
];

/// Reads `sync`; `None` only when the node is not a map at all.
pub(crate) fn read_sync(node: &Node, path: &str, p: &mut Problems) -> Option<SyncConfig> {
    let f = read::fields(node, path, SYNC_KEYS, p)?;
    let mut sync = SyncConfig::new(Vec::new(), Vec::new());
    if let Some((node, path)) = f.get("local_cluster") {
        sync.local_cluster = read::string(node, &path, p);
    }
    if let Some((node, path)) = f.get("clusters") {
        sync.clusters = read_clusters(node, &path, p);
    }
    if let Some((node, path)) = f.get("entities") {
        sync.entities = read_entities(node, &path, p);
    }
    if let Some((node, path)) = f.get("topic_prefix") {
        sync.topic_prefix = read::string(node, &path, p).unwrap_or(sync.topic_prefix);
    }
    if let Some((node, path)) = f.get("group") {
        sync.group = read::string(node, &path, p).unwrap_or(sync.group);
    }
    if let Some((node, path)) = f.get("partitions") {
        sync.partitions = read::u32_value(node, &path, p).unwrap_or(sync.partitions);
    }
    if let Some((node, path)) = f.get("handler") {
        read_handler(node, &path, &mut sync.handler, p);
    }
    if let Some((node, path)) = f.get("max_message_bytes") {
        sync.max_message_bytes = read::size(node, &path, p).unwrap_or(sync.max_message_bytes);
    }
    if let Some((node, path)) = f.get("tombstone_window") {
        sync.tombstone_window = read::duration(node, &path, p).unwrap_or(sync.tombstone_window);
    }
    if let Some((node, path)) = f.get("publish_timeout") {
        sync.publish_timeout = read::duration(node, &path, p).unwrap_or(sync.publish_timeout);
    }
    Some(sync)
}

fn read_clusters(node: &Node, path: &str, p: &mut Problems) -> Vec<SyncCluster> {
    let what = "a map of cluster name to `{ bootstrap_servers }`";
    let Some(entries) = read::entries(node, path, what, p) else {
        return Vec::new();
    };
    read::duplicates(entries, path, p);
    let mut clusters = Vec::with_capacity(entries.len());
    for (name, node) in entries {
        let path = join(path, name);
        let mut cluster = SyncCluster {
            name: name.clone(),
            bootstrap_servers: Vec::new(),
        };
        if let Some(f) = read::fields(node, &path, CLUSTER_KEYS, p)
            && let Some((node, path)) = f.get("bootstrap_servers")
        {
            cluster.bootstrap_servers = match node {
                // "a:9092,b:9092" as Kafka writes it, or a list.
                Node::Str(s) => s.split(',').map(|s| s.trim().to_string()).collect(),
                other => read::string_list(other, &path, p).unwrap_or_default(),
            };
        }
        clusters.push(cluster);
    }
    clusters
}

fn read_entities(node: &Node, path: &str, p: &mut Problems) -> Vec<EntityType> {
    let what = "a map of entity type name to `{ policy, owner, required_fields }`";
    let Some(entries) = read::entries(node, path, what, p) else {
        return Vec::new();
    };
    read::duplicates(entries, path, p);
    entries
        .iter()
        .map(|(name, node)| read_entity(name, node, &join(path, name), p))
        .collect()
}

fn read_entity(name: &str, node: &Node, path: &str, p: &mut Problems) -> EntityType {
    let mut entity = EntityType::new(name);
    // `user: ~` or `user: {}` both mean "all defaults".
    if matches!(node, Node::Null) {
        return entity;
    }
    let Some(f) = read::fields(node, path, ENTITY_KEYS, p) else {
        return entity;
    };
    let owner = f
        .get("owner")
        .and_then(|(node, path)| read::string(node, &path, p));
    let options: Vec<(&str, usize)> = POLICY_NAMES.iter().copied().zip(0..).collect();
    let chosen = f
        .get("policy")
        .and_then(|(node, path)| read::choice(node, &path, &options, p));
    entity.policy = match chosen {
        Some(1) => match &owner {
            Some(owner) => ConflictPolicy::PreferCluster {
                owner: owner.clone(),
            },
            None => {
                p.push(
                    &join(path, "owner"),
                    None,
                    "`policy: prefer_cluster` needs `owner`: the cluster whose version wins",
                );
                ConflictPolicy::LastWriterWins
            }
        },
        Some(2) => ConflictPolicy::MergeFields,
        Some(3) => ConflictPolicy::Callback,
        _ => ConflictPolicy::LastWriterWins,
    };
    if owner.is_some() && chosen.is_some_and(|c| c != 1) {
        p.push(
            &join(path, "owner"),
            owner.map(|o| format!("\"{o}\"")),
            format!(
                "`owner` only applies to `policy: prefer_cluster`, not `{}`",
                entity.policy.name()
            ),
        );
    }
    if let Some((node, path)) = f.get("required_fields") {
        entity.required_fields = read::string_list(node, &path, p).unwrap_or_default();
    }
    entity
}

fn read_handler(node: &Node, path: &str, handler: &mut HandlerRetry, p: &mut Problems) {
    let Some(f) = read::fields(node, path, HANDLER_KEYS, p) else {
        return;
    };
    if let Some((node, path)) = f.get("max_attempts") {
        handler.max_attempts = read::u32_value(node, &path, p).unwrap_or(handler.max_attempts);
    }
    if let Some((node, path)) = f.get("initial_backoff") {
        handler.initial_backoff = read::duration(node, &path, p).unwrap_or(handler.initial_backoff);
    }
    if let Some((node, path)) = f.get("max_backoff") {
        handler.max_backoff = read::duration(node, &path, p).unwrap_or(handler.max_backoff);
    }
}

/// Path of the `i`-th bootstrap server (validation reports per item).
pub(crate) fn server_path(cluster: &str, i: usize) -> String {
    index(
        &join(&join("sync.clusters", cluster), "bootstrap_servers"),
        i,
    )
}
