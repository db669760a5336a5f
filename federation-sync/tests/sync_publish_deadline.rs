//! `publish` with the configured deadline (`sync.publish_timeout`) runs no timer of its own: the
//! producer's `message.timeout.ms` bounds the wait. A broker that goes down must still turn into
//! the same `Timeout` error, naming the deadline, within about that deadline; nothing hangs and
//! nothing reports success.

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
    // librdkafka scans for timed-out messages about once a second, and its broker thread
    // retries the connection at most `reconnect.backoff.max.ms` (1 s) apart.
    eprintln!("refused after {took:?}");
    assert!(
        took >= deadline - Duration::from_millis(200) && took < deadline + Duration::from_secs(4),
        "failed after {took:?}, deadline {deadline:?}"
    );
}
