//! Delivery guarantees against a real Kafka broker: order per entity, no double effect after a
//! consumer dies between writing and committing, and a consumer group that rebalances between
//! two members without losing or repeating a change.

mod support;

use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;

use federation_core::config::ConflictPolicy;
use federation_sync::model::{Effect, EntityState, Operation};
use federation_sync::{AppliedChange, MemoryTarget, SyncTarget, TargetError};
use futures_util::future::BoxFuture;
use serde_json::json;
use support::{DiesAfterWriting, config, eventually, runtime, target, write};

const WAIT: Duration = Duration::from_secs(90);

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn order_redelivery_and_rebalance_on_a_real_broker() {
    let Some(broker) = support::broker().await else {
        return;
    };
    let bootstrap = broker.bootstrap_servers();
    order_per_entity(&bootstrap).await;
    no_double_effect_after_a_consumer_dies_before_commit(&bootstrap).await;
    rebalance_between_two_consumers_of_one_group(&bootstrap).await;
    a_stopped_subscription_has_delivered_its_acks(&bootstrap).await;
}

/// 3 entities x 20 updates from zervigo; looma applies each entity's updates in publish order.
async fn order_per_entity(bootstrap: &str) {
    let config = config(bootstrap, ConflictPolicy::LastWriterWins);
    let zervigo = runtime(&config, "zervigo").await;
    let looma = runtime(&config, "looma").await;
    let (origin_store, looma_store) = (MemoryTarget::new(), MemoryTarget::new());
    let _subscription = looma.subscribe(target(&looma_store)).expect("subscribe");
    let mut published: HashMap<String, (String, usize)> = HashMap::new();
    for n in 0..20 {
        for id in ["1", "2", "3"] {
            let p = write(
                &zervigo,
                &origin_store,
                "user",
                id,
                Operation::Update,
                json!({ "n": n }),
            )
            .await;
            published.insert(p.stamp.event_id.to_string(), (id.to_string(), n));
        }
    }
    let all_applied = eventually(WAIT, || async {
        ["1", "2", "3"].iter().all(|id| {
            support::record(&looma_store, "user", id).and_then(|r| r.get("n").cloned())
                == Some(json!(19))
        })
    })
    .await;
    assert!(
        all_applied,
        "looma did not reach n = 19 for every user: {:?}",
        looma_store.snapshot()
    );
    support::assert_applied_once_in_order(&looma_store, &published);
    // What operators watch: 60 applied, their end-to-end latency, the lag gauge, the health entry.
    let metrics = looma.metrics_text();
    for line in [
        r#"federation_sync_events_total{origin="zervigo",entity_type="user",effect="applied"} 60"#,
        r#"federation_sync_latency_seconds_count{origin="zervigo"} 60"#,
    ] {
        assert!(metrics.contains(line), "missing {line}:\n{metrics}");
    }
    let published_line = r#"federation_sync_published_total{entity_type="user"} 60"#;
    assert!(zervigo.metrics_text().contains(published_line));
    let lag_reported = eventually(WAIT, || async {
        looma
            .metrics_text()
            .contains(r#"federation_sync_consumer_lag{origin="zervigo"} 0"#)
    })
    .await;
    assert!(
        lag_reported,
        "the lag gauge reports 0 once caught up:\n{}",
        looma.metrics_text()
    );
    let health = looma.health();
    assert!(health.is_healthy(), "{health:?}");
    assert_eq!(health.origins.get("zervigo").map(|o| o.consumed), Some(60));
}

async fn no_double_effect_after_a_consumer_dies_before_commit(bootstrap: &str) {
    let config = config(bootstrap, ConflictPolicy::LastWriterWins);
    let zervigo = runtime(&config, "zervigo").await;
    let looma = runtime(&config, "looma").await;
    let (origin_store, looma_store) = (MemoryTarget::new(), MemoryTarget::new());
    let dying = DiesAfterWriting::new(&looma_store);
    let first = write(
        &zervigo,
        &origin_store,
        "user",
        "7",
        Operation::Create,
        json!({"n": 0}),
    )
    .await;
    *dying.victim.lock().expect("lock") = Some(first.stamp.event_id.to_string());
    let subscription = looma.subscribe(Arc::new(dying)).expect("subscribe");
    let written = support::applied(&looma_store, &first).await;
    assert!(written, "the first event was never written");
    subscription.abort();

    let second = write(
        &zervigo,
        &origin_store,
        "user",
        "7",
        Operation::Update,
        json!({"n": 1}),
    )
    .await;
    let _again = looma
        .subscribe(target(&looma_store))
        .expect("subscribe again");
    let caught_up = support::applied(&looma_store, &second).await;
    assert!(
        caught_up,
        "the restarted consumer did not apply the next event"
    );
    assert_eq!(
        looma_store.writes_of(&first.stamp.event_id, Effect::Applied),
        1,
        "the redelivered event must not be applied twice"
    );
    let metrics = looma.metrics_text();
    assert!(
        metrics.contains(r#"federation_sync_events_total{origin="zervigo",entity_type="user",effect="duplicate"} 1"#),
        "the uncommitted event must have been redelivered and recognised as a duplicate:\n{metrics}"
    );
}

/// A store that signals each write.
struct Signals {
    store: MemoryTarget,
    written: Arc<tokio::sync::Notify>,
}

impl SyncTarget for Signals {
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
            self.written.notify_one();
            Ok(())
        })
    }
}

