//! Recovery after ejection, against real loopback instances under a steady stream of calls: an
//! instance killed long enough for its breaker to double the open period to 8 s is back in
//! rotation within 2 s of its restart (a background connect probe ends the ejection), with no
//! failed call throughout; an instance that accepts connections but answers 503 keeps the
//! doubling (one real probe per open period, not one per probe interval).

mod pipeline_support;

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::{Duration, Instant};

use federation_core::client::FederatedServiceClient;
use federation_core::config::{LoadBalancing, Policy};
use federation_core::telemetry::BreakerStateValue;
use federation_testkit::instance::Behavior;
use pipeline_support::{breaker_of, cluster, config, eventually, service, start};

/// A steady GET stream: `workers` loops until `stop`; counts failed calls (error or non-2xx).
fn stream(
    client: &FederatedServiceClient,
    workers: usize,
    stop: &Arc<AtomicBool>,
    failed: &Arc<AtomicU64>,
) -> Vec<tokio::task::JoinHandle<()>> {
    (0..workers)
        .map(|_| {
            let (client, stop, failed) = (client.clone(), Arc::clone(stop), Arc::clone(failed));
            tokio::spawn(async move {
                while !stop.load(Ordering::Relaxed) {
                    match client.get("user", "/work").send().await {
                        Ok(r) if r.status().is_success() => {}
                        _ => {
                            failed.fetch_add(1, Ordering::Relaxed);
                        }
                    }
                    tokio::time::sleep(Duration::from_millis(2)).await;
                }
            })
        })
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_restarted_instance_is_back_within_two_seconds_whatever_its_open_period() {
    let z = start("zervigo", "user-service", 3).await;
    let cfg = config(
        vec![cluster("zervigo", "user-service", &z)],
        vec![service("user", &[("zervigo", "user-service")], None)],
    );
    let client = FederatedServiceClient::from_config(cfg).expect("valid config");
    let (stop, failed) = (
        Arc::new(AtomicBool::new(false)),
        Arc::new(AtomicU64::new(0)),
    );
    let workers = stream(&client, 4, &stop, &failed);

    tokio::time::sleep(Duration::from_millis(300)).await;
    z[0].kill().await;
    // Real probes fail at ≈ 1, 3 and 7 s, so the breaker is open for 8 s when the instance
    // comes back at 7.5 s: without the connect probe it would wait until ≈ 15 s.
    tokio::time::sleep(Duration::from_millis(7_500)).await;
    let before = z[0].requests();
    z[0].restart().await.expect("restart on the same port");
    let restarted = Instant::now();
    let back = eventually(Duration::from_secs(10), || z[0].requests() > before).await;
    let took = restarted.elapsed();
    // Keep streaming a little: the first call after the restart closes the breaker.
    tokio::time::sleep(Duration::from_millis(300)).await;
    stop.store(true, Ordering::Relaxed);
    for w in workers {
        w.await.expect("worker ends");
    }

    eprintln!("restarted instance back in rotation after {took:?}");
    assert!(back, "the restarted instance never received traffic again");
    assert!(
        took <= Duration::from_secs(2),
        "back in rotation {took:?} after the restart (goal ≤ 2 s)"
    );
    assert_eq!(
        breaker_of(&client, "user-service-zervigo-1"),
        Some(BreakerStateValue::Closed)
    );
    assert_eq!(
        failed.load(Ordering::Relaxed),
        0,
        "no call failed throughout"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_instance_answering_503_keeps_its_doubling() {
    let z = start("zervigo", "user-service", 3).await;
    let mut svc = service("user", &[("zervigo", "user-service")], None);
    // Eject on the first 503: the balancer would otherwise starve the instance before five.
    let mut policy = Policy::default();
    policy.breaker.consecutive_failures = 1;
    // Round robin: this test is about the breaker, and peak-EWMA may legitimately starve an
    // instance that had one slow answer on a loaded machine, so it might never see a 503.
    policy.load_balancing = Some(LoadBalancing::RoundRobin);
    svc.policy = Some(policy);
    let cfg = config(vec![cluster("zervigo", "user-service", &z)], vec![svc]);
    let client = FederatedServiceClient::from_config(cfg).expect("valid config");
    let (stop, failed) = (
        Arc::new(AtomicBool::new(false)),
        Arc::new(AtomicU64::new(0)),
    );
    let workers = stream(&client, 4, &stop, &failed);

    tokio::time::sleep(Duration::from_millis(300)).await;
    z[1].set_behavior(Behavior::status(503));
    let id = "user-service-zervigo-2";
    let ejected = eventually(Duration::from_secs(10), || {
        breaker_of(&client, id) == Some(BreakerStateValue::Open)
    })
    .await;
    assert!(ejected, "the 503 instance is ejected");
    // Real probes come at ≈ 1 and 3 s after the ejection (then 7 s); a probe per connect
    // interval would add one about every second. Count over the 5 s after the first probe.
    tokio::time::sleep(Duration::from_millis(1_500)).await;
    let before = z[1].requests();
    tokio::time::sleep(Duration::from_secs(5)).await;
    let during = z[1].requests() - before;
    stop.store(true, Ordering::Relaxed);
    for w in workers {
        w.await.expect("worker ends");
    }

    eprintln!("503 instance: {during} requests in the 5 s window");
    assert!(
        during <= 2,
        "{during} requests reached the 503 instance in 5 s: the doubling was bypassed"
    );
    assert_eq!(
        failed.load(Ordering::Relaxed),
        0,
        "every 503 was retried elsewhere"
    );
}
