//! Sync status rebuilt from the acks topic on a real broker, whatever format its ack records
//! were written in: the compact records consuming clusters write now, and the JSON array of ack
//! objects and the single ack object written by earlier versions (an acks topic keeps them).

mod support;

use std::time::Duration;

use federation_core::config::ConflictPolicy;
use federation_sync::kafka::producer_config;
use federation_sync::model::{Hlc, Operation};
use federation_sync::{Ack, MemoryTarget, Overall, SyncStatus, TargetStatus};
use rdkafka::producer::{FutureProducer, FutureRecord};
use rdkafka::util::Timeout;
use serde_json::json;
use support::{config, eventually, runtime, target, write};

const WAIT: Duration = Duration::from_secs(90);

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn status_is_rebuilt_from_ack_records_of_every_format() {
    let Some(broker) = support::broker().await else {
        return;
    };
    let bootstrap = broker.bootstrap_servers();
    let config = config(&bootstrap, ConflictPolicy::LastWriterWins);
    let zervigo = runtime(&config, "zervigo").await;
    let looma = runtime(&config, "looma").await;
    let (origin_store, looma_store) = (MemoryTarget::new(), MemoryTarget::new());
    let subscription = looma.subscribe(target(&looma_store)).expect("subscribe");

    // Compact records: written by looma's subscriber for a change published here.
    let published = write(
        &zervigo,
        &origin_store,
        "user",
        "new",
        Operation::Create,
        json!({"n": 1}),
    )
    .await;
    assert!(
        support::status_is(&zervigo, "user", "new", &published, Overall::Completed).await,
        "{:?}",
        zervigo.status("user", "new")
    );
    subscription.stop().await;

    // The formats of earlier versions, written to the acks topic directly.
    let ack = |id: &str, status: TargetStatus| Ack {
        event_id: format!("event-of-{id}"),
        hlc: Hlc {
            wall_ms: 1_700_000_000_000,
            logical: 0,
        },
        entity_type: "user".into(),
        entity_id: id.into(),
        cluster: "looma".into(),
        status,
    };
    let applied = ack(
        "array",
        TargetStatus::Completed {
            effect: "applied".into(),
        },
    );
    let failed = ack(
        "single",
        TargetStatus::Failed {
            reason: "handler failed".into(),
        },
    );
    let sync = config.sync.as_ref().expect("sync section");
    let topic = sync.acks_topic("zervigo");
    let producer: FutureProducer = producer_config(std::slice::from_ref(&bootstrap), WAIT, 1 << 20)
        .create()
        .expect("producer");
    let array = serde_json::to_vec(&[&applied]).expect("encodes");
    let single = serde_json::to_vec(&failed).expect("encodes");
    for payload in [array, single] {
        let record = FutureRecord::to(&topic).key("looma").payload(&payload);
        producer
            .send(record, Timeout::After(WAIT))
            .await
            .expect("the broker took the old-format record");
    }

    // Another process of zervigo (or this one after a restart) reads the acks topic from the
    // beginning and knows all three.
    let restarted = runtime(&config, "zervigo").await;
    let targets = |state: TargetStatus| -> std::collections::BTreeMap<String, TargetStatus> {
        [("looma".to_string(), state)].into()
    };
    let expected = [
        (
            "new",
            SyncStatus {
                event_id: published.stamp.event_id.to_string(),
                hlc: published.stamp.hlc,
                targets: targets(TargetStatus::Completed {
                    effect: "applied".into(),
                }),
            },
        ),
        (
            "array",
            SyncStatus {
                event_id: applied.event_id.clone(),
                hlc: applied.hlc,
                targets: targets(applied.status.clone()),
            },
        ),
        (
            "single",
            SyncStatus {
                event_id: failed.event_id.clone(),
                hlc: failed.hlc,
                targets: targets(failed.status.clone()),
            },
        ),
    ];
    for (id, want) in expected {
        let rebuilt = eventually(WAIT, || {
            let now = restarted.status("user", id);
            let want = &want;
            async move { now.as_ref() == Some(want) }
        })
        .await;
        assert!(
            rebuilt,
            "user/{id}: {:?}, expected {want:?}",
            restarted.status("user", id)
        );
    }
    assert_eq!(
        restarted.status("user", "single").map(|s| s.overall()),
        Some(Overall::Failed)
    );
}
