//! Conflicts, tombstones and convergence against a real Kafka broker: each policy resolves a
//! concurrent edit the same way on both sides and records it (metric and conflict topic); a late
//! update cannot resurrect a deleted entity; and both clusters publishing concurrently end equal.

mod support;

use std::sync::Arc;
use std::time::Duration;

use federation_core::config::{Config, ConflictPolicy};
use federation_sync::model::{HybridClock, Operation, Resolution, system_clock};
use federation_sync::{FederatedDataSync, MemoryTarget, Overall, Subscription};
use rand::{Rng, RngExt, SeedableRng};
use serde_json::{Value, json};
use support::{config, eventually, record, runtime, target, write};

const WAIT: Duration = Duration::from_secs(90);

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn policies_tombstones_and_convergence_on_a_real_broker() {
    let Some(broker) = support::broker().await else {
        return;
    };
    let bootstrap = broker.bootstrap_servers();
    eprintln!("scenario last_writer_wins");
    last_writer_wins(&bootstrap).await;
    eprintln!("scenario prefer_cluster");
    prefer_cluster(&bootstrap).await;
    eprintln!("scenario merge_fields");
    merge_fields(&bootstrap).await;
    eprintln!("scenario callback");
    callback(&bootstrap).await;
    eprintln!("scenario a_late_update_does_not_resurrect_a_deleted_entity");
    a_late_update_does_not_resurrect_a_deleted_entity(&bootstrap).await;
    eprintln!("scenario events_older_than_the_tombstone_window_are_not_applied");
    events_older_than_the_tombstone_window_are_not_applied(&bootstrap).await;
    eprintln!("scenario both_clusters_publishing_concurrently_converge");
    both_clusters_publishing_concurrently_converge(&bootstrap).await;
}

/// Two clusters with their stores and running subscriptions.
struct Pair {
    zervigo: FederatedDataSync,
    looma: FederatedDataSync,
    z_store: MemoryTarget,
    l_store: MemoryTarget,
    subs: Vec<Subscription>,
}

impl Pair {
    async fn new(config: &Config, build: impl Fn(&str) -> federation_sync::SyncBuilder) -> Pair {
        let zervigo = build("zervigo").build().await.expect("zervigo runtime");
        let looma = build("looma").build().await.expect("looma runtime");
        let _ = config;
        let (z_store, l_store) = (MemoryTarget::new(), MemoryTarget::new());
        let mut pair = Pair {
            zervigo,
            looma,
            z_store,
            l_store,
            subs: Vec::new(),
        };
        pair.subscribe();
        pair
    }

    fn subscribe(&mut self) {
        self.subs.push(
            self.zervigo
                .subscribe(target(&self.z_store))
                .expect("subscribe zervigo"),
        );
        self.subs.push(
            self.looma
                .subscribe(target(&self.l_store))
                .expect("subscribe looma"),
        );
    }

    async fn pause(&mut self) {
        for sub in self.subs.drain(..) {
            sub.stop().await;
        }
    }

    /// Wait until both sides acknowledged each other's latest change of `t`/`id`.
    async fn settled(&self, t: &str, id: &str) -> bool {
        eventually(WAIT, || async {
            let done = |s: &FederatedDataSync| {
                s.status(t, id)
                    .is_some_and(|s| s.overall() == Overall::Completed)
            };
            done(&self.zervigo) && done(&self.looma)
        })
        .await
    }

    /// A common base, then one concurrent edit on each side (neither sees the other's first).
    async fn concurrent_edit(&mut self, t: &str, id: &str, base: Value, z: Value, l: Value) {
        write(&self.zervigo, &self.z_store, t, id, Operation::Create, base).await;
        eprintln!("  base written");
        let copied = eventually(WAIT, || async { record(&self.l_store, t, id).is_some() }).await;
        assert!(copied, "the base version did not reach looma");
        self.pause().await;
        eprintln!("  paused");
        write(&self.zervigo, &self.z_store, t, id, Operation::Update, z).await;
        tokio::time::sleep(Duration::from_millis(5)).await; // looma's edit is the later one
        write(&self.looma, &self.l_store, t, id, Operation::Update, l).await;
        self.subscribe();
        assert!(
            self.settled(t, id).await,
            "both edits must be acknowledged on both sides"
        );
    }

    fn assert_same(&self, t: &str, id: &str) -> Option<serde_json::Map<String, Value>> {
        let (z, l) = (self.z_store.get(t, id), self.l_store.get(t, id));
        assert_eq!(
            z.as_ref().map(|s| s.record()),
            l.as_ref().map(|s| s.record()),
            "{t}/{id} differs"
        );
        record(&self.z_store, t, id)
    }