/// looma applies a change and stops at once (its runtime dropped right after, as a service
/// shutting down does): the acknowledgement still reaches zervigo, whose status completes.
async fn a_stopped_subscription_has_delivered_its_acks(bootstrap: &str) {
    let config = config(bootstrap, ConflictPolicy::LastWriterWins);
    let zervigo = runtime(&config, "zervigo").await;
    let looma = runtime(&config, "looma").await;
    let (origin_store, looma_store) = (MemoryTarget::new(), MemoryTarget::new());
    let written = Arc::new(tokio::sync::Notify::new());
    let signalling = Signals {
        store: looma_store.clone(),
        written: Arc::clone(&written),
    };
    let subscription = looma.subscribe(Arc::new(signalling)).expect("subscribe");
    let change = write(
        &zervigo,
        &origin_store,
        "user",
        "stop-1",
        Operation::Create,
        json!({"n": 0}),
    )
    .await;
    // Stop the moment the write is done: the ack is queued while the stop begins.
    let signalled = tokio::time::timeout(WAIT, written.notified()).await;
    assert!(signalled.is_ok(), "never applied");
    subscription.stop().await;
    drop(looma);
    let completed = support::status_is(
        &zervigo,
        "user",
        "stop-1",
        &change,
        federation_sync::Overall::Completed,
    )
    .await;
    assert!(
        completed,
        "looma's ack was lost at its stop: {:?}",
        zervigo.status("user", "stop-1")
    );
}

/// Publishes an update `{"n": round}` of every user in `ids` from `origin`; returns how many.
async fn update_each(
    origin: &federation_sync::FederatedDataSync,
    store: &MemoryTarget,
    ids: &[String],
    round: usize,
) -> usize {
    for id in ids {
        write(
            origin,
            store,
            "user",
            id,
            Operation::Update,
            json!({"n": round}),
        )
        .await;
    }
    ids.len()
}

async fn rebalance_between_two_consumers_of_one_group(bootstrap: &str) {
    let config = config(bootstrap, ConflictPolicy::LastWriterWins);
    let zervigo = runtime(&config, "zervigo").await;
    let looma_a = runtime(&config, "looma").await;
    let looma_b = runtime(&config, "looma").await;
    let (origin_store, looma_store) = (MemoryTarget::new(), MemoryTarget::new());
    let a = looma_a
        .subscribe(target(&looma_store))
        .expect("subscribe a");
    let _b = looma_b
        .subscribe(target(&looma_store))
        .expect("subscribe b");
    let ids: Vec<String> = (0..12).map(|i| i.to_string()).collect();
    let consumed = |s: &federation_sync::FederatedDataSync| {
        s.health().origins.get("zervigo").map_or(0, |o| o.consumed)
    };
    // The second member may join the group after the first already took every partition and
    // drained them: publish rounds (one event per entity) until both members have consumed
    // some, which shows the group split the partitions, bounded by WAIT.
    let mut events = 0;
    let deadline = tokio::time::Instant::now() + WAIT;
    let mut round = 0;
    while round < 4 || consumed(&looma_a) == 0 || consumed(&looma_b) == 0 {
        assert!(
            tokio::time::Instant::now() < deadline,
            "both group members should own partitions; after {round} rounds health a {:?} b {:?}",
            looma_a.health(),
            looma_b.health()
        );
        events += update_each(&zervigo, &origin_store, &ids, round).await;
        round += 1;
        if round >= 4 {
            eventually(Duration::from_secs(2), || async {
                looma_store.writes().len() == events
            })
            .await;
        }
    }
    let all_applied = eventually(WAIT, || async { looma_store.writes().len() == events }).await;
    assert!(
        all_applied,
        "both group members should apply all {events} events; health a {:?} b {:?}, writes {}",
        looma_a.health(),
        looma_b.health(),
        looma_store.writes().len()
    );
    // One member leaves mid-stream: the other takes its partitions over.
    a.stop().await;
    events += update_each(&zervigo, &origin_store, &ids, round).await;
    let converged = eventually(WAIT, || async {
        ids.iter().all(|id| {
            support::record(&looma_store, "user", id) == support::record(&origin_store, "user", id)
        })
    })
    .await;
    assert!(
        converged,
        "after the rebalance looma must catch up with every entity"
    );
    let writes = looma_store.writes();
    assert_eq!(
        writes.len(),
        events,
        "every event applied exactly once across the rebalance"
    );
    assert!(writes.iter().all(|(_, e)| *e == Effect::Applied));
}
