//! The sandbox starts both clusters, every instance is passing in its own Consul double, and
//! killing / reviving instances is visible in Consul.

use std::time::Duration;

use federation_testkit::sandbox::{Sandbox, SandboxOptions};
use serde_json::Value;

fn http() -> reqwest::Client {
    let _ = rustls::crypto::ring::default_provider().install_default();
    reqwest::Client::builder()
        .no_proxy()
        .timeout(Duration::from_secs(10))
        .build()
        .expect("client builds")
}

async fn health_entries(
    sandbox: &Sandbox,
    cluster: &str,
    service: &str,
    query: &str,
) -> Vec<Value> {
    let url = format!(
        "{}/v1/health/service/{service}{query}",
        sandbox.consul(cluster).url()
    );
    http()
        .get(url)
        .send()
        .await
        .expect("consul answers")
        .json()
        .await
        .expect("json array")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_instance_is_registered_and_passing_in_its_own_cluster() {
    let sandbox = Sandbox::start(SandboxOptions::default())
        .await
        .expect("sandbox starts");
    assert_eq!(sandbox.clusters(), ["zervigo", "looma"]);
    assert_eq!(sandbox.consul("zervigo").datacenter(), "zervigo-dc");
    assert_eq!(sandbox.consul("looma").datacenter(), "looma-dc");

    let c = http();
    for cluster in sandbox.clusters() {
        for service in sandbox.services(cluster) {
            let instances = sandbox.instances(cluster, service);
            let expected = if service == "ai-service" { 4 } else { 3 };
            assert_eq!(instances.len(), expected, "{cluster}/{service}");
            let entries = health_entries(&sandbox, cluster, service, "?passing").await;
            assert_eq!(entries.len(), expected, "{cluster}/{service} passing");
            for entry in &entries {
                assert_eq!(entry["Service"]["Address"], "127.0.0.1");
                assert_eq!(entry["Service"]["Service"], service);
                let port = entry["Service"]["Port"].as_u64().expect("port");
                assert!(instances.iter().any(|i| u64::from(i.port()) == port));
            }
            // Each instance answers with its identity.
            let body: Value = c
                .get(format!("{}/probe", instances[0].url()))
                .send()
                .await
                .expect("instance answers")
                .json()
                .await
                .expect("identity json");
            assert_eq!(body["cluster"], cluster);
            assert_eq!(body["service"], service);
        }
        // The other cluster's double knows nothing of this cluster's services.
        let other = if cluster == "zervigo" {
            "looma"
        } else {
            "zervigo"
        };
        let service = sandbox.services(cluster)[0];
        assert!(
            health_entries(&sandbox, other, service, "")
                .await
                .is_empty()
        );
    }
    sandbox.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn ai_instances_carry_model_tags() {
    let sandbox = Sandbox::start(SandboxOptions::default())
        .await
        .expect("sandbox starts");
    let v2 = health_entries(&sandbox, "looma", "ai-service", "?passing&tag=model%3Dv2").await;
    let v3 = health_entries(&sandbox, "looma", "ai-service", "?passing&tag=model%3Dv3").await;
    assert_eq!(v2.len(), 3);
    assert_eq!(v3.len(), 1);
    let ai = sandbox.instances("looma", "ai-service");
    assert_eq!(ai[3].identity().instance, "ai-service-v3-1");
    sandbox.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn killed_instances_turn_critical_and_revived_ones_pass_again() {
    let options = SandboxOptions::default()
        .instances_per_service(2)
        .check_interval(Duration::from_millis(100));
    let sandbox = Sandbox::start(options).await.expect("sandbox starts");
    sandbox.kill_all("zervigo", "user-service").await;
    assert!(
        sandbox
            .instances("zervigo", "user-service")
            .iter()
            .all(|i| !i.is_running())
    );
    sandbox
        .wait_for_passing("zervigo", "user-service", 0, Duration::from_secs(15))
        .await
        .expect("checks turn critical");
    assert_eq!(
        sandbox
            .passing("looma", "looma-user-api")
            .await
            .expect("looma answers"),
        2,
        "the other cluster is untouched"
    );
    sandbox
        .revive_all("zervigo", "user-service")
        .await
        .expect("instances restart");
    sandbox
        .wait_for_passing("zervigo", "user-service", 2, Duration::from_secs(15))
        .await
        .expect("checks pass again");
    sandbox.shutdown().await;
}

#[tokio::test]
async fn unknown_names_are_reported_not_ignored() {
    let sandbox = Sandbox::start(SandboxOptions::default().instances_per_service(1))
        .await
        .expect("sandbox starts");
    assert!(sandbox.try_consul("nowhere").is_none());
    assert!(sandbox.try_instances("zervigo", "user").is_none());
    let err = sandbox
        .passing("nowhere", "user-service")
        .await
        .expect_err("unknown cluster");
    assert!(err.to_string().contains("nowhere"));
    sandbox.shutdown().await;
}