    fn assert_conflict_counted(&self, t: &str, policy: &str) {
        for side in [&self.zervigo, &self.looma] {
            let line = format!(
                r#"federation_sync_conflicts_total{{entity_type="{t}",policy="{policy}"}} 1"#
            );
            let metrics = side.metrics_text();
            assert!(
                metrics.contains(&line),
                "{} misses {line}:\n{metrics}",
                side.local_cluster()
            );
        }
    }
}

fn plain(config: &Config) -> impl Fn(&str) -> federation_sync::SyncBuilder + '_ {
    move |local| FederatedDataSync::builder(config).local_cluster(local)
}

async fn last_writer_wins(bootstrap: &str) {
    let config = config(bootstrap, ConflictPolicy::LastWriterWins);
    let mut pair = Pair::new(&config, plain(&config)).await;
    pair.concurrent_edit(
        "user",
        "1",
        json!({"v": 0}),
        json!({"v": "z"}),
        json!({"v": "l"}),
    )
    .await;
    assert_eq!(
        pair.assert_same("user", "1"),
        json!({"v": "l"}).as_object().cloned()
    );
    pair.assert_conflict_counted("user", "last_writer_wins");
    // The conflict topic holds a record with both versions.
    let topic = config
        .sync
        .as_ref()
        .map(|s| s.conflict_topic("looma"))
        .unwrap_or_default();
    let conflicts = support::read_topic(bootstrap, &topic, 1).await;
    let conflict: Value = serde_json::from_slice(&conflicts[0]).expect("conflict JSON");
    assert_eq!(conflict["stored"]["data"], json!({"v": "l"}));
    assert_eq!(conflict["incoming"]["data"], json!({"v": "z"}));
    assert_eq!(conflict["winner"], json!("stored"));
}

async fn prefer_cluster(bootstrap: &str) {
    let config = config(
        bootstrap,
        ConflictPolicy::PreferCluster {
            owner: "zervigo".into(),
        },
    );
    let mut pair = Pair::new(&config, plain(&config)).await;
    pair.concurrent_edit(
        "user",
        "2",
        json!({"v": 0}),
        json!({"v": "z"}),
        json!({"v": "l"}),
    )
    .await;
    // zervigo owns users: its edit wins although looma's is later.
    assert_eq!(
        pair.assert_same("user", "2"),
        json!({"v": "z"}).as_object().cloned()
    );
    pair.assert_conflict_counted("user", "prefer_cluster");
}

async fn merge_fields(bootstrap: &str) {
    let config = config(bootstrap, ConflictPolicy::LastWriterWins);
    let mut pair = Pair::new(&config, plain(&config)).await;
    pair.concurrent_edit(
        "resume",
        "3",
        json!({"title": "t0", "skills": "s0"}),
        json!({"title": "t-z"}),
        json!({"skills": "s-l"}),
    )
    .await;
    assert_eq!(
        pair.assert_same("resume", "3"),
        json!({"title": "t-z", "skills": "s-l"})
            .as_object()
            .cloned()
    );
    pair.assert_conflict_counted("resume", "merge_fields");
}

async fn callback(bootstrap: &str) {
    let config = config(bootstrap, ConflictPolicy::Callback);
    // Union of both records; the newer one's values win per key.
    let union = Arc::new(
        |first: &federation_sync::model::Version, second: &federation_sync::model::Version| {
            let mut merged = first.data.clone().unwrap_or_default();
            merged.extend(second.data.clone().unwrap_or_default());
            Resolution::Merged(merged)
        },
    );
    let build = |local: &str| {
        FederatedDataSync::builder(&config)
            .local_cluster(local)
            .callback("user", union.clone())
    };
    let mut pair = Pair::new(&config, build).await;
    pair.concurrent_edit(
        "user",
        "4",
        json!({"a": 0}),
        json!({"z": 1}),
        json!({"l": 1}),
    )
    .await;
    assert_eq!(
        pair.assert_same("user", "4"),
        json!({"z": 1, "l": 1}).as_object().cloned()
    );
    pair.assert_conflict_counted("user", "callback");
}

