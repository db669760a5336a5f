//! The pipeline over Consul discovery: the two-cluster sandbox (one Consul double per
//! datacenter), affinity, name translation, tag routing, and failover when every instance of a
//! service dies in the preferred cluster.

use std::time::{Duration, Instant};

use federation_core::client::FederatedServiceClient;
use federation_core::error::ErrorKind;
use federation_testkit::sandbox::{Sandbox, SandboxOptions};

/// Calls `service` until it succeeds (discovery's first answer may still be on its way).
async fn first_success(
    client: &FederatedServiceClient,
    service: &str,
) -> federation_core::client::Response {
    let until = Instant::now() + Duration::from_secs(10);
    loop {
        match client.get(service, "/hello").send().await {
            Ok(r) => return r,
            Err(e) if Instant::now() < until => {
                assert_eq!(e.kind(), ErrorKind::NoHealthyInstance, "{e}");
                tokio::time::sleep(Duration::from_millis(20)).await;
            }
            Err(e) => panic!("{service} never became callable: {e}"),
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sandbox_routes_by_affinity_names_and_tags_and_fails_over() {
    let sandbox = Sandbox::start(SandboxOptions::default())
        .await
        .expect("sandbox starts");
    let client = FederatedServiceClient::from_config(sandbox.config()).expect("valid config");

    // Until zervigo's registry answers, looma may serve (startup is not a failover); then the
    // preferred cluster takes the traffic.
    let mut r = first_success(&client, "user").await;
    let until = Instant::now() + Duration::from_secs(5);
    while r.served().cluster() != "zervigo" && Instant::now() < until {
        tokio::time::sleep(Duration::from_millis(20)).await;
        r = client.get("user", "/hello").send().await.expect("call");
    }
    assert_eq!(r.served().cluster(), "zervigo", "user prefers zervigo");
    for _ in 0..10 {
        let r = client.get("user", "/hello").send().await.expect("call");
        assert_eq!(r.served().cluster(), "zervigo", "and stays there");
    }
    let body: serde_json::Value = r.json().expect("identity");
    assert_eq!(
        body["service"], "user-service",
        "translated to zervigo's Consul name"
    );

    let r = first_success(&client, "ai").await;
    assert_eq!(r.served().cluster(), "looma");
    let v3: Vec<String> = sandbox
        .instances("looma", "ai-service")
        .iter()
        .map(|i| i.identity().instance.clone())
        .collect();
    let r = client
        .get("ai", "/infer")
        .tags(["model=v3"])
        .send()
        .await
        .expect("v3 call");
    assert!(v3.contains(&r.served().instance().to_owned()));

    // Every zervigo user-service instance dies: calls keep succeeding from looma.
    sandbox.kill_all("zervigo", "user-service").await;
    let mut from_looma = 0;
    for _ in 0..50 {
        let r = client.get("user", "/hello").send().await.expect("failover");
        if r.served().cluster() == "looma" {
            from_looma += 1;
            let body: serde_json::Value = r.json().expect("identity");
            assert_eq!(body["service"], "looma-user-api");
        }
    }
    assert!(from_looma >= 45, "only {from_looma} of 50 calls from looma");

    // Once Consul marks them critical the reason is the registry's, still with no failed call.
    sandbox.kill_all("looma", "looma-user-api").await;
    let deadline = Instant::now() + Duration::from_secs(10);
    let err = loop {
        let err = client
            .get("user", "/hello")
            .send()
            .await
            .expect_err("all dead");
        if err.kind() == ErrorKind::NoHealthyInstance || Instant::now() > deadline {
            break err;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    };
    assert_eq!(err.kind(), ErrorKind::NoHealthyInstance, "{err}");
    assert_eq!(err.unavailable().len(), 2, "{err}");
    sandbox.shutdown().await;
}
