//! Each example's main logic against a fresh sandbox: the behaviour it narrates really happens.

use federation_core::client::CacheStatus;
use federation_examples::looma_user::{self, UserReport};
use federation_examples::setup::{Args, Federation};
use federation_examples::zervigo_ai::{self, AiReport, Model};

fn sandbox_args() -> Args {
    Args {
        config: None,
        sandbox: true,
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn looma_calls_user_fails_over_and_back() {
    let fed = Federation::start(&sandbox_args(), looma_user::sandbox_policies)
        .await
        .expect("sandbox starts");
    let mut out = Vec::new();
    let result = looma_user::run(&fed, &mut out).await;
    fed.shutdown().await;
    let log = String::from_utf8_lossy(&out);
    let report: UserReport = result.unwrap_or_else(|e| panic!("example failed: {e}\n{log}"));

    let step = |label: &str| {
        report
            .step(label)
            .unwrap_or_else(|| panic!("no step {label:?}\n{log}"))
    };
    let cold = step("profile lookup (cold)");
    assert_eq!(
        (cold.cluster.as_str(), cold.cache),
        ("zervigo", CacheStatus::Miss),
        "{log}"
    );
    assert_eq!(
        step("profile lookup (cached)").cache,
        CacheStatus::Hit,
        "{log}"
    );
    assert_eq!(step("profile lookup (cached)").attempts, 0, "{log}");
    for s in report
        .steps
        .iter()
        .filter(|s| s.label == "one zervigo instance dead")
    {
        assert_eq!(s.cluster, "zervigo", "{log}");
    }
    assert_eq!(step("zervigo down").cluster, "looma", "{log}");
    assert_eq!(step("zervigo down (again)").cluster, "looma", "{log}");
    assert_eq!(
        step("cached profile during outage").cache,
        CacheStatus::Hit,
        "{log}"
    );
    let known = step("zervigo down, Consul knows");
    assert_eq!(
        (known.cluster.as_str(), known.attempts),
        ("looma", 1),
        "{log}"
    );
    assert_eq!(
        report.steps.last().map(|s| s.cluster.as_str()),
        Some("zervigo"),
        "{log}"
    );
    assert!(report.recovered_after.is_some(), "{log}");
    assert!(log.contains("federation_failovers_total"), "{log}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn zervigo_calls_ai_routes_by_model_and_caches() {
    let fed = Federation::start(&sandbox_args(), |_| {})
        .await
        .expect("sandbox starts");
    let mut out = Vec::new();
    let result = zervigo_ai::run(&fed, &mut out).await;
    fed.shutdown().await;
    let log = String::from_utf8_lossy(&out);
    let report: AiReport = result.unwrap_or_else(|e| panic!("example failed: {e}\n{log}"));

    let step = |label: &str| {
        report
            .step(label)
            .unwrap_or_else(|| panic!("no step {label:?}\n{log}"))
    };
    let cold = step("v2 inference (cold)");
    assert_eq!(cold.cache, CacheStatus::Miss, "{log}");
    assert!(
        !cold.instance.contains("-v3-"),
        "v2 served by {}\n{log}",
        cold.instance
    );
    assert_eq!(
        step("v2 inference (cached)").cache,
        CacheStatus::Hit,
        "{log}"
    );
    let v3 = step("v3 inference");
    assert_eq!(v3.cache, CacheStatus::Miss, "{log}");
    assert!(
        v3.instance.contains("-v3-"),
        "v3 served by {}\n{log}",
        v3.instance
    );
    let dead = report
        .steps
        .iter()
        .filter(|s| s.label == "one v2 instance dead");
    assert_eq!(dead.count(), 3, "{log}");
    assert_eq!(report.fallback, Some(Model::V2), "{log}");
    let fallback = step("v3 wanted, none alive");
    assert!(!fallback.instance.contains("-v3-"), "{log}");
}
