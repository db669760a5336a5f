//! A backlog consumed in bulk against a real Kafka broker: the subscriber takes whatever the
//! consumer has ready and hands each lane its share at once, so one entity's changes arrive in
//! many hand-overs and finish out of order with other entities' changes. Order per entity and
//! commit-after-apply must hold across those hand-overs: a message still being written stops the
//! commit of its partition at that message, whatever finished after it.

mod support;

use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;

use federation_core::config::ConflictPolicy;
use federation_sync::model::{Effect, Operation};
use federation_sync::{FederatedDataSync, MemoryTarget, Published};
use futures_util::future::join_all;
use serde_json::json;
use support::{DiesAfterWriting, config, eventually, runtime, target, write};

const WAIT: Duration = Duration::from_secs(90);
/// Four entities on four different lanes (checked in `lanes::tests`), so one hung entity does
/// not hold the others up.
const IDS: [&str; 4] = ["b1", "b2", "b3", "b4"];
const UPDATES: usize = 100;
/// `b1`'s update that hangs after its write (a consumer that died before committing it).
const VICTIM: usize = 50;

/// `UPDATES` updates of one entity, one after the other.
async fn updates(zervigo: &FederatedDataSync, store: &MemoryTarget, id: &str) -> Vec<Published> {
    let mut published = Vec::with_capacity(UPDATES);
    for n in 0..UPDATES {
        let p = write(
            zervigo,
            store,
            "user",
            id,
            Operation::Update,
            json!({ "n": n }),
        )
        .await;
        published.push(p);
    }
    published
}

fn n_of(store: &MemoryTarget, id: &str) -> Option<serde_json::Value> {
    support::record(store, "user", id).and_then(|r| r.get("n").cloned())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_backlog_keeps_order_per_entity_and_commits_only_past_finished_messages() {
    let Some(broker) = support::broker().await else {
        return;
    };
    let config = config(&broker.bootstrap_servers(), ConflictPolicy::LastWriterWins);
    let zervigo = runtime(&config, "zervigo").await;
    let looma = runtime(&config, "looma").await;
    let (origin_store, looma_store) = (MemoryTarget::new(), MemoryTarget::new());
    // The whole backlog is on the topic before looma reads it: the consumer drains it in bulk.
    let per_id = join_all(IDS.iter().map(|id| updates(&zervigo, &origin_store, id))).await;
    let mut published: HashMap<String, (String, usize)> = HashMap::new();
    for (id, events) in IDS.iter().zip(&per_id) {
        for (n, p) in events.iter().enumerate() {
            published.insert(p.stamp.event_id.to_string(), (id.to_string(), n));
        }
    }
    let victim = per_id[0][VICTIM].stamp.event_id.clone();
    let hanging = DiesAfterWriting::new(&looma_store);
    *hanging.victim.lock().expect("lock") = Some(victim.to_string());
    let subscription = looma.subscribe(Arc::new(hanging)).expect("subscribe");
    let others_done = eventually(WAIT, || async {
        looma_store.writes_of(&victim, Effect::Applied) == 1
            && IDS[1..]
                .iter()
                .all(|id| n_of(&looma_store, id) == Some(json!(UPDATES - 1)))
    })
    .await;
    assert!(
        others_done,
        "the other entities did not finish while b1 hung: {:?}",
        looma_store.snapshot()
    );
    // Long enough for the finished messages to be committed (every 100 ms).
    tokio::time::sleep(Duration::from_millis(500)).await;
    subscription.abort();
    assert_eq!(
        n_of(&looma_store, "b1"),
        Some(json!(VICTIM)),
        "b1 stops at the hung update"
    );

    let _again = looma
        .subscribe(target(&looma_store))
        .expect("subscribe again");
    let caught_up = eventually(WAIT, || async {
        n_of(&looma_store, "b1") == Some(json!(UPDATES - 1))
    })
    .await;
    assert!(
        caught_up,
        "b1's updates after the hung one were lost (committed before they were applied): {:?}",
        looma_store.get("user", "b1")
    );
    // Every event applied exactly once, each entity's in publish order, across both consumers.
    let last = support::assert_applied_once_in_order(&looma_store, &published);
    assert_eq!(last.len(), IDS.len());
    assert!(last.values().all(|n| *n == UPDATES - 1), "{last:?}");
    let duplicate =
        r#"federation_sync_events_total{origin="zervigo",entity_type="user",effect="duplicate"}"#;
    let metrics = looma.metrics_text();
    assert!(
        metrics.contains(duplicate),
        "the hung update was not committed, so it comes again and is recognised:\n{metrics}"
    );
}
