//! Load balancing through the whole pipeline: peak-EWMA steers traffic away from a slow
//! instance; a per-call tag override picks a model version.

mod pipeline_support;

use std::time::Duration;

use federation_core::client::FederatedServiceClient;
use federation_core::error::ErrorKind;
use federation_testkit::instance::{Behavior, Latency};
use pipeline_support::{cluster_with, config, entry, service, start};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn peak_ewma_sends_little_traffic_to_a_ten_times_slower_instance() {
    let z = start("zervigo", "user-service", 3).await;
    z[0].set_behavior(Behavior {
        latency: Latency::Fixed(Duration::from_millis(100)),
        ..Behavior::default()
    });
    for i in &z[1..] {
        i.set_behavior(Behavior {
            latency: Latency::Fixed(Duration::from_millis(10)),
            ..Behavior::default()
        });
    }
    let cfg = config(
        vec![cluster_with(
            "zervigo",
            "user-service",
            z.iter().map(entry).collect(),
        )],
        vec![service("user", &[("zervigo", "user-service")], None)],
    );
    let client = FederatedServiceClient::builder()
        .config(cfg)
        .seed(7)
        .build()
        .expect("valid config");
    let calls = 200;
    for _ in 0..calls {
        client
            .get("user", "/x")
            .send()
            .await
            .expect("call succeeds");
    }
    let slow = z[0].requests();
    assert!(
        slow * 10 < calls,
        "slow instance got {slow} of {calls} calls"
    );
}

#[tokio::test]
async fn tag_override_selects_instances_per_call() {
    let z = start("looma", "ai-service", 2).await;
    let mut v2 = entry(&z[0]);
    v2.tags = vec!["model=v2".to_owned()];
    let mut v3 = entry(&z[1]);
    v3.tags = vec!["model=v3".to_owned()];
    let mut svc = service("ai", &[("looma", "ai-service")], None);
    svc.tags = vec!["model=v2".to_owned()];
    let cfg = config(
        vec![cluster_with("looma", "ai-service", vec![v2, v3])],
        vec![svc],
    );
    let client = FederatedServiceClient::from_config(cfg).expect("valid config");
    for _ in 0..5 {
        let r = client
            .get("ai", "/infer")
            .send()
            .await
            .expect("default tags");
        assert_eq!(r.served().instance(), z[0].identity().instance);
        let r = client
            .get("ai", "/infer")
            .tags(["model=v3"])
            .send()
            .await
            .expect("override");
        assert_eq!(r.served().instance(), z[1].identity().instance);
    }
    let err = client
        .get("ai", "/infer")
        .tags(["model=v9"])
        .send()
        .await
        .expect_err("no such model");
    assert_eq!(err.kind(), ErrorKind::NoHealthyInstance);
    assert!(err.to_string().contains("looma"), "{err}");
}
