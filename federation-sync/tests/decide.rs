//! The decision function case by case: duplicates, causal successors, each policy's winner,
//! tombstones, the tombstone window; and the envelope's poison reasons.

use std::collections::BTreeMap;
use std::sync::Arc;

use federation_core::config::{EntityType, SyncCluster, SyncConfig};
use federation_sync::model::{
    ChangeEvent, ENVELOPE_VERSION, Effect, EntityState, Hlc, Operation, Poison, Policy, Record,
    Resolution, Stamp, Window, Winner, decide, decode,
};
use serde_json::{Map, Value, json};

const OPEN: Window = Window {
    now_ms: 0,
    tombstone_ms: u64::MAX,
};

fn hlc(ms: u64) -> Hlc {
    Hlc {
        wall_ms: ms,
        logical: 0,
    }
}

/// An event of user/1 from `origin` at `ms`, written after seeing `seen_state`.
fn event(
    origin: &str,
    ms: u64,
    op: Operation,
    data: Value,
    seen_state: Option<&EntityState>,
) -> ChangeEvent {
    ChangeEvent {
        v: ENVELOPE_VERSION,
        entity_type: "user".into(),
        entity_id: "1".into(),
        operation: op,
        data: data.as_object().cloned().unwrap_or_default().into(),
        base: seen_state.map(|s| s.version.clone()),
        seen: seen_state.map(|s| s.seen.clone()).unwrap_or_default(),
        stamp: Stamp::new(origin, hlc(ms)),
        published_at_ms: ms,
    }
}

/// The stored record, parsed.
fn record(state: &EntityState) -> Option<Map<String, Value>> {
    state.data.as_ref().map(Record::to_map)
}

fn apply(
    policy: &Policy,
    state: Option<&EntityState>,
    e: &ChangeEvent,
) -> (Effect, EntityState, Option<Winner>) {
    let d = decide(policy, state, e, OPEN);
    let next = d.next.or_else(|| state.cloned()).expect("a state");
    (d.effect, next, d.conflict.map(|c| c.winner))
}

/// A base created by zervigo at 10, then concurrent edits: zervigo at 20, looma at 30.
fn concurrent(
    policy: &Policy,
    z: Value,
    l: Value,
) -> (EntityState, (Effect, EntityState, Option<Winner>)) {
    let (_, base, _) = apply(
        policy,
        None,
        &event(
            "zervigo",
            10,
            Operation::Create,
            json!({"v": 0, "k": 0}),
            None,
        ),
    );
    let ze = event("zervigo", 20, Operation::Update, z, Some(&base));
    let le = event("looma", 30, Operation::Update, l, Some(&base));
    let (_, at_zervigo, _) = apply(policy, Some(&base), &ze);
    (at_zervigo.clone(), apply(policy, Some(&at_zervigo), &le))
}

#[test]
fn a_redelivered_event_is_a_duplicate_and_writes_nothing() {
    let e = event("zervigo", 10, Operation::Create, json!({"v": 1}), None);
    let (_, state, _) = apply(&Policy::LastWriterWins, None, &e);
    let again = decide(&Policy::LastWriterWins, Some(&state), &e, OPEN);
    assert_eq!(
        (again.effect, again.next, again.conflict),
        (Effect::Duplicate, None, None)
    );
}

#[test]
fn a_causal_successor_applies_without_conflict_even_with_an_older_wall_clock() {
    let (_, base, _) = apply(
        &Policy::LastWriterWins,
        None,
        &event("zervigo", 50, Operation::Create, json!({"v": 1}), None),
    );
    // looma's wall clock is behind, but it had seen the base.
    let after = event("looma", 40, Operation::Update, json!({"v": 2}), Some(&base));
    let (effect, state, conflict) = apply(&Policy::LastWriterWins, Some(&base), &after);
    assert_eq!((effect, conflict), (Effect::Applied, None));
    assert_eq!(record(&state), json!({"v": 2}).as_object().cloned());
}

#[test]
fn last_writer_wins_keeps_the_later_stamp() {
    let (_, (effect, state, winner)) = concurrent(
        &Policy::LastWriterWins,
        json!({"v": "z"}),
        json!({"v": "l"}),
    );
    assert_eq!((effect, winner), (Effect::Applied, Some(Winner::Incoming)));
    assert_eq!(record(&state), json!({"v": "l"}).as_object().cloned());
}

#[test]
fn prefer_cluster_keeps_the_owner_version_although_it_is_older() {
    let policy = Policy::PreferCluster("zervigo".into());
    let (before, (effect, state, winner)) =
        concurrent(&policy, json!({"v": "z"}), json!({"v": "l"}));
    assert_eq!((effect, winner), (Effect::Superseded, Some(Winner::Stored)));
    assert_eq!(state.record(), before.record());
    assert_eq!(state.heads.len(), 2, "both concurrent heads are kept");
}

