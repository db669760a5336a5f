//! Hedged requests against real loopback instances: a call whose first instance is slow is
//! answered by a hedge to another instance (the slow attempt is cancelled, its connection
//! closed, both attempts reported); a non-idempotent call is never hedged; a spent retry budget
//! sends no hedge; the hedge metrics count what happened.

mod pipeline_support;

use std::time::Duration;

use federation_core::client::{AttemptOutcome, FederatedServiceClient};
use federation_core::config::{HedgePolicy, LoadBalancing, Policy, RetryBudgetPolicy};
use federation_testkit::instance::{Behavior, ServiceInstance};
use pipeline_support::{cluster, config, eventually, service, start};
use tokio::time::Instant;

const SLOW: Duration = Duration::from_millis(400);

/// A client of `user` over `instances` (round robin, so calls alternate between them) with
/// hedging after 30 ms and the given retry budget.
fn client(instances: &[ServiceInstance], budget: RetryBudgetPolicy) -> FederatedServiceClient {
    let mut c = cluster("zervigo", "user-service", instances);
    c.load_balancing = LoadBalancing::RoundRobin;
    let mut s = service("user", &[("zervigo", "user-service")], None);
    let mut policy = Policy {
        hedge: Some(HedgePolicy {
            delay: Duration::from_millis(30),
            ..HedgePolicy::default()
        }),
        ..Policy::default()
    };
    policy.retry.budget = budget;
    s.policy = Some(policy);
    FederatedServiceClient::from_config(config(vec![c], vec![s])).expect("valid config")
}

/// The value of the metric line starting with `series` (0 when absent).
fn metric(client: &FederatedServiceClient, series: &str) -> u64 {
    client
        .metrics_text()
        .lines()
        .find_map(|l| l.strip_prefix(series)?.trim().parse().ok())
        .unwrap_or(0)
}

#[tokio::test]
async fn a_slow_instance_is_backed_up_by_a_hedge_that_wins() {
    let z = start("zervigo", "user-service", 2).await;
    z[0].set_behavior(Behavior::delayed(SLOW));
    let client = client(&z, RetryBudgetPolicy::default());
    let slow_id = z[0].identity().instance.clone();
    let mut hedged = 0;
    for _ in 0..6 {
        let started = Instant::now();
        let response = client.get("user", "/users/1").send().await.expect("answer");
        let took = started.elapsed();
        assert_eq!(response.status(), 200);
        let served = response.served();
        assert_ne!(served.instance(), slow_id, "the fast instance answers");
        assert!(took < SLOW, "answered before the slow instance: {took:?}");
        let attempts = served.attempts();
        if attempts.len() == 2 {
            hedged += 1;
            assert_eq!(attempts[0].instance(), slow_id);
            assert_eq!(attempts[0].outcome(), AttemptOutcome::Cancelled);
            assert!(!attempts[0].is_hedge());
            assert_eq!(attempts[1].outcome(), AttemptOutcome::Success);
            assert!(attempts[1].is_hedge());
            assert!(attempts[1].offset() >= Duration::from_millis(30));
        } else {
            assert_eq!(attempts.len(), 1, "{attempts:?}");
            assert!(!attempts[0].is_hedge());
        }
    }
    assert_eq!(
        hedged, 3,
        "round robin sends every other call to the slow instance first"
    );
    let won = "federation_hedges_won_total{service=\"user\"} ";
    let sent = "federation_hedges_total{service=\"user\"} ";
    assert_eq!(metric(&client, sent), 3);
    assert_eq!(metric(&client, won), 3);
    // The cancelled attempts' connections are closed, not returned to the pool.
    let closed = eventually(Duration::from_secs(3), || z[0].connections() == 0).await;
    assert!(closed, "{} connections left open", z[0].connections());
}

#[tokio::test]
async fn a_request_that_is_not_idempotent_is_never_hedged() {
    let z = start("zervigo", "user-service", 2).await;
    for i in &z {
        i.set_behavior(Behavior::delayed(Duration::from_millis(150)));
    }
    let client = client(&z, RetryBudgetPolicy::default());
    for _ in 0..2 {
        let response = client.post("user", "/orders").send().await.expect("answer");
        assert_eq!(response.served().attempts().len(), 1);
    }
    assert_eq!(z[0].requests() + z[1].requests(), 2, "each POST sent once");
    assert_eq!(
        metric(&client, "federation_hedges_total{service=\"user\"} "),
        0
    );
    // The same request marked idempotent is hedged.
    let response = client
        .post("user", "/orders")
        .idempotent(true)
        .send()
        .await
        .expect("answer");
    assert_eq!(response.served().attempts().len(), 2);
}

#[tokio::test]
async fn a_spent_retry_budget_sends_no_hedge() {
    let z = start("zervigo", "user-service", 2).await;
    z[0].set_behavior(Behavior::delayed(SLOW));
    let no_budget = RetryBudgetPolicy {
        percent: 0,
        min_per_second: 0,
        ..RetryBudgetPolicy::default()
    };
    let client = client(&z, no_budget);
    let mut slow_calls = 0;
    for _ in 0..4 {
        let started = Instant::now();
        let response = client.get("user", "/users/1").send().await.expect("answer");
        assert_eq!(
            response.served().attempts().len(),
            1,
            "no hedge without budget"
        );
        if started.elapsed() >= SLOW {
            slow_calls += 1;
        }
    }
    assert_eq!(slow_calls, 2, "the slow instance's calls waited for it");
    assert_eq!(z[1].requests(), 2);
    assert_eq!(
        metric(&client, "federation_hedges_total{service=\"user\"} "),
        0
    );
    let rejected = "federation_retry_budget_rejections_total{service=\"user\"} ";
    assert_eq!(metric(&client, rejected), 2);
}

/// The peak-EWMA latency estimate (ms) of instance `id`, from the client's health.
fn estimate_ms(client: &FederatedServiceClient, id: &str) -> f64 {
    let health = client.health();
    let instance = health
        .services
        .iter()
        .flat_map(|s| &s.clusters)
        .flat_map(|c| &c.instances)
        .find(|i| i.id == id);
    instance.expect("instance in health").ewma_ms
}

#[tokio::test]
async fn a_hedge_that_loses_to_the_first_attempt_leaves_its_instance_estimate_alone() {
    let z = start("zervigo", "user-service", 2).await;
    for i in &z {
        i.set_behavior(Behavior::delayed(Duration::from_millis(80)));
    }
    let client = client(&z, RetryBudgetPolicy::default());
    let response = client.get("user", "/users/1").send().await.expect("answer");
    let attempts = response.served().attempts();
    assert_eq!(attempts.len(), 2, "{attempts:?}");
    assert_eq!(attempts[0].outcome(), AttemptOutcome::Success);
    assert_eq!(attempts[1].outcome(), AttemptOutcome::Cancelled);
    assert!(attempts[1].is_hedge());
    // The hedge ran for ~50 ms and was dropped because the first attempt answered: no evidence
    // that its instance is slow, so it keeps the default 30 ms estimate (decaying), instead of
    // a doubled one that would steer the balancer away from a healthy instance.
    let first = estimate_ms(&client, attempts[0].instance());
    let hedge = estimate_ms(&client, attempts[1].instance());
    assert!(first >= 70.0, "the answer's 80 ms sample: {first} ms");
    assert!(hedge <= 30.0, "the losing hedge's instance: {hedge} ms");
}
