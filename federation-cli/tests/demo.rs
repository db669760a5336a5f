//! `federation demo --duration 20s --json`: the whole story in one run (the expensive test:
//! keep it the only demo run). The JSON must show the failover phase served by looma, the
//! fail-back to zervigo, and an overall success rate of at least 99.9 %; where redis-server is
//! installed, the shared-cache phase's figures (an L2 hit in the second process, the
//! invalidation received, no failed call while Redis is killed).

use std::process::Command;

#[test]
fn short_demo_fails_over_to_looma_and_keeps_success_above_threshold() {
    let out = Command::new(env!("CARGO_BIN_EXE_federation"))
        .args(["demo", "--duration", "20s", "--json", "--seed", "7"])
        .output()
        .expect("the federation binary runs");
    let stderr = String::from_utf8_lossy(&out.stderr);
    let doc: serde_json::Value = serde_json::from_slice(&out.stdout)
        .unwrap_or_else(|e| panic!("stdout is not JSON ({e}); stderr:\n{stderr}"));
    assert_eq!(
        out.status.code(),
        Some(0),
        "demo failed; stderr:\n{stderr}\n{doc:#}"
    );

    let overall = doc["overall"]["success_percent"]
        .as_f64()
        .expect("overall success");
    assert!(overall >= 99.9, "overall success {overall} < 99.9");
    assert_eq!(doc["passed"], true);
    assert!(
        doc["overall"]["calls"].as_u64().unwrap_or(0) > 500,
        "traffic was driven: {doc:#}"
    );

    let phase = |name: &str| {
        doc["phases"]
            .as_array()
            .and_then(|p| p.iter().find(|p| p["name"] == name))
            .unwrap_or_else(|| panic!("phase {name} missing"))
            .clone()
    };
    let failover = phase("failover");
    let looma = failover["services"]["user"]["cluster_share"]["looma"]
        .as_f64()
        .expect("user share of looma in failover");
    assert!(looma > 0.9, "failover phase user traffic on looma: {looma}");

    let steady = phase("steady");
    let zervigo = steady["services"]["user"]["cluster_share"]["zervigo"]
        .as_f64()
        .expect("user share of zervigo in steady");
    assert!(
        zervigo > 0.9,
        "steady user traffic prefers zervigo: {zervigo}"
    );

    let failback = phase("failback");
    let back = failback["recoveries"][0]["seconds"].as_f64();
    assert!(
        back.is_some(),
        "user traffic returned to zervigo: {failback:#}"
    );

    assert!(stderr.contains("failover"), "progress is shown on stderr");
    assert!(doc["timeline"].as_array().is_some_and(|t| t.len() >= 20));

    // The data sync phase runs where Java is (CI), and says how to enable it where it is not.
    let sync = &doc["sync"];
    if federation_testkit::kafka::java_available().is_ok() {
        assert_eq!(sync["ran"], true, "{sync:#}");
        assert_eq!(sync["passed"], true, "{sync:#}");
        assert_eq!(sync["zervigo_to_looma"], 20);
        assert_eq!(sync["looma_to_zervigo"], 10);
        assert_eq!(sync["concurrent_same_on_both"], true);
        assert_eq!(sync["restart_applied"], sync["restart_published"]);
    } else {
        assert!(
            sync["skipped"]
                .as_str()
                .is_some_and(|s| s.contains("Install Java")),
            "{sync:#}"
        );
    }

    // The shared-cache phase runs where redis-server is, and says how to enable it where not.
    let redis = &doc["redis"];
    if federation_testkit::redis::available() {
        assert_eq!(redis["ran"], true, "{redis:#}");
        assert_eq!(redis["passed"], true, "{redis:#}");
        assert_eq!(redis["first_call"], "miss", "{redis:#}");
        assert_eq!(redis["second_process_call"], "hit", "{redis:#}");
        assert!(
            redis["second_process_l2_hits"].as_u64() >= Some(1),
            "{redis:#}"
        );
        assert!(redis["invalidation_ms"].as_f64().is_some(), "{redis:#}");
        assert_eq!(redis["after_invalidation"], "miss", "{redis:#}");
        assert!(redis["calls_around_kill"].as_u64() > Some(50), "{redis:#}");
        assert_eq!(redis["failed_around_kill"], 0, "{redis:#}");
        assert_eq!(redis["degraded_seen"], true, "{redis:#}");
        assert!(stderr.contains("killing redis-server mid-traffic"));
    } else {
        assert!(
            redis["skipped"]
                .as_str()
                .is_some_and(|s| s.contains("apt-get install redis-server")),
            "{redis:#}"
        );
    }
}