#[test]
fn merge_fields_takes_the_newest_value_of_each_field() {
    let (_, (effect, state, winner)) =
        concurrent(&Policy::MergeFields, json!({"v": "z"}), json!({"k": "l"}));
    assert_eq!((effect, winner), (Effect::Merged, Some(Winner::Merged)));
    assert_eq!(
        record(&state),
        json!({"v": "z", "k": "l"}).as_object().cloned()
    );
}

#[test]
fn a_callback_sees_the_versions_oldest_first_and_may_merge() {
    let policy = Policy::Callback(Arc::new(|first, second| {
        assert!(first.stamp < second.stamp, "oldest first");
        let mut merged = first.data.clone().unwrap_or_default();
        merged.insert("merged".into(), json!(true));
        Resolution::Merged(merged)
    }));
    let (_, (effect, state, winner)) = concurrent(&policy, json!({"v": "z"}), json!({"v": "l"}));
    assert_eq!((effect, winner), (Effect::Merged, Some(Winner::Merged)));
    assert_eq!(
        record(&state),
        json!({"v": "z", "merged": true}).as_object().cloned()
    );
    assert_eq!(
        &*state.version.origin, "looma",
        "the merged record takes the newer stamp"
    );
}

#[test]
fn a_late_update_written_before_a_delete_does_not_resurrect_it() {
    let policy = Policy::LastWriterWins;
    let (_, base, _) = apply(
        &policy,
        None,
        &event("zervigo", 10, Operation::Create, json!({"v": 0}), None),
    );
    let delete = event("zervigo", 30, Operation::Delete, Value::Null, Some(&base));
    let late = event(
        "looma",
        20,
        Operation::Update,
        json!({"v": "late"}),
        Some(&base),
    );
    let (_, deleted, _) = apply(&policy, Some(&base), &delete);
    let (effect, state, winner) = apply(&policy, Some(&deleted), &late);
    assert_eq!((effect, winner), (Effect::Superseded, Some(Winner::Stored)));
    assert!(state.is_deleted());
    // And in the other order on the other side.
    let (_, updated, _) = apply(&policy, Some(&base), &late);
    let (_, other_side, _) = apply(&policy, Some(&updated), &delete);
    assert!(other_side.is_deleted());
    assert_eq!(other_side.record(), state.record());
}

#[test]
fn an_event_older_than_the_tombstone_window_is_not_applied_to_an_unknown_entity() {
    let e = event("zervigo", 1_000, Operation::Update, json!({"v": 1}), None);
    let window = Window {
        now_ms: 1_000 + 61_000,
        tombstone_ms: 60_000,
    };
    let d = decide(&Policy::LastWriterWins, None, &e, window);
    assert_eq!((d.effect, d.next), (Effect::TooOld, None));
    let fresh = Window {
        now_ms: 1_000 + 59_000,
        tombstone_ms: 60_000,
    };
    assert_eq!(
        decide(&Policy::LastWriterWins, None, &e, fresh).effect,
        Effect::Applied
    );
}

fn sync_config() -> SyncConfig {
    let mut company = EntityType::new("company");
    company.required_fields = vec!["name".into()];
    let mut config = SyncConfig::new(
        vec![SyncCluster {
            name: "zervigo".into(),
            bootstrap_servers: vec!["127.0.0.1:9092".into()],
        }],
        vec![EntityType::new("user"), company],
    );
    config.max_message_bytes = 1024;
    config
}

#[test]
fn every_poison_has_its_reason() {
    let config = sync_config();
    let kind = |payload: &[u8]| decode(payload, &config).map(|_| ()).map_err(|p| p.kind());
    assert_eq!(kind(b"{not json"), Err("not_json"));
    assert_eq!(kind(br#"{"entity_type": "user"}"#), Err("schema"));
    let mut e = event("zervigo", 1, Operation::Create, json!({"v": 1}), None);
    assert_eq!(kind(&e.encode()), Ok(()));
    e.v = 2;
    assert_eq!(kind(&e.encode()), Err("schema"));
    e.v = ENVELOPE_VERSION;
    e.entity_type = "invoice".into();
    match decode(&e.encode(), &config) {
        Err(Poison::UnknownType {
            entity_type,
            configured,
        }) => {
            assert_eq!(
                (entity_type.as_str(), configured.as_str()),
                ("invoice", "user, company")
            );
        }
        other => panic!("expected unknown type, got {other:?}"),
    }
    e.entity_type = "company".into();
    assert_eq!(kind(&e.encode()), Err("schema"), "company lacks `name`");
    e.operation = Operation::Delete;
    assert_eq!(kind(&e.encode()), Ok(()), "a delete needs no fields");
    let blob: Map<String, Value> = BTreeMap::from([("blob".to_string(), json!("x".repeat(2000)))])
        .into_iter()
        .collect();
    e.data = blob.into();
    assert_eq!(kind(&e.encode()), Err("oversized"));
}
