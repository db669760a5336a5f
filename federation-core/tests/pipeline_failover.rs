//! Instance and cluster failures under load, against real loopback instances: a killed instance
//! costs no failed call and few attempts and comes back after a restart; a 503 instance is
//! ejected; a dead preferred cluster fails over and traffic returns only after the dwell time;
//! with nothing available anywhere the call fails at once with per-cluster reasons.

mod pipeline_support;

use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use federation_core::client::{Attempt, AttemptOutcome, FederatedServiceClient};
use federation_core::config::Policy;
use federation_core::error::{ErrorKind, UnavailableReason};
use federation_testkit::instance::Behavior;
use pipeline_support::{cluster, config, eventually, service, start};

/// Every call's attempts, with when the call finished; failed calls counted apart.
#[derive(Default)]
struct Log {
    calls: Vec<(Instant, String, Vec<Attempt>)>,
    failures: Vec<String>,
}

/// Runs `workers` concurrent GET loops until `stop` is set.
fn stream(
    client: &FederatedServiceClient,
    service: &'static str,
    workers: usize,
    log: &Arc<Mutex<Log>>,
    stop: &Arc<std::sync::atomic::AtomicBool>,
) -> Vec<tokio::task::JoinHandle<()>> {
    (0..workers)
        .map(|_| {
            let (client, log, stop) = (client.clone(), Arc::clone(log), Arc::clone(stop));
            tokio::spawn(async move {
                while !stop.load(std::sync::atomic::Ordering::Relaxed) {
                    let result = client.get(service, "/work").send().await;
                    {
                        let mut log = log.lock().expect("log lock");
                        match result {
                            Ok(r) if r.status().is_success() => {
                                let served = r.served();
                                log.calls.push((
                                    Instant::now(),
                                    served.cluster().to_owned(),
                                    served.attempts().to_vec(),
                                ));
                            }
                            Ok(r) => log.failures.push(format!("status {}", r.status())),
                            Err(e) => log.failures.push(e.to_string()),
                        }
                    }
                    tokio::time::sleep(Duration::from_millis(2)).await;
                }
            })
        })
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_sequential_stream_sends_at_most_five_attempts_to_a_dead_instance() {
    let z = start("zervigo", "user-service", 3).await;
    let cfg = config(
        vec![cluster("zervigo", "user-service", &z)],
        vec![service("user", &[("zervigo", "user-service")], None)],
    );
    let client = FederatedServiceClient::from_config(cfg).expect("valid config");
    let log = Arc::new(Mutex::new(Log::default()));
    let stop = Arc::new(std::sync::atomic::AtomicBool::new(false));
    let workers = stream(&client, "user", 1, &log, &stop);
    tokio::time::sleep(Duration::from_millis(200)).await;
    let dead = z[0].identity().instance.clone();
    z[0].kill().await;
    // Long enough for dozens of calls, shorter than the first ejection period (1 s).
    tokio::time::sleep(Duration::from_millis(700)).await;
    stop.store(true, std::sync::atomic::Ordering::Relaxed);
    for w in workers {
        w.await.expect("worker");
    }
    let log = log.lock().expect("log lock");
    let dead_attempts = log
        .calls
        .iter()
        .flat_map(|(_, _, attempts)| attempts)
        .filter(|a| a.instance() == dead && a.outcome() == AttemptOutcome::ConnectFailed)
        .count();
    assert!(log.failures.is_empty(), "failed calls: {:?}", log.failures);
    assert!(log.calls.len() > 50, "a steady stream: {}", log.calls.len());
    assert!(
        (1..=5).contains(&dead_attempts),
        "dead instance got {dead_attempts} attempts"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn killing_one_of_three_fails_no_call_and_it_returns_after_restart() {
    let z = start("zervigo", "user-service", 3).await;
    let cfg = config(
        vec![cluster("zervigo", "user-service", &z)],
        vec![service("user", &[("zervigo", "user-service")], None)],
    );
    let client = FederatedServiceClient::from_config(cfg).expect("valid config");
    let log = Arc::new(Mutex::new(Log::default()));
    let stop = Arc::new(std::sync::atomic::AtomicBool::new(false));
    let workers = stream(&client, "user", 4, &log, &stop);

    tokio::time::sleep(Duration::from_millis(200)).await;
    let dead = z[0].identity().instance.clone();
    z[0].kill().await;
    let killed = Instant::now();
    // Dead for less than the first ejection period: only the attempts before ejection count.
    tokio::time::sleep(Duration::from_millis(700)).await;
    let dead_attempts = {
        let log = log.lock().expect("log lock");
        log.calls
            .iter()
            .flat_map(|(_, _, attempts)| attempts)
            // Requests in flight at the kill are reset (ConnectionLost): they were sent to a live
            // instance. Attempts sent to the dead one fail to connect.
            .filter(|a| a.instance() == dead && a.outcome() == AttemptOutcome::ConnectFailed)
            .count()
    };
    z[0].restart().await.expect("restart on the same port");
    let restarted = Instant::now();
    let before = z[0].requests();
    let back = eventually(Duration::from_secs(4), || z[0].requests() > before).await;
    let back_after = restarted.elapsed();
    stop.store(true, std::sync::atomic::Ordering::Relaxed);
    for w in workers {
        w.await.expect("worker");
    }
    let log = log.lock().expect("log lock");
    if !back || back_after > Duration::from_secs(2) || dead_attempts > 5 {
        for (at, _, attempts) in &log.calls {
            for a in attempts.iter().filter(|a| a.instance() == dead) {
                eprintln!(
                    "DBG {} {:?} {:?}",
                    at.duration_since(killed).as_millis(),
                    a.outcome(),
                    a.duration()
                );
            }
        }
        eprintln!("DBG restarted at {:?} after kill", restarted - killed);
    }
    assert!(log.failures.is_empty(), "failed calls: {:?}", log.failures);
    assert!(
        log.calls.len() > 100,
        "a steady stream: {} calls",
        log.calls.len()
    );
    assert!(dead_attempts >= 1, "the dead instance was tried");
    // The breaker admits no new attempt once its 5th consecutive failure is recorded; attempts
    // that 3 other workers had already been admitted at that instant can still land (a connect
    // refusal takes ~100 µs, so they overlap). A sequential stream gets at most 5 exactly (see
    // `a_sequential_stream_sends_at_most_five_attempts_to_a_dead_instance`).
    assert!(
        dead_attempts <= 5 + 3,
        "dead instance got {dead_attempts} attempts"
    );
    assert!(back, "restarted instance never served again");
    assert!(
        back_after <= Duration::from_secs(2),
        "back after {back_after:?}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_instance_answering_503_is_ejected_and_calls_keep_succeeding() {
    let z = start("zervigo", "user-service", 3).await;
    z[1].set_behavior(Behavior::status(503));
    let cfg = config(
        vec![cluster("zervigo", "user-service", &z)],
        vec![service("user", &[("zervigo", "user-service")], None)],
    );
    let client = FederatedServiceClient::from_config(cfg).expect("valid config");
    let started = Instant::now();
    let mut calls = 0;
    // Stay under the first ejection period (1 s) so no probe is counted.
    while calls < 200 && started.elapsed() < Duration::from_millis(800) {
        let response = client
            .get("user", "/x")
            .send()
            .await
            .expect("call succeeds");
        assert_eq!(response.status(), 200, "a healthy instance answered");
        calls += 1;
    }
    assert!(calls >= 20, "only {calls} calls");
    let hits = z[1].requests();
    assert!(
        (1..=5).contains(&hits),
        "503 instance received {hits} requests"
    );
}

fn failover_policy(dwell: Duration) -> Policy {
    let mut policy = Policy::default();
    policy.failover.dwell = dwell;
    policy
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn preferred_cluster_down_fails_over_and_returns_only_after_dwell() {
    let z = start("zervigo", "user-service", 2).await;
    let l = start("looma", "looma-user-api", 2).await;
    let mut svc = service(
        "user",
        &[("zervigo", "user-service"), ("looma", "looma-user-api")],
        Some("zervigo"),
    );
    let dwell = Duration::from_millis(1500);
    svc.policy = Some(failover_policy(dwell));
    let cfg = config(
        vec![
            cluster("zervigo", "user-service", &z),
            cluster("looma", "looma-user-api", &l),
        ],
        vec![svc],
    );
    let client = FederatedServiceClient::from_config(cfg).expect("valid config");
    let r = client.get("user", "/x").send().await.expect("call");
    assert_eq!(r.served().cluster(), "zervigo", "preferred cluster first");

    for i in &z {
        i.kill().await;
    }
    let log = Arc::new(Mutex::new(Log::default()));
    let stop = Arc::new(std::sync::atomic::AtomicBool::new(false));
    let workers = stream(&client, "user", 2, &log, &stop);
    tokio::time::sleep(Duration::from_millis(300)).await;
    {
        let log = log.lock().expect("log lock");
        let last = log.calls.last().expect("calls were made");
        assert_eq!(last.1, "looma", "the other cluster serves, and says so");
    }
    for i in &z {
        i.restart().await.expect("restart");
    }
    let restarted = Instant::now();
    let back = eventually(Duration::from_secs(8), || {
        let log = log.lock().expect("log lock");
        log.calls
            .iter()
            .rev()
            .take(5)
            .all(|(at, cluster, _)| *at > restarted && cluster == "zervigo")
    })
    .await;
    stop.store(true, std::sync::atomic::Ordering::Relaxed);
    for w in workers {
        w.await.expect("worker");
    }
    let log = log.lock().expect("log lock");
    assert!(log.failures.is_empty(), "failed calls: {:?}", log.failures);
    assert!(back, "traffic never returned to the preferred cluster");
    // Before the dwell elapsed only fail-back probes (one per ejected instance and period) may
    // reach the preferred cluster; after it, traffic returns.
    let early = log
        .calls
        .iter()
        .filter(|(at, cluster, _)| {
            *at > restarted && *at < restarted + dwell && cluster == "zervigo"
        })
        .count();
    assert!(
        early <= 4,
        "{early} calls served by zervigo before the dwell time"
    );
    let first_steady = log
        .calls
        .windows(3)
        .find(|w| w.iter().all(|(at, c, _)| *at > restarted && c == "zervigo"))
        .map(|w| w[0].0)
        .expect("steady zervigo traffic");
    assert!(
        first_steady >= restarted + dwell - Duration::from_millis(50),
        "returned after {:?}, dwell is {dwell:?}",
        first_steady - restarted
    );
}

#[tokio::test]
async fn nothing_available_anywhere_fails_fast_with_reasons() {
    let z = start("zervigo", "user-service", 2).await;
    let cfg = config(
        vec![
            cluster("zervigo", "user-service", &z),
            cluster("looma", "looma-user-api", &[]),
        ],
        vec![service(
            "user",
            &[("zervigo", "user-service"), ("looma", "looma-user-api")],
            Some("zervigo"),
        )],
    );
    let client = FederatedServiceClient::from_config(cfg).expect("valid config");
    for i in &z {
        i.kill().await;
    }
    // Eject everything: each call tries both dead instances.
    for _ in 0..10 {
        let err = client.get("user", "/x").send().await.expect_err("all down");
        if err.kind() == ErrorKind::NoHealthyInstance {
            break;
        }
    }
    let mut worst = Duration::ZERO;
    for _ in 0..100 {
        let started = Instant::now();
        let err = client.get("user", "/x").send().await.expect_err("all down");
        worst = worst.max(started.elapsed());
        assert_eq!(err.kind(), ErrorKind::NoHealthyInstance, "{err}");
        assert!(err.attempts().is_empty(), "nothing was sent");
        let reasons = err.unavailable();
        assert_eq!(reasons.len(), 2, "{err}");
        assert!(matches!(
            reasons
                .iter()
                .find(|r| r.cluster() == "zervigo")
                .map(|r| r.reason()),
            Some(UnavailableReason::AllEjected { ejected: 2 })
        ));
        assert!(matches!(
            reasons
                .iter()
                .find(|r| r.cluster() == "looma")
                .map(|r| r.reason()),
            Some(UnavailableReason::NoneDiscovered)
        ));
    }
    // Generous for a loaded debug build; the point is "no connect timeout" (≥ 1 s).
    assert!(
        worst < Duration::from_millis(50),
        "slowest fail-fast call took {worst:?}"
    );
}
