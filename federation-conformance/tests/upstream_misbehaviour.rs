//! Upstream misbehaviour against real loopback instances: a response larger than the limit,
//! a malformed response head, a slow-drip body, a reset mid-body and a hang. With no other
//! instance each gives a clear error of the documented kind well before the deadline passes by
//! much; with a healthy second instance an idempotent GET is retried there and succeeds.

use std::time::{Duration, Instant};

use federation_core::client::FederatedServiceClient;
use federation_core::config::{Config, ConfigFormat};
use federation_core::error::ErrorKind;
use federation_testkit::instance::{Behavior, Identity, Mode, ServiceInstance};
use serde_json::json;

const DEADLINE: Duration = Duration::from_millis(1500);

async fn instances(n: usize) -> Vec<ServiceInstance> {
    let mut out = Vec::new();
    for i in 0..n {
        let id = Identity::new("zervigo", "user-service", format!("user-service-{i}"));
        out.push(ServiceInstance::start(id).await.expect("instance starts"));
    }
    out
}

fn client(instances: &[ServiceInstance]) -> FederatedServiceClient {
    let list: Vec<_> = instances
        .iter()
        .map(|i| json!({ "id": i.identity().instance, "address": "127.0.0.1", "port": i.port() }))
        .collect();
    let config = json!({
        "clusters": { "zervigo": { "static": { "user-service": list }, "load_balancing": "round_robin" } },
        "services": { "user": { "names": { "zervigo": "user-service" } } },
        "defaults": {
            "timeout": { "attempt": "400ms", "total": "1500ms" },
            "limits": { "max_response_bytes": "64KiB" },
            "breaker": { "consecutive_failures": 1000, "failure_rate": false }
        }
    });
    let config = Config::parse(&config.to_string(), ConfigFormat::Json).expect("valid config");
    FederatedServiceClient::from_config(config).expect("client builds")
}

fn modes() -> Vec<(&'static str, Mode, &'static [ErrorKind])> {
    vec![
        (
            "oversized",
            Mode::Oversized { bytes: 20_000_000 },
            &[ErrorKind::Transport],
        ),
        (
            "malformed headers",
            Mode::MalformedHeaders,
            &[ErrorKind::Transport],
        ),
        (
            "reset mid-body",
            Mode::ResetMidBody,
            &[ErrorKind::Transport],
        ),
        (
            "slow drip",
            Mode::SlowDrip {
                chunk_delay: Duration::from_millis(300),
            },
            &[ErrorKind::Timeout],
        ),
        ("hang", Mode::Hang, &[ErrorKind::Timeout]),
    ]
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn alone_each_misbehaviour_is_a_clear_error_within_the_deadline() {
    for (name, mode, kinds) in modes() {
        let only = instances(1).await;
        only[0].set_behavior(Behavior::mode(mode));
        let client = client(&only);
        let started = Instant::now();
        let result = client.get("user", "/work").send().await;
        let took = started.elapsed();
        let error = result.expect_err(name);
        assert!(
            kinds.contains(&error.kind()),
            "{name}: kind {:?} ({error})",
            error.kind()
        );
        assert!(!error.to_string().is_empty(), "{name}: a message");
        assert!(
            took < DEADLINE + Duration::from_millis(500),
            "{name}: returned after {took:?}, deadline {DEADLINE:?}"
        );
        only[0].kill().await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_oversized_body_names_the_limit() {
    let only = instances(1).await;
    only[0].set_behavior(Behavior::mode(Mode::Oversized { bytes: 1_000_000 }));
    let error = client(&only)
        .get("user", "/work")
        .send()
        .await
        .expect_err("over the limit");
    assert!(
        error.to_string().contains("65536"),
        "the limit is named: {error}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn beside_a_healthy_instance_a_get_is_retried_and_succeeds() {
    for (name, mode, _) in modes() {
        if name == "oversized" {
            // A complete, deterministic answer that is too large is final, not retried.
            continue;
        }
        let pair = instances(2).await;
        pair[0].set_behavior(Behavior::mode(mode));
        let client = client(&pair);
        for n in 0..4 {
            let started = Instant::now();
            let response = client
                .get("user", "/work")
                .send()
                .await
                .unwrap_or_else(|e| panic!("{name}, call {n}: {e}"));
            assert!(
                response.status().is_success(),
                "{name}: {}",
                response.status()
            );
            assert_eq!(response.served().instance(), "user-service-1", "{name}");
            assert!(
                started.elapsed() < DEADLINE + Duration::from_millis(500),
                "{name}"
            );
        }
        for i in &pair {
            i.kill().await;
        }
    }
}