/// looma's clock runs 10 s behind: its update of an entity zervigo deleted meanwhile carries an
/// earlier time than the delete, so the tombstone wins on both sides.
async fn a_late_update_does_not_resurrect_a_deleted_entity(bootstrap: &str) {
    let config = config(bootstrap, ConflictPolicy::LastWriterWins);
    let behind = {
        let wall = system_clock();
        HybridClock::new(Arc::new(move || wall().saturating_sub(10_000)))
    };
    let build = |local: &str| {
        let builder = FederatedDataSync::builder(&config).local_cluster(local);
        if local == "looma" {
            builder.clock(behind.clone())
        } else {
            builder
        }
    };
    let mut pair = Pair::new(&config, build).await;
    write(
        &pair.zervigo,
        &pair.z_store,
        "user",
        "5",
        Operation::Create,
        json!({"v": 0}),
    )
    .await;
    assert!(
        eventually(WAIT, || async {
            record(&pair.l_store, "user", "5").is_some()
        })
        .await
    );
    pair.pause().await;
    write(
        &pair.looma,
        &pair.l_store,
        "user",
        "5",
        Operation::Update,
        json!({"v": "late"}),
    )
    .await;
    write(
        &pair.zervigo,
        &pair.z_store,
        "user",
        "5",
        Operation::Delete,
        Value::Null,
    )
    .await;
    pair.subscribe();
    assert!(pair.settled("user", "5").await);
    assert_eq!(pair.assert_same("user", "5"), None, "deleted on both sides");
    let tombstone = pair.l_store.get("user", "5").expect("tombstone kept");
    assert!(tombstone.is_deleted());
    assert_eq!(&*tombstone.version.origin, "zervigo");
}

async fn events_older_than_the_tombstone_window_are_not_applied(bootstrap: &str) {
    let mut config = config(bootstrap, ConflictPolicy::LastWriterWins);
    if let Some(sync) = config.sync.as_mut() {
        sync.tombstone_window = Duration::from_secs(60);
    }
    // looma's wall clock is an hour ahead: every zervigo event looks older than the window.
    let ahead = {
        let wall = system_clock();
        HybridClock::new(Arc::new(move || wall() + 3_600_000))
    };
    let zervigo = runtime(&config, "zervigo").await;
    let looma = FederatedDataSync::builder(&config)
        .local_cluster("looma")
        .clock(ahead)
        .build()
        .await
        .expect("looma");
    let l_store = MemoryTarget::new();
    let _sub = looma.subscribe(target(&l_store)).expect("subscribe");
    write(
        &zervigo,
        &MemoryTarget::new(),
        "user",
        "6",
        Operation::Create,
        json!({"v": 0}),
    )
    .await;
    let counted = eventually(WAIT, || async {
        looma.metrics_text().contains(r#"federation_sync_events_total{origin="zervigo",entity_type="user",effect="too_old"} 1"#)
    })
    .await;
    assert!(counted, "{}", looma.metrics_text());
    assert!(l_store.get("user", "6").is_none(), "not applied");
}

async fn both_clusters_publishing_concurrently_converge(bootstrap: &str) {
    let config = config(bootstrap, ConflictPolicy::LastWriterWins);
    let pair = Pair::new(&config, plain(&config)).await;
    let writer = |sync: FederatedDataSync, store: MemoryTarget, seed: u64| {
        tokio::spawn(async move {
            let mut rng = rand::rngs::StdRng::seed_from_u64(seed);
            for n in 0..40 {
                let id = rng.random_range(0..4).to_string();
                let t = if rng.random_bool(0.5) {
                    "user"
                } else {
                    "resume"
                };
                let operation = match rng.random_range(0..10) {
                    0 => Operation::Delete,
                    1..=3 => Operation::Create,
                    _ => Operation::Update,
                };
                let field = format!("f{}", rng.random_range(0..3));
                write(
                    &sync,
                    &store,
                    t,
                    &id,
                    operation,
                    json!({ field: format!("{}-{n}", sync.local_cluster()) }),
                )
                .await;
                if rng.random_bool(0.3) {
                    tokio::time::sleep(Duration::from_millis(rng.next_u64() % 20)).await;
                }
            }
        })
    };
    let a = writer(pair.zervigo.clone(), pair.z_store.clone(), 1);
    let b = writer(pair.looma.clone(), pair.l_store.clone(), 2);
    a.await.expect("zervigo writer");
    b.await.expect("looma writer");
    let converged = eventually(WAIT, || async {
        let records = |s: &MemoryTarget| {
            s.snapshot()
                .into_iter()
                .map(|(k, v)| (k, v.data, v.version))
                .collect::<Vec<_>>()
        };
        records(&pair.z_store) == records(&pair.l_store)
    })
    .await;
    assert!(
        converged,
        "both clusters must end with identical records:\nzervigo {:?}\nlooma {:?}",
        pair.z_store.snapshot(),
        pair.l_store.snapshot()
    );
}
