//! Semantic checks of the `sync` section, for files and configs built in code alike.
//!
//! A sync set up wrong fails late and quietly: a typo in an owner makes `prefer_cluster` never
//! prefer anyone, a topic prefix Kafka rejects fails only when the first event is published, a
//! bootstrap address without a port connects nowhere. Each is caught here with its field path.

use std::collections::HashSet;

use super::error::{Problems, join};
use super::model::Config;
use super::suggest;
use super::sync::{ConflictPolicy, SyncConfig};
use super::sync_read::server_path;
use super::units::format_duration;
use super::validate::check_name;

/// Kafka's longest topic name.
const MAX_TOPIC_LEN: usize = 249;
/// Smallest and largest accepted `max_message_bytes`.
const MESSAGE_BYTES: (u64, u64) = (1024, 100 << 20);

/// Runs every check of `config.sync` (nothing when absent).
pub(crate) fn check_sync(config: &Config, p: &mut Problems) {
    let Some(sync) = &config.sync else {
        return;
    };
    let declared: Vec<&str> = config.clusters.iter().map(|c| c.name.as_str()).collect();
    let synced: Vec<&str> = sync.clusters.iter().map(|c| c.name.as_str()).collect();
    if sync.clusters.is_empty() {
        p.push(
            "sync.clusters",
            None,
            "declare the Kafka brokers of at least one cluster, e.g. `zervigo: { bootstrap_servers: \"127.0.0.1:9092\" }`",
        );
    }
    let mut seen = HashSet::new();
    for cluster in &sync.clusters {
        let path = join("sync.clusters", &cluster.name);
        if !seen.insert(cluster.name.as_str()) {
            p.push(&path, None, "cluster declared more than once");
        }
        known_cluster(&cluster.name, &path, None, &declared, "clusters", p);
        check_servers(&cluster.name, &cluster.bootstrap_servers, p);
    }
    if let Some(local) = &sync.local_cluster {
        known_cluster(
            local,
            "sync.local_cluster",
            Some(local),
            &synced,
            "sync.clusters",
            p,
        );
    }
    check_entities(sync, &synced, p);
    check_topics(sync, p);
    check_numbers(sync, p);
}

/// Reports `name` at `path` unless it is one of `known` (listed under `section`).
fn known_cluster(
    name: &str,
    path: &str,
    value: Option<&str>,
    known: &[&str],
    section: &str,
    p: &mut Problems,
) {
    if known.contains(&name) {
        return;
    }
    p.push(
        path,
        value.map(|v| format!("\"{v}\"")),
        format!(
            "`{name}` is not a cluster declared under `{section}`{}; declared: {}",
            suggest::hint(name, known.iter().copied()),
            if known.is_empty() {
                "none".to_string()
            } else {
                suggest::list(known.iter().copied())
            }
        ),
    );
}

fn check_servers(cluster: &str, servers: &[String], p: &mut Problems) {
    if servers.is_empty() {
        p.push(
            &join(&join("sync.clusters", cluster), "bootstrap_servers"),
            None,
            "give at least one broker as `host:port`",
        );
    }
    for (i, server) in servers.iter().enumerate() {
        let port = server
            .rsplit_once(':')
            .filter(|(host, _)| !host.is_empty())
            .and_then(|(_, port)| port.parse::<u16>().ok())
            .filter(|port| *port > 0);
        if port.is_none() {
            p.push(
                &server_path(cluster, i),
                Some(format!("\"{server}\"")),
                "expected `host:port` with a port from 1 to 65535, e.g. `127.0.0.1:9092`",
            );
        }
    }
}

fn check_entities(sync: &SyncConfig, synced: &[&str], p: &mut Problems) {
    if sync.entities.is_empty() {
        p.push(
            "sync.entities",
            None,
            "declare at least one entity type, e.g. `user: { policy: last_writer_wins }`",
        );
    }
    for entity in &sync.entities {
        let path = join("sync.entities", &entity.name);
        check_name(&entity.name, "entity type", &path, p);
        if let ConflictPolicy::PreferCluster { owner } = &entity.policy {
            known_cluster(
                owner,
                &join(&path, "owner"),
                Some(owner),
                synced,
                "sync.clusters",
                p,
            );
        }
        for (i, field) in entity.required_fields.iter().enumerate() {
            if field.is_empty() {
                let at = super::error::index(&join(&path, "required_fields"), i);
                p.push(&at, Some("\"\"".into()), "a field name cannot be empty");
            }
        }
    }
}

fn check_topics(sync: &SyncConfig, p: &mut Problems) {
    let legal = |s: &str| {
        !s.is_empty()
            && s.chars()
                .all(|c| c.is_ascii_alphanumeric() || matches!(c, '.' | '_' | '-'))
    };
    if !legal(&sync.topic_prefix) {
        p.push(
            "sync.topic_prefix",
            Some(format!("\"{}\"", sync.topic_prefix)),
            "Kafka topic names allow only letters, digits, `.`, `_` and `-`",
        );
    }
    if !legal(&sync.group) {
        p.push(
            "sync.group",
            Some(format!("\"{}\"", sync.group)),
            "use letters, digits, `.`, `_` and `-`",
        );
    }
    for cluster in &sync.clusters {
        let longest = sync.dead_letter_topic(&cluster.name);
        if longest.len() > MAX_TOPIC_LEN {
            p.push(
                "sync.topic_prefix",
                None,
                format!("topic `{longest}` would exceed Kafka's {MAX_TOPIC_LEN} characters"),
            );
        }
    }
}

fn check_numbers(sync: &SyncConfig, p: &mut Problems) {
    if !(1..=1000).contains(&sync.partitions) {
        p.push(
            "sync.partitions",
            Some(sync.partitions.to_string()),
            "allowed: 1 to 1000",
        );
    }
    if !(1..=100).contains(&sync.handler.max_attempts) {
        p.push(
            "sync.handler.max_attempts",
            Some(sync.handler.max_attempts.to_string()),
            "allowed: 1 (no retry) to 100",
        );
    }
    if sync.handler.initial_backoff.is_zero() {
        p.push(
            "sync.handler.initial_backoff",
            Some("0s".into()),
            "must be greater than 0",
        );
    }
    if sync.handler.max_backoff < sync.handler.initial_backoff {
        p.push(
            "sync.handler.max_backoff",
            Some(format_duration(sync.handler.max_backoff)),
            format!(
                "must be at least `initial_backoff` ({})",
                format_duration(sync.handler.initial_backoff)
            ),
        );
    }
    let (min, max) = MESSAGE_BYTES;
    if !(min..=max).contains(&sync.max_message_bytes) {
        p.push(
            "sync.max_message_bytes",
            Some(sync.max_message_bytes.to_string()),
            "allowed: 1KiB to 100MiB (and no more than the brokers' message.max.bytes)",
        );
    }
    if sync.tombstone_window.is_zero() {
        p.push(
            "sync.tombstone_window",
            Some("0s".into()),
            "must be greater than 0",
        );
    }
    if sync.publish_timeout.is_zero() {
        p.push(
            "sync.publish_timeout",
            Some("0s".into()),
            "must be greater than 0",
        );
    }
}
