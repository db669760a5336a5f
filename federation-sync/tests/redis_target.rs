//! `RedisTarget` on its own against a real `redis-server`: compare-and-set writes (two writers
//! decided from the same state: exactly one lands), the hash layout, the tombstone index, and
//! settings errors that name the bad value.

mod support;

use federation_sync::model::{
    ChangeEvent, ENVELOPE_VERSION, Effect, EntityState, Hlc, Operation, Stamp,
};
use federation_sync::{AppliedChange, RedisTarget, SyncTarget};
use serde_json::{Value, json};
use support::redis;

fn event(id: &str, operation: Operation, data: Value, wall_ms: u64) -> ChangeEvent {
    ChangeEvent {
        v: ENVELOPE_VERSION,
        entity_type: "user".into(),
        entity_id: id.into(),
        operation,
        data: data.as_object().cloned().unwrap_or_default().into(),
        base: None,
        seen: Default::default(),
        stamp: Stamp::new(
            "zervigo",
            Hlc {
                wall_ms,
                logical: 0,
            },
        ),
        published_at_ms: wall_ms,
    }
}

fn change(event: ChangeEvent, previous: Option<EntityState>) -> AppliedChange {
    let state = EntityState::from_event(&event);
    AppliedChange {
        event,
        effect: Effect::Applied,
        state,
        previous,
    }
}

#[tokio::test]
async fn writes_are_compare_and_set_and_deletes_are_indexed() {
    let Some(server) = redis().await else {
        return;
    };
    let target = RedisTarget::connect(&server.url(), "t1")
        .await
        .expect("connect");
    assert_eq!(target.get("user", "1").await.expect("read"), None);
    let first = change(
        event("1", Operation::Create, json!({"n": 1, "x": 1.5}), 1_000),
        None,
    );
    target.write(&first).await.expect("first write");
    let stored = target.get("user", "1").await.expect("read");
    assert_eq!(stored.as_ref(), Some(&first.state), "read back as written");
    let mut conn = server.connection().await.expect("conn");
    let (record, version): (String, String) = redis::cmd("HMGET")
        .arg("t1:user:1")
        .arg("record")
        .arg("version")
        .query_async(&mut conn)
        .await
        .expect("hash fields");
    assert_eq!(
        serde_json::from_str::<Value>(&record).ok(),
        Some(json!({"n": 1, "x": 1.5}))
    );
    assert_eq!(version, first.state.version.to_string());

    // Two writers decided from the same state: exactly one lands, the other is told it is stale.
    let a = change(
        event("1", Operation::Update, json!({"n": 2}), 2_000),
        stored.clone(),
    );
    let b = change(
        event("1", Operation::Update, json!({"n": 3}), 3_000),
        stored.clone(),
    );
    let (ra, rb) = tokio::join!(target.write(&a), target.write(&b));
    assert_eq!(
        [&ra, &rb].iter().filter(|r| r.is_ok()).count(),
        1,
        "{ra:?} {rb:?}"
    );
    let loser = if ra.is_ok() { &rb } else { &ra };
    assert!(loser.as_ref().is_err_and(|e| e.is_stale()), "{loser:?}");
    let winner = if ra.is_ok() { &a } else { &b };
    let now = target.get("user", "1").await.expect("read");
    assert_eq!(now.as_ref(), Some(&winner.state));
    let blind = change(event("1", Operation::Update, json!({"n": 4}), 4_000), None);
    assert!(
        target.write(&blind).await.is_err_and(|e| e.is_stale()),
        "nothing-stored CAS on a stored entity"
    );

    // A delete drops the record, keeps the stamp and indexes the tombstone; a re-create unindexes.
    let delete = change(event("1", Operation::Delete, Value::Null, 5_000), now);
    target.write(&delete).await.expect("delete");
    let tomb = target
        .get("user", "1")
        .await
        .expect("read")
        .expect("tombstone kept");
    assert!(tomb.is_deleted());
    assert_eq!(tomb.version, delete.state.version);
    let score: Option<u64> = redis::cmd("ZSCORE")
        .arg(target.tombstones_key())
        .arg("t1:user:1")
        .query_async(&mut conn)
        .await
        .expect("zscore");
    assert_eq!(score, Some(5_000));
    let again = change(
        event("1", Operation::Create, json!({"n": 6}), 6_000),
        Some(tomb),
    );
    target.write(&again).await.expect("re-create");
    let score: Option<u64> = redis::cmd("ZSCORE")
        .arg(target.tombstones_key())
        .arg("t1:user:1")
        .query_async(&mut conn)
        .await
        .expect("zscore");
    assert_eq!(score, None, "a live entity is not a tombstone");
}

#[tokio::test]
async fn bad_settings_are_named() {
    let err = RedisTarget::connect("redis://127.0.0.1:1", "has space")
        .await
        .err();
    assert!(err.is_some_and(|e| e.to_string().contains("\"has space\"")));
    let err = RedisTarget::connect("nonsense://x", "p").await.err();
    assert!(err.is_some_and(|e| e.to_string().contains("bad url \"nonsense://x\"")));
}
