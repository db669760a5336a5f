//! Convergence property: for any interleaving of concurrent creates, updates and deletes of the
//! same entities in both clusters, with redeliveries and independently drifting wall clocks,
//! both clusters end with identical records under every conflict policy.
//!
//! The model is the sync's own decision function (`model::decide`) run by two simulated clusters:
//! each writes locally (stamping with its hybrid clock, basing the change on what it stores),
//! publishes to an in-order log read by the other side, and applies what it receives. Kafka keeps
//! order per entity, so each direction is one ordered log; redelivery re-applies any event
//! already delivered, at any later time (stronger than Kafka's replay from the last commit).

use std::collections::BTreeMap;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

use federation_sync::model::{
    ChangeEvent, ENVELOPE_VERSION, EntityState, HybridClock, Operation, Policy, Resolution, Stamp,
    Window, decide,
};
use proptest::prelude::*;
use serde_json::{Map, Value, json};

const CLUSTERS: [&str; 2] = ["looma", "zervigo"];
const WINDOW: Window = Window {
    now_ms: 0,
    tombstone_ms: u64::MAX,
};

#[derive(Clone, Debug)]
enum Step {
    /// A local change in cluster `c` of entity `e`: 0 create, 1 update, 2 delete.
    Write {
        c: usize,
        e: usize,
        op: u8,
        field: u8,
        value: u8,
    },
    /// Deliver the next event published by the other cluster to `c`.
    Deliver { c: usize },
    /// Deliver again an event `c` already received.
    Redeliver { c: usize, pick: usize },
    /// Move `c`'s wall clock forward.
    Tick { c: usize, ms: u64 },
}

fn step() -> impl Strategy<Value = Step> {
    prop_oneof![
        4 => (0..2usize, 0..3usize, 0..3u8, 0..3u8, any::<u8>())
            .prop_map(|(c, e, op, field, value)| Step::Write { c, e, op, field, value }),
        4 => (0..2usize).prop_map(|c| Step::Deliver { c }),
        1 => (0..2usize, any::<usize>()).prop_map(|(c, pick)| Step::Redeliver { c, pick }),
        2 => (0..2usize, 0..4u64).prop_map(|(c, ms)| Step::Tick { c, ms }),
    ]
}

struct Cluster {
    name: &'static str,
    time: Arc<AtomicU64>,
    clock: HybridClock,
    store: BTreeMap<usize, EntityState>,
    /// Events this cluster published, in order.
    log: Vec<ChangeEvent>,
    /// How many of the other cluster's log entries were delivered here.
    received: usize,
}

impl Cluster {
    fn new(name: &'static str, start: u64) -> Self {
        let time = Arc::new(AtomicU64::new(start));
        let source = Arc::clone(&time);
        Cluster {
            name,
            clock: HybridClock::new(Arc::new(move || source.load(Ordering::SeqCst))),
            time,
            store: BTreeMap::new(),
            log: Vec::new(),
            received: 0,
        }
    }

    fn write(&mut self, policy: &Policy, e: usize, op: u8, field: u8, value: u8) {
        let base = self.store.get(&e).map(|s| s.version.clone());
        let hlc = match &base {
            Some(b) => self.clock.observe(b.hlc),
            None => self.clock.now(),
        };
        let operation = [Operation::Create, Operation::Update, Operation::Delete][usize::from(op)];
        let mut data = Map::new();
        if operation != Operation::Delete {
            data.insert(format!("f{field}"), json!(value));
            data.insert("priority".into(), json!(value % 3));
        }
        let event = ChangeEvent {
            v: ENVELOPE_VERSION,
            entity_type: "user".into(),
            entity_id: e.to_string(),
            operation,
            data: data.into(),
            seen: self
                .store
                .get(&e)
                .map(|s| s.seen.clone())
                .unwrap_or_default(),
            base,
            stamp: Stamp::new(self.name, hlc),
            published_at_ms: 0,
        };
        let decision = decide(policy, self.store.get(&e), &event, WINDOW);
        assert!(
            decision.conflict.is_none(),
            "a local write is based on what is stored"
        );
        if let Some(next) = decision.next {
            self.store.insert(e, next);
        }
        self.log.push(event);
    }

    fn apply(&mut self, policy: &Policy, event: &ChangeEvent) {
        self.clock.observe(event.stamp.hlc);
        let e: usize = event.entity_id.parse().expect("numeric id");
        let decision = decide(policy, self.store.get(&e), event, WINDOW);
        if let Some(next) = decision.next {
            self.store.insert(e, next);
        }
    }
}

/// Deliver the next unread event of `from`'s log to `to`; false when none is left.
fn deliver(clusters: &mut [Cluster; 2], to: usize, policy: &Policy) -> bool {
    let from = 1 - to;
    let Some(event) = clusters[from].log.get(clusters[to].received).cloned() else {
        return false;
    };
    clusters[to].received += 1;
    clusters[to].apply(policy, &event);
    true
}

fn run(policy: &Policy, steps: &[Step], skew: u64) -> Result<(), TestCaseError> {
    let mut clusters = [
        Cluster::new(CLUSTERS[0], 1_000 + skew),
        Cluster::new(CLUSTERS[1], 1_000),
    ];
    for step in steps {
        match *step {
            Step::Write {
                c,
                e,
                op,
                field,
                value,
            } => clusters[c].write(policy, e, op, field, value),
            Step::Deliver { c } => {
                deliver(&mut clusters, c, policy);
            }
            Step::Redeliver { c, pick } => {
                let received = clusters[c].received;
                if received > 0 {
                    let event = clusters[1 - c].log[pick % received].clone();
                    clusters[c].apply(policy, &event);
                }
            }
            Step::Tick { c, ms } => {
                clusters[c].time.fetch_add(ms, Ordering::SeqCst);
            }
        }
    }
    // Drain both directions, alternating.
    while deliver(&mut clusters, 0, policy) | deliver(&mut clusters, 1, policy) {}
    for e in 0..3 {
        let a = clusters[0].store.get(&e).map(EntityState::record);
        let b = clusters[1].store.get(&e).map(EntityState::record);
        prop_assert_eq!(a, b, "entity {} differs under {:?}", e, policy);
    }
    Ok(())
}

/// A deterministic callback: the version with the larger `priority` wins, ties to the newer;
/// a delete beats a record of the same priority.
fn priority_callback() -> Policy {
    Policy::Callback(Arc::new(|first, second| {
        let rank = |data: &Option<Map<String, Value>>| {
            data.as_ref().map_or(3, |d| {
                d.get("priority").and_then(Value::as_u64).unwrap_or(0)
            })
        };
        if rank(&first.data) > rank(&second.data) {
            Resolution::First
        } else {
            Resolution::Second
        }
    }))
}

fn policies() -> Vec<Policy> {
    vec![
        Policy::LastWriterWins,
        Policy::PreferCluster("zervigo".into()),
        Policy::PreferCluster("looma".into()),
        Policy::MergeFields,
        priority_callback(),
    ]
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 512, ..ProptestConfig::default() })]

    #[test]
    fn both_clusters_converge_under_every_policy(
        steps in prop::collection::vec(step(), 1..80),
        skew in 0..20u64,
    ) {
        for policy in policies() {
            run(&policy, &steps, skew)?;
        }
    }
}
