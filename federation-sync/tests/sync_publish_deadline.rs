//! `publish` with the configured deadline (`sync.publish_timeout`) while the broker is down: the
//! caller gets the `Timeout` error naming the deadline when the deadline passes (not when
//! librdkafka's once-a-second expiry scan notices the message); nothing hangs and nothing reports
//! success.

mod support;

use std::time::{Duration, Instant};

use federation_core::config::ConflictPolicy;
use federation_sync::model::Operation;
use federation_sync::{Change, SyncErrorKind};
use serde_json::json;
use support::{config, runtime};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn publish_with_the_configured_deadline_times_out_when_the_broker_is_down() {
    let Some(broker) = support::broker().await else {
        return;
    };
    let mut config = config(&broker.bootstrap_servers(), ConflictPolicy::LastWriterWins);
    let deadline = Duration::from_secs(3);
    if let Some(sync) = config.sync.as_mut() {
        sync.publish_timeout = deadline;
    }
    let zervigo = runtime(&config, "zervigo").await;
    let change = |n: i64| Change::new("user", "1", Operation::Update).data(json!({ "n": n }));
    let first = zervigo
        .publish(change(1))
        .await
        .expect("published while up");
    assert!(first.offset >= 0, "{first:?}");

    broker.kill();
    let started = Instant::now();
    let refused = zervigo.publish(change(2)).await;
    let took = started.elapsed();
    match refused {
        Err(e) => {
            assert_eq!(e.kind(), SyncErrorKind::Timeout, "{e}");
            assert!(
                e.to_string()
                    .contains("no acknowledgement from the broker within 3s"),
                "{e}"
            );
        }
        Ok(p) => panic!("publish with the broker down must fail, got {p:?}"),
    }
    // librdkafka alone took 3 to 7 s here (its expiry scan runs about once a second); the
    // publish's own timer ends the wait at the deadline (margin for a loaded machine).
    assert!(
        took >= deadline - Duration::from_millis(50)
            && took < deadline + Duration::from_millis(750),
        "failed after {took:?}, deadline {deadline:?}"
    );
}
