//! The `sync` section: defaults, the full schema in YAML and TOML, and problems reported with
//! field path, value, what is allowed and a "did you mean".

use std::time::Duration;

use federation_core::config::{Config, ConfigFormat, ConflictPolicy, SyncConfig};

const CLUSTERS: &str = r#"
clusters:
  zervigo: { static: { user-service: [{ address: 127.0.0.1, port: 8081 }] } }
  looma: { static: { looma-user-api: [{ address: 127.0.0.1, port: 9001 }] } }
"#;

fn parse(sync: &str) -> Result<Config, federation_core::config::ConfigError> {
    Config::parse(&format!("{CLUSTERS}{sync}"), ConfigFormat::Yaml)
}

fn problems(sync: &str) -> Vec<String> {
    match parse(sync) {
        Ok(_) => panic!("expected problems for {sync}"),
        Err(e) => e.problems().iter().map(ToString::to_string).collect(),
    }
}

#[test]
fn a_file_without_sync_has_none() {
    assert_eq!(parse("").expect("valid").sync, None);
}

#[test]
fn the_full_schema_reads_with_documented_defaults() {
    let config = parse(
        r#"
sync:
  local_cluster: zervigo
  clusters:
    zervigo: { bootstrap_servers: "127.0.0.1:9092, 127.0.0.1:9093" }
    looma: { bootstrap_servers: ["127.0.0.1:9092"] }
  entities:
    user: { policy: prefer_cluster, owner: zervigo, required_fields: [email] }
    resume: { policy: merge_fields }
    job: { policy: callback }
    company: {}
    tag: ~
  handler: { max_attempts: 3, initial_backoff: 50ms }
  tombstone_window: 1d
"#,
    )
    .expect("valid");
    let sync = config.sync.expect("sync section");
    assert_eq!(sync.local_cluster.as_deref(), Some("zervigo"));
    assert_eq!(
        sync.cluster("zervigo").map(|c| c.bootstrap_servers.clone()),
        Some(vec![
            "127.0.0.1:9092".to_string(),
            "127.0.0.1:9093".to_string()
        ])
    );
    let user = sync.entity("user").expect("user");
    assert_eq!(
        user.policy,
        ConflictPolicy::PreferCluster {
            owner: "zervigo".into()
        }
    );
    assert_eq!(user.required_fields, vec!["email".to_string()]);
    assert_eq!(
        sync.entity("resume").map(|e| &e.policy),
        Some(&ConflictPolicy::MergeFields)
    );
    assert_eq!(
        sync.entity("job").map(|e| &e.policy),
        Some(&ConflictPolicy::Callback)
    );
    for name in ["company", "tag"] {
        assert_eq!(
            sync.entity(name).map(|e| &e.policy),
            Some(&ConflictPolicy::LastWriterWins)
        );
    }
    assert_eq!(sync.handler.max_attempts, 3);
    assert_eq!(sync.handler.initial_backoff, Duration::from_millis(50));
    assert_eq!(sync.handler.max_backoff, Duration::from_secs(5));
    assert_eq!(sync.tombstone_window, Duration::from_secs(86_400));
    assert_eq!(sync.topic_prefix, SyncConfig::DEFAULT_TOPIC_PREFIX);
    assert_eq!(sync.max_message_bytes, 1 << 20);
    assert_eq!(
        sync.changes_topic("zervigo"),
        "federation.sync.zervigo.changes"
    );
    assert_eq!(
        sync.dead_letter_topic("looma"),
        "federation.sync.looma.dead-letters"
    );
    assert_eq!(sync.group_id("looma"), "federation-sync.looma");
}

#[test]
fn toml_reads_the_same_section() {
    let toml = r#"
[clusters.zervigo.static]
user-service = [{ address = "127.0.0.1", port = 8081 }]
[sync.clusters.zervigo]
bootstrap_servers = ["127.0.0.1:9092"]
[sync.entities.user]
policy = "last_writer_wins"
"#;
    let config = Config::parse(toml, ConfigFormat::Toml).expect("valid TOML");
    assert_eq!(config.sync.map(|s| s.entities.len()), Some(1));
}

