//! A cross-cluster failover is paid from the service's retry budget, like a retry.
//!
//! Failure this catches: failovers that bypass the budget. When a whole preferred cluster
//! fails, every call would then add a second request to the other cluster, doubling its load
//! exactly when it has to absorb the failed cluster's traffic; the budget exists to cap that
//! extra load. With a 25 % budget and no reserve, one call in four may fail over: the others
//! fail at once with `BudgetExhausted` although the other cluster is healthy.

mod pipeline_support;

use std::time::Duration;

use federation_core::client::{AttemptOutcome, FederatedServiceClient};
use federation_core::config::{Policy, RetryBudgetPolicy};
use federation_core::error::ErrorKind;
use pipeline_support::{cluster, config, service, start};

/// Breaker off (the dead cluster stays preferred, so every call starts there), two attempts,
/// and a budget of 25 % of calls without a per-second reserve over a window longer than the test.
fn policy() -> Policy {
    let mut policy = Policy::default();
    policy.breaker.consecutive_failures = 1_000_000;
    policy.breaker.failure_rate = None;
    policy.retry.max_attempts = 2;
    policy.retry.budget = RetryBudgetPolicy {
        percent: 25,
        min_per_second: 0,
        window: Duration::from_secs(120),
    };
    policy
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn failovers_spend_the_retry_budget_and_are_refused_when_it_is_spent() {
    let zervigo = start("zervigo", "user-service", 1).await;
    let looma = start("looma", "user-service", 1).await;
    zervigo[0].kill().await; // connections refused: nothing reached the server
    let mut user = service(
        "user",
        &[("zervigo", "user-service"), ("looma", "user-service")],
        Some("zervigo"),
    );
    user.policy = Some(policy());
    let cfg = config(
        vec![
            cluster("zervigo", "user-service", &zervigo),
            cluster("looma", "user-service", &looma),
        ],
        vec![user],
    );
    let client = FederatedServiceClient::from_config(cfg).expect("valid config");

    let mut failed_over = Vec::new();
    let mut refused = Vec::new();
    for call in 1..=40u32 {
        match client.get("user", "/work").send().await {
            Ok(response) => {
                let served = response.served();
                let attempts: Vec<_> = served
                    .attempts()
                    .iter()
                    .map(|a| (a.cluster().to_owned(), a.outcome()))
                    .collect();
                assert_eq!(served.cluster(), "looma", "call {call}: {attempts:?}");
                assert_eq!(attempts.len(), 2, "call {call}: {attempts:?}");
                assert_eq!(attempts[0].0, "zervigo", "call {call}: {attempts:?}");
                assert_eq!(attempts[1].1, AttemptOutcome::Success, "call {call}");
                failed_over.push(call);
            }
            Err(error) => {
                assert_eq!(
                    error.kind(),
                    ErrorKind::BudgetExhausted,
                    "call {call}: {error}"
                );
                assert_eq!(error.attempts().len(), 1, "call {call}: {error}");
                assert_eq!(error.attempts()[0].cluster(), "zervigo", "call {call}");
                refused.push(call);
            }
        }
    }
    // Call k deposits k; a failover needs one whole unit of 25 % of the deposits not yet spent.
    let every_fourth: Vec<u32> = (1..=10).map(|n| n * 4).collect();
    assert_eq!(failed_over, every_fourth, "refused: {refused:?}");
    assert_eq!(
        looma[0].requests(),
        10,
        "looma got exactly the paid failovers"
    );
    assert!(
        client
            .metrics_text()
            .contains("federation_retry_budget_rejections_total{service=\"user\"} 30\n"),
        "{}",
        client.metrics_text()
    );
}
