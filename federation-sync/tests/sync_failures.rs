//! Failure handling against a real Kafka broker: poison messages and a failing handler go to the
//! dead-letter topic with their reason while the partition goes on; the origin's status says
//! failed; a broker killed and restarted mid-stream loses nothing, and publishing while it is
//! down fails within the caller's deadline with a clear error.

mod support;

use std::collections::HashMap;
use std::time::Duration;

use federation_core::config::{Config, ConflictPolicy};
use federation_sync::model::{
    ChangeEvent, ENVELOPE_VERSION, Effect, HybridClock, Operation, Stamp,
};
use federation_sync::{Change, MemoryTarget, Overall, SyncErrorKind, TargetStatus};
use federation_testkit::kafka::KafkaBroker;
use rdkafka::ClientConfig;
use rdkafka::message::{Headers, Message};
use rdkafka::producer::{FutureProducer, FutureRecord};
use serde_json::json;
use support::{config, eventually, runtime, target, write};

const WAIT: Duration = Duration::from_secs(90);

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn poison_handler_failures_and_broker_restart_on_a_real_broker() {
    let Some(broker) = support::broker().await else {
        return;
    };
    poison_goes_to_the_dead_letter_topic_and_the_partition_continues(&broker).await;
    a_failing_handler_is_retried_then_dead_lettered_and_status_says_failed(&broker).await;
    broker_restart_mid_stream_loses_nothing(&broker).await;
}

fn raw_producer(bootstrap: &str) -> FutureProducer {
    ClientConfig::new()
        .set("bootstrap.servers", bootstrap)
        .create()
        .expect("raw producer")
}

/// Every dead letter on `topic`, as (reason kind, reason, payload), until `count` arrived.
async fn dead_letters(
    bootstrap: &str,
    topic: &str,
    count: usize,
) -> Vec<(String, String, Vec<u8>)> {
    let consumer = support::reader(bootstrap, topic);
    let mut out = Vec::new();
    while out.len() < count {
        let message = match tokio::time::timeout(WAIT, consumer.recv()).await {
            Ok(Ok(message)) => message,
            Ok(Err(e)) => panic!("reading {topic}: {e}"),
            Err(_) => panic!(
                "only {} of {count} dead letters on {topic}: {out:?}",
                out.len()
            ),
        };
        let header = |name: &str| {
            message
                .headers()
                .and_then(|h| h.iter().find(|h| h.key == name))
                .and_then(|h| h.value)
                .map(|v| String::from_utf8_lossy(v).into_owned())
                .unwrap_or_default()
        };
        out.push((
            header("federation.reason_kind"),
            header("federation.reason"),
            message.payload().unwrap_or_default().to_vec(),
        ));
    }
    out
}

fn event(entity_type: &str, data: serde_json::Value) -> ChangeEvent {
    ChangeEvent {
        v: ENVELOPE_VERSION,
        entity_type: entity_type.into(),
        entity_id: "p".into(),
        operation: Operation::Create,
        data: data.as_object().cloned().unwrap_or_default().into(),
        base: None,
        seen: Default::default(),
        stamp: Stamp::new("zervigo", HybridClock::default().now()),
        published_at_ms: 0,
    }
}