#[test]
fn misspelled_keys_and_policies_get_a_did_you_mean() {
    let found = problems(
        r#"
sync:
  clusters: { zervigo: { bootstrap_server: "127.0.0.1:9092" } }
  entities:
    user: { policy: last_writer_win }
  tombstone_windw: 1d
"#,
    );
    let all = found.join("\n");
    assert!(
        all.contains("sync.clusters.zervigo.bootstrap_server: unknown field `bootstrap_server` (did you mean `bootstrap_servers`?)"),
        "{all}"
    );
    assert!(
        all.contains("sync.entities.user.policy = \"last_writer_win\": unknown value (did you mean `last_writer_wins`?)"),
        "{all}"
    );
    assert!(all.contains("(did you mean `tombstone_window`?)"), "{all}");
}

#[test]
fn references_to_clusters_are_checked_with_suggestions() {
    let found = problems(
        r#"
sync:
  local_cluster: lomma
  clusters:
    zervigo: { bootstrap_servers: "127.0.0.1:9092" }
    looma: { bootstrap_servers: "127.0.0.1:9092" }
    zervgo: { bootstrap_servers: "127.0.0.1:9092" }
  entities:
    user: { policy: prefer_cluster, owner: zervig }
    resume: { policy: prefer_cluster }
    company: { policy: merge_fields, owner: looma }
"#,
    );
    let all = found.join("\n");
    for expected in [
        "sync.local_cluster = \"lomma\": `lomma` is not a cluster declared under `sync.clusters` (did you mean `looma`?)",
        "sync.clusters.zervgo: `zervgo` is not a cluster declared under `clusters` (did you mean `zervigo`?)",
        "sync.entities.user.owner = \"zervig\": `zervig` is not a cluster declared under `sync.clusters` (did you mean `zervigo`?)",
        "sync.entities.resume.owner: `policy: prefer_cluster` needs `owner`",
        "sync.entities.company.owner = \"looma\": `owner` only applies to `policy: prefer_cluster`, not `merge_fields`",
    ] {
        assert!(all.contains(expected), "missing {expected:?} in\n{all}");
    }
}

#[test]
fn values_out_of_range_name_what_is_allowed() {
    let found = problems(
        r#"
sync:
  clusters: { zervigo: { bootstrap_servers: ["127.0.0.1", "kafka:99999"] } }
  entities: { "bad/type": {} }
  topic_prefix: "a b"
  partitions: 0
  handler: { max_attempts: 0, initial_backoff: 2s, max_backoff: 1s }
  max_message_bytes: 10
  tombstone_window: 0s
"#,
    );
    let all = found.join("\n");
    for expected in [
        "sync.clusters.zervigo.bootstrap_servers[0] = \"127.0.0.1\": expected `host:port`",
        "sync.clusters.zervigo.bootstrap_servers[1] = \"kafka:99999\": expected `host:port`",
        "sync.entities.bad/type",
        "sync.topic_prefix = \"a b\": Kafka topic names allow only",
        "sync.partitions = 0: allowed: 1 to 1000",
        "sync.handler.max_attempts = 0: allowed: 1 (no retry) to 100",
        "sync.handler.max_backoff = 1s: must be at least `initial_backoff` (2s)",
        "sync.max_message_bytes = 10: allowed: 1KiB to 100MiB",
        "sync.tombstone_window = 0s: must be greater than 0",
    ] {
        assert!(all.contains(expected), "missing {expected:?} in\n{all}");
    }
}

#[test]
fn empty_sections_say_what_to_declare() {
    let all = problems("sync: { clusters: {}, entities: {} }").join("\n");
    assert!(
        all.contains("sync.clusters: declare the Kafka brokers of at least one cluster"),
        "{all}"
    );
    assert!(
        all.contains("sync.entities: declare at least one entity type"),
        "{all}"
    );
}
