//! Load-aware spill through the whole pipeline against loopback instances: while the preferred
//! cluster answers six times slower than the other, a bounded share of calls spills over and
//! `health()` says why; when it is fast again, calls return after the dwell time.

mod pipeline_support;

use std::time::Duration;

use federation_core::client::FederatedServiceClient;
use federation_core::config::{Policy, SpillPolicy, SpillSignal};
use federation_core::telemetry::SpillHealth;
use federation_testkit::instance::{Behavior, ServiceInstance};
use pipeline_support::{cluster, config, service, start};
use tokio::time::Instant;

fn delay_all(instances: &[ServiceInstance], ms: u64) {
    for i in instances {
        i.set_behavior(Behavior::delayed(Duration::from_millis(ms)));
    }
}

fn spill_health(client: &FederatedServiceClient) -> SpillHealth {
    let health = client.health();
    health.services[0].spill.clone().expect("spill configured")
}

/// Sends `n` calls; returns how many looma served.
async fn looma_share(client: &FederatedServiceClient, n: usize) -> f64 {
    let mut looma = 0;
    for _ in 0..n {
        let r = client.get("ai", "/x").send().await.expect("served");
        looma += usize::from(r.served().cluster() == "looma");
    }
    looma as f64 / n as f64
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_slow_preferred_cluster_spills_a_bounded_share_and_takes_it_back() {
    let z = start("zervigo", "ai", 2).await;
    let l = start("looma", "ai", 2).await;
    delay_all(&z, 20);
    delay_all(&l, 20);
    let mut svc = service("ai", &[("zervigo", "ai"), ("looma", "ai")], Some("zervigo"));
    svc.policy = Some(Policy {
        spill: Some(SpillPolicy {
            signal: SpillSignal::Latency,
            enter_factor: 2.0,
            exit_factor: 1.5,
            max_share: 0.5,
            min_dwell: Duration::from_millis(300),
        }),
        ..Policy::default()
    });
    let cfg = config(
        vec![cluster("zervigo", "ai", &z), cluster("looma", "ai", &l)],
        vec![svc],
    );
    let client = FederatedServiceClient::from_config(cfg).expect("valid config");
    // Both clusters equally fast: nothing spills (looma's latency is learned from pinned calls).
    for _ in 0..5 {
        client
            .get("ai", "/x")
            .cluster("looma")
            .send()
            .await
            .expect("pinned");
    }
    assert_eq!(looma_share(&client, 20).await, 0.0);
    let calm = spill_health(&client);
    assert_eq!(calm.share, 0.0);
    assert!(
        calm.reason.starts_with("not spilling: zervigo latency"),
        "{}",
        calm.reason
    );

    delay_all(&z, 120);
    let share = looma_share(&client, 60).await;
    assert!(
        (0.25..=0.75).contains(&share),
        "spilled share {share} with max_share 0.5"
    );
    let spilling = spill_health(&client);
    assert_eq!(
        (spilling.to.as_deref(), spilling.share),
        (Some("looma"), 0.5)
    );
    assert!(
        spilling.reason.starts_with("spilling 50 % to looma"),
        "{}",
        spilling.reason
    );

    // Fast again: the average falls below the exit factor, and after the dwell calls return.
    delay_all(&z, 20);
    let deadline = Instant::now() + Duration::from_secs(15);
    while spill_health(&client).share > 0.0 {
        assert!(
            Instant::now() < deadline,
            "still spilling: {:?}",
            spill_health(&client)
        );
        client.get("ai", "/x").send().await.expect("served");
    }
    assert_eq!(looma_share(&client, 20).await, 0.0);
}
