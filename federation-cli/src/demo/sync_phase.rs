//! The demo's data-sync phase: users changed in zervigo appear in looma and back, a concurrent
//! edit resolves the same way on both sides, and a broker restart mid-stream loses nothing.
//!
//! It runs after the call story, against a real Kafka broker started by the testkit, when Java is
//! available; otherwise it is skipped with a line saying how to enable it, so the demo still
//! works on a machine without Java.

use std::sync::Arc;
use std::time::{Duration, Instant};

use federation_core::config::{ConflictPolicy, EntityType, SyncCluster, SyncConfig};
use federation_sync::model::Operation;
use federation_sync::{Change, FederatedDataSync, MemoryTarget, Overall, Subscription};
use federation_testkit::kafka::{KafkaBroker, java_available};
use serde::Serialize;
use serde_json::{Value, json};

/// How long each step may take to show its result.
const STEP: Duration = Duration::from_secs(60);
/// Users created in zervigo.
const USERS: usize = 20;

/// What the sync phase showed (the `sync` member of the `--json` document).
#[derive(Debug, Default, Serialize)]
pub struct SyncReport {
    /// Whether it ran (false: skipped, see `skipped`).
    pub ran: bool,
    /// Why it did not run, and how to enable it.
    pub skipped: Option<String>,
    /// Every check held.
    pub passed: bool,
    /// Users created in zervigo that looma holds.
    pub zervigo_to_looma: usize,
    /// Users updated in looma whose update zervigo holds.
    pub looma_to_zervigo: usize,
    /// The record both sides hold after a concurrent edit of one user.
    pub concurrent_result: Option<Value>,
    /// Whether both sides hold the same record after the concurrent edit.
    pub concurrent_same_on_both: bool,
    /// Changes published around a broker kill and restart, and how many looma applied.
    pub restart_published: usize,
    /// See `restart_published`.
    pub restart_applied: usize,
    /// What went wrong, when `passed` is false.
    pub error: Option<String>,
    /// Seconds the phase took.
    pub seconds: f64,
}

/// Run the phase, or skip it when there is no Java.
pub async fn run() -> SyncReport {
    if let Err(reason) = java_available() {
        return SyncReport {
            skipped: Some(format!(
                "data sync phase skipped: it needs a Kafka broker, which needs Java ({reason}). \
                 Install Java 17+ (e.g. apt-get install openjdk-17-jre-headless) and Maven to see it."
            )),
            ..SyncReport::default()
        };
    }
    let started = Instant::now();
    eprintln!("── data sync: starting a Kafka broker…");
    let broker = match KafkaBroker::start().await {
        Ok(broker) => broker,
        Err(e) => {
            return SyncReport {
                skipped: Some(format!(
                    "data sync phase skipped: the Kafka broker did not start: {e}"
                )),
                ..SyncReport::default()
            };
        }
    };
    let mut report = SyncReport {
        ran: true,
        ..SyncReport::default()
    };
    if let Err(e) = story(&broker, &mut report).await {
        report.error = Some(e);
    }
    report.passed = report.error.is_none();
    report.seconds = started.elapsed().as_secs_f64();
    broker.stop().await;
    report
}

fn config(bootstrap: &str) -> SyncConfig {
    let mut user = EntityType::new("user");
    user.policy = ConflictPolicy::LastWriterWins;
    let clusters = ["zervigo", "looma"]
        .map(|name| SyncCluster {
            name: name.into(),
            bootstrap_servers: vec![bootstrap.to_string()],
        })
        .to_vec();
    let mut config = SyncConfig::new(clusters, vec![user]);
    config.topic_prefix = "demo.sync".into();
    config.partitions = 3;
    // Publishes during the broker restart wait for it (a restart takes 3 to 15 s).
    config.publish_timeout = Duration::from_secs(120);
    config
}

struct Side {
    sync: FederatedDataSync,
    store: MemoryTarget,
}

impl Side {
    async fn start(config: &SyncConfig, local: &str) -> Result<Side, String> {
        let sync = FederatedDataSync::builder_for(Some(config.clone()))
            .local_cluster(local)
            .build()
            .await
            .map_err(|e| format!("{local} sync runtime: {e}"))?;
        Ok(Side {
            sync,
            store: MemoryTarget::new(),
        })
    }

    fn subscribe(&self) -> Result<Subscription, String> {
        self.sync
            .subscribe(Arc::new(self.store.clone()))
            .map_err(|e| e.to_string())
    }

    async fn write(&self, id: &str, op: Operation, data: Value) -> Result<(), String> {
        let change = Change::new("user", id, op)
            .data(data)
            .base(self.store.get("user", id));
        let published = self.sync.publish(change).await.map_err(|e| e.to_string())?;
        self.sync
            .apply_local(&self.store, &published.event)
            .await
            .map(|_| ())
            .map_err(|e| e.to_string())
    }