async fn poison_goes_to_the_dead_letter_topic_and_the_partition_continues(broker: &KafkaBroker) {
    let bootstrap = broker.bootstrap_servers();
    let mut config: Config = config(&bootstrap, ConflictPolicy::LastWriterWins);
    if let Some(sync) = config.sync.as_mut() {
        sync.max_message_bytes = 2048;
    }
    let sync_config = config.sync.clone().expect("sync");
    let zervigo = runtime(&config, "zervigo").await;
    let looma = runtime(&config, "looma").await;
    let looma_store = MemoryTarget::new();
    let _subscription = looma.subscribe(target(&looma_store)).expect("subscribe");
    let raw = raw_producer(&bootstrap);
    let topic = sync_config.changes_topic("zervigo");
    let oversized = event("user", json!({ "blob": "x".repeat(3000) })).encode();
    let poisons: Vec<Vec<u8>> = vec![
        b"\xff{ not json".to_vec(),
        event("invoice", json!({"n": 1})).encode(),
        br#"{"hello": "world"}"#.to_vec(),
        event("company", json!({"no_name": true})).encode(),
        oversized,
    ];
    for payload in &poisons {
        let record = FutureRecord::to(&topic).key("user/p").payload(payload);
        raw.send(record, Duration::from_secs(10))
            .await
            .expect("raw send");
    }
    // A good change on the same key after the poison: the partition must not stall.
    let good = write(
        &zervigo,
        &MemoryTarget::new(),
        "user",
        "p",
        Operation::Create,
        json!({"ok": true}),
    )
    .await;
    let applied = support::applied(&looma_store, &good).await;
    assert!(
        applied,
        "the change after the poison messages was not applied"
    );

    let letters = dead_letters(&bootstrap, &sync_config.dead_letter_topic("looma"), 5).await;
    let kinds: Vec<&str> = letters.iter().map(|(k, _, _)| k.as_str()).collect();
    assert_eq!(
        kinds,
        ["not_json", "unknown_type", "schema", "schema", "oversized"]
    );
    let reasons: Vec<&str> = letters.iter().map(|(_, r, _)| r.as_str()).collect();
    assert!(
        reasons[1].contains("unknown entity type \"invoice\"; configured: user, resume, company"),
        "{reasons:?}"
    );
    assert!(
        reasons[3].contains("lacks required field(s) name"),
        "{reasons:?}"
    );
    assert!(
        reasons[4].contains("limit 2048 (sync.max_message_bytes)"),
        "{reasons:?}"
    );
    assert_eq!(
        letters[0].2, poisons[0],
        "the dead letter carries the original payload"
    );
    let metrics = looma.metrics_text();
    assert!(
        metrics.contains(r#"federation_sync_dead_letters_total{reason="schema"} 2"#),
        "{metrics}"
    );
}

async fn a_failing_handler_is_retried_then_dead_lettered_and_status_says_failed(
    broker: &KafkaBroker,
) {
    let bootstrap = broker.bootstrap_servers();
    let config = config(&bootstrap, ConflictPolicy::LastWriterWins);
    let zervigo = runtime(&config, "zervigo").await;
    let looma = runtime(&config, "looma").await;
    let (origin_store, looma_store) = (MemoryTarget::new(), MemoryTarget::new());
    // Attempts are 3: two failures are retried away, three dead-letter the event.
    looma_store.fail_next_writes(2);
    let _subscription = looma.subscribe(target(&looma_store)).expect("subscribe");
    let retried = write(
        &zervigo,
        &origin_store,
        "user",
        "h",
        Operation::Create,
        json!({"n": 1}),
    )
    .await;
    let ok = support::applied(&looma_store, &retried).await;
    assert!(
        ok,
        "two failures then success: applied on the third attempt"
    );
    let completed = eventually(WAIT, || async {
        zervigo
            .status("user", "h")
            .is_some_and(|s| s.overall() == Overall::Completed)
    })
    .await;
    assert!(
        completed,
        "status after the retried success: {:?}",
        zervigo.status("user", "h")
    );

    looma_store.fail_next_writes(3);
    let failed = write(
        &zervigo,
        &origin_store,
        "user",
        "h",
        Operation::Update,
        json!({"n": 2}),
    )
    .await;
    let status_failed = support::status_is(&zervigo, "user", "h", &failed, Overall::Failed).await;
    let status = zervigo.status("user", "h");
    assert!(
        status_failed,
        "status of a dead-lettered change: {status:?}"
    );
    match status.and_then(|s| s.targets.get("looma").cloned()) {
        Some(TargetStatus::Failed { reason }) => assert!(
            reason.contains("handler failed after 3 attempts: writing: injected write failure"),
            "{reason}"
        ),
        other => panic!("looma's status should be failed, got {other:?}"),
    }
    let sync_config = config.sync.clone().expect("sync");
    let letters = dead_letters(&bootstrap, &sync_config.dead_letter_topic("looma"), 1).await;
    assert_eq!(letters[0].0, "handler");
    assert!(support::record(&looma_store, "user", "h").is_some_and(|r| r["n"] == json!(1)));
    // Replay (the cause fixed: writes succeed again): the event is applied and its status completes.
    let report = looma
        .replay_dead_letters(target(&looma_store))
        .await
        .expect("replay");
    assert_eq!(
        (report.replayed, report.succeeded, report.failed_again),
        (1, 1, 0),
        "{report:?}"
    );
    assert_eq!(
        looma_store.writes_of(&failed.stamp.event_id, Effect::Applied),
        1
    );
    let completed = eventually(WAIT, || async {
        zervigo.status("user", "h").is_some_and(|s| {
            *s.event_id == *failed.stamp.event_id && s.overall() == Overall::Completed
        })
    })
    .await;
    assert!(
        completed,
        "status after the replay: {:?}",
        zervigo.status("user", "h")
    );
    let again = looma
        .replay_dead_letters(target(&looma_store))
        .await
        .expect("second replay");
    assert_eq!(
        again.replayed, 0,
        "a replay continues where the last one stopped"
    );
    // `federation sync replay`'s way: publish the dead letter again on its source topic; the
    // running subscriber receives it again and applies it.
    looma_store.fail_next_writes(3);
    let lost = write(
        &zervigo,
        &origin_store,
        "user",
        "h",
        Operation::Update,
        json!({"n": 2.5}),
    )
    .await;
    let dead = support::status_is(&zervigo, "user", "h", &lost, Overall::Failed).await;
    assert!(dead, "{:?}", zervigo.status("user", "h"));
    let report = looma.republish_dead_letters().await.expect("republish");
    assert_eq!(
        (report.replayed, report.succeeded, report.skipped),
        (1, 1, 0),
        "{report:?}"
    );
    assert!(
        support::applied(&looma_store, &lost).await,
        "the republished change is applied"
    );
    // The partition goes on.
    let after = write(
        &zervigo,
        &origin_store,
        "user",
        "h",
        Operation::Update,
        json!({"n": 3}),
    )
    .await;
    let went_on = support::applied(&looma_store, &after).await;
    assert!(
        went_on,
        "the next change after a dead-lettered one is applied"
    );
}

async fn broker_restart_mid_stream_loses_nothing(broker: &KafkaBroker) {
    let bootstrap = broker.bootstrap_servers();
    let mut config = config(&bootstrap, ConflictPolicy::LastWriterWins);
    if let Some(sync) = config.sync.as_mut() {
        sync.publish_timeout = Duration::from_secs(120);
    }
    let zervigo = runtime(&config, "zervigo").await;
    let looma = runtime(&config, "looma").await;
    let (origin_store, looma_store) = (MemoryTarget::new(), MemoryTarget::new());
    let _subscription = looma.subscribe(target(&looma_store)).expect("subscribe");
    let mut published = HashMap::new();
    for n in 0..10 {
        let p = write(
            &zervigo,
            &origin_store,
            "user",
            &(n % 3).to_string(),
            Operation::Update,
            json!({"n": n}),
        )
        .await;
        published.insert(p.stamp.event_id, n);
    }
    broker.kill();
    let refused = zervigo
        .publish_within(
            Change::new("user", "down", Operation::Create).data(json!({"n": -1})),
            Duration::from_millis(500),
        )
        .await;
    match refused {
        Err(e) => {
            assert_eq!(e.kind(), SyncErrorKind::Timeout, "{e}");
            assert!(
                e.to_string()
                    .contains("no acknowledgement from the broker within 500ms"),
                "{e}"
            );
        }
        Ok(p) => panic!("publish with the broker down must fail within its deadline, got {p:?}"),
    }
    // Publishes issued while the broker is down wait (within their deadline) and land after it is back.
    let writer = {
        let (zervigo, origin_store) = (zervigo.clone(), origin_store.clone());
        tokio::spawn(async move {
            let mut ids = Vec::new();
            for n in 10..20 {
                let p = write(
                    &zervigo,
                    &origin_store,
                    "user",
                    &(n % 3).to_string(),
                    Operation::Update,
                    json!({"n": n}),
                )
                .await;
                ids.push((p.stamp.event_id, n));
            }
            ids
        })
    };
    broker.restart().await.expect("restart the broker");
    for (id, n) in writer.await.expect("writer task") {
        published.insert(id, n);
    }
    let converged = eventually(WAIT, || async {
        ["0", "1", "2"].iter().all(|id| {
            support::record(&looma_store, "user", id) == support::record(&origin_store, "user", id)
        })
    })
    .await;
    assert!(
        converged,
        "looma must end equal to zervigo after the restart: {:?}",
        looma_store.snapshot()
    );
    let applied: Vec<i32> = looma_store
        .writes()
        .iter()
        .filter(|(_, e)| *e == Effect::Applied)
        .filter_map(|(id, _)| published.get(id.as_str()).copied())
        .collect();
    let mut unique = applied.clone();
    unique.sort_unstable();
    unique.dedup();
    assert_eq!(
        unique,
        (0..20).collect::<Vec<_>>(),
        "every change applied, none lost"
    );
    assert_eq!(applied.len(), 20, "none applied twice");
}