    fn record(&self, id: &str) -> Option<Value> {
        self.store
            .get("user", id)
            .and_then(|s| s.data)
            .map(|d| Value::Object(d.to_map()))
    }
}

async fn until(what: &str, mut done: impl FnMut() -> bool) -> Result<(), String> {
    let deadline = Instant::now() + STEP;
    while !done() {
        if Instant::now() >= deadline {
            return Err(format!("{what}: not within {STEP:?}"));
        }
        tokio::time::sleep(Duration::from_millis(25)).await;
    }
    Ok(())
}

async fn story(broker: &KafkaBroker, report: &mut SyncReport) -> Result<(), String> {
    let config = config(&broker.bootstrap_servers());
    let (z, l) = (
        Side::start(&config, "zervigo").await?,
        Side::start(&config, "looma").await?,
    );
    let mut subs = vec![z.subscribe()?, l.subscribe()?];
    let ids: Vec<String> = (0..USERS).map(|i| format!("u{i}")).collect();
    for id in &ids {
        z.write(id, Operation::Create, json!({"name": id, "plan": "free"}))
            .await?;
    }
    until("users created in zervigo reach looma", || {
        ids.iter().all(|id| l.record(id).is_some())
    })
    .await?;
    report.zervigo_to_looma = ids.iter().filter(|id| l.record(id).is_some()).count();
    eprintln!("   {USERS} users created in zervigo are in looma");
    for id in ids.iter().take(USERS / 2) {
        l.write(id, Operation::Update, json!({"name": id, "plan": "pro"}))
            .await?;
    }
    let upgraded = |side: &Side| {
        ids.iter()
            .take(USERS / 2)
            .filter(|id| side.record(id).is_some_and(|r| r["plan"] == "pro"))
            .count()
    };
    until("updates made in looma reach zervigo", || {
        upgraded(&z) == USERS / 2
    })
    .await?;
    report.looma_to_zervigo = upgraded(&z);
    eprintln!(
        "   {} users upgraded in looma are upgraded in zervigo",
        report.looma_to_zervigo
    );

    // A concurrent edit: neither side sees the other's before making its own.
    for sub in subs.drain(..) {
        sub.stop().await;
    }
    z.write(
        "u0",
        Operation::Update,
        json!({"name": "u0", "plan": "team"}),
    )
    .await?;
    l.write(
        "u0",
        Operation::Update,
        json!({"name": "u0", "plan": "enterprise"}),
    )
    .await?;
    subs.push(z.subscribe()?);
    subs.push(l.subscribe()?);
    let settled = |side: &Side| {
        side.sync
            .status("user", "u0")
            .is_some_and(|s| s.overall() == Overall::Completed)
    };
    until("the concurrent edit is acknowledged on both sides", || {
        settled(&z) && settled(&l)
    })
    .await?;
    report.concurrent_same_on_both = z.record("u0") == l.record("u0");
    report.concurrent_result = z.record("u0");
    eprintln!(
        "   concurrent edit of u0 resolved to the same record on both sides: {}",
        report.concurrent_result.clone().unwrap_or(Value::Null)
    );
    if !report.concurrent_same_on_both {
        return Err(format!(
            "u0 differs: zervigo {:?}, looma {:?}",
            z.record("u0"),
            l.record("u0")
        ));
    }
    restart_mid_stream(broker, &z, &l, report).await
}

async fn restart_mid_stream(
    broker: &KafkaBroker,
    z: &Side,
    l: &Side,
    report: &mut SyncReport,
) -> Result<(), String> {
    let mut last = 0;
    for n in 0..5 {
        z.write("u1", Operation::Update, json!({"name": "u1", "seq": n}))
            .await?;
        last = n;
    }
    eprintln!("   killing the broker mid-stream…");
    broker.kill();
    let writer = async {
        for n in 5..10 {
            z.write("u1", Operation::Update, json!({"name": "u1", "seq": n}))
                .await?;
        }
        Ok::<_, String>(9)
    };
    let restart = async {
        tokio::time::sleep(Duration::from_millis(500)).await;
        broker.restart().await.map_err(|e| e.to_string())
    };
    let (written, restarted) = tokio::join!(writer, restart);
    restarted?;
    last = last.max(written?);
    report.restart_published = last + 1;
    until("looma catches up after the broker restart", || {
        l.record("u1").is_some_and(|r| r["seq"] == json!(last))
    })
    .await?;
    report.restart_applied = report.restart_published;
    eprintln!(
        "   broker restarted: all {} changes reached looma in order",
        report.restart_published
    );
    Ok(())
}
