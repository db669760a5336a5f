//! Retry safety and bounds against real loopback instances: a non-idempotent request that may
//! have reached the server is not retried (and the error says so), one refused at connect is;
//! the retry budget bounds upstream load under total failure; the total deadline ends the call
//! on time; `Retry-After` beyond the deadline stops retries; every attempt of a call carries
//! the caller's headers and the call's one `traceparent`.

mod pipeline_support;

use std::net::TcpListener;
use std::time::{Duration, Instant};

use federation_core::client::{AttemptOutcome, FederatedServiceClient};
use federation_core::config::{LoadBalancing, Policy, RetryBudgetPolicy, StaticInstance};
use federation_core::error::ErrorKind;
use federation_testkit::instance::{Behavior, Mode};
use pipeline_support::{cluster, cluster_with, config, entry, service, start};

/// A loopback port with nothing listening (connections are refused).
fn dead_entry(id: &str) -> StaticInstance {
    let listener = TcpListener::bind("127.0.0.1:0").expect("bind");
    let port = listener.local_addr().expect("addr").port();
    drop(listener);
    StaticInstance {
        id: Some(id.to_owned()),
        address: "127.0.0.1".to_owned(),
        port,
        tags: Vec::new(),
        meta: Default::default(),
        weight: 1,
    }
}

#[tokio::test]
async fn post_that_may_have_reached_the_server_is_not_retried() {
    let z = start("zervigo", "user-service", 2).await;
    for i in &z {
        i.set_behavior(Behavior::mode(Mode::ResetAfterRequest));
    }
    let cfg = config(
        vec![cluster("zervigo", "user-service", &z)],
        vec![service("user", &[("zervigo", "user-service")], None)],
    );
    let client = FederatedServiceClient::from_config(cfg).expect("valid config");
    let err = client
        .post("user", "/orders")
        .json(&serde_json::json!({"item": 1}))
        .send()
        .await
        .expect_err("connection reset");
    assert_eq!(err.kind(), ErrorKind::Transport);
    assert_eq!(err.attempts().len(), 1, "not retried: {err}");
    assert_eq!(err.attempts()[0].outcome(), AttemptOutcome::ConnectionLost);
    assert!(err.may_have_reached_server());
    let text = err.to_string();
    assert!(
        text.contains("not retried") && text.contains("not idempotent"),
        "{text}"
    );
    assert_eq!(
        z[0].requests() + z[1].requests(),
        1,
        "the server saw it once"
    );

    // The same request marked idempotent is retried on the other instance.
    let err = client
        .post("user", "/orders")
        .idempotent(true)
        .send()
        .await
        .expect_err("both instances reset");
    assert!(err.attempts().len() >= 2, "retried: {err}");
}

#[tokio::test]
async fn post_refused_at_connect_is_retried_elsewhere() {
    let z = start("zervigo", "user-service", 1).await;
    let mut c = cluster_with(
        "zervigo",
        "user-service",
        vec![dead_entry("dead"), entry(&z[0])],
    );
    c.load_balancing = LoadBalancing::RoundRobin;
    let cfg = config(
        vec![c],
        vec![service("user", &[("zervigo", "user-service")], None)],
    );
    let client = FederatedServiceClient::from_config(cfg).expect("valid config");
    let mut saw_retry = false;
    for _ in 0..4 {
        let response = client
            .post("user", "/orders")
            .send()
            .await
            .expect("POST succeeds");
        assert_eq!(response.status(), 200);
        let attempts = response.served().attempts();
        if attempts.len() == 2 {
            assert_eq!(attempts[0].instance(), "dead");
            assert_eq!(attempts[0].outcome(), AttemptOutcome::ConnectFailed);
            assert_eq!(attempts[1].outcome(), AttemptOutcome::Success);
            saw_retry = true;
        }
    }
    assert!(
        saw_retry,
        "round robin sent a POST to the dead instance first"
    );
    assert_eq!(z[0].requests(), 4);
}

fn no_breaker_policy(budget: RetryBudgetPolicy) -> Policy {
    let mut policy = Policy::default();
    policy.breaker.consecutive_failures = 1_000_000;
    policy.breaker.failure_rate = None;
    policy.retry.budget = budget;
    policy
}

#[tokio::test]
async fn retry_budget_bounds_upstream_attempts_under_total_failure() {
    let z = start("zervigo", "user-service", 3).await;
    for i in &z {
        i.set_behavior(Behavior::status(503));
    }
    let budget = RetryBudgetPolicy {
        percent: 20,
        min_per_second: 1,
        window: Duration::from_secs(10),
    };
    let mut svc = service("user", &[("zervigo", "user-service")], None);
    svc.policy = Some(no_breaker_policy(budget.clone()));
    let mut dead = service("dead", &[("looma", "gone")], None);
    dead.policy = Some(no_breaker_policy(budget));
    let cfg = config(
        vec![
            cluster("zervigo", "user-service", &z),
            cluster_with("looma", "gone", vec![dead_entry("d1"), dead_entry("d2")]),
        ],
        vec![svc, dead],
    );
    let client = FederatedServiceClient::from_config(cfg).expect("valid config");
    let calls = 200u64;
    for _ in 0..calls {
        let response = client
            .get("user", "/x")
            .send()
            .await
            .expect("a 503 is a response");
        assert_eq!(response.status(), 503);
    }
    let upstream: u64 = z.iter().map(|i| i.requests()).sum();
    // calls + 20 % of calls + reserve (1/s × 10 s); without a budget it would be 3 × calls.
    let bound = calls + calls / 5 + 10;
    assert!(upstream >= calls, "every call made an attempt");
    assert!(
        upstream <= bound,
        "{upstream} upstream attempts for {calls} calls (bound {bound})"
    );

    let mut exhausted = 0;
    for _ in 0..50 {
        let err = client.get("dead", "/x").send().await.expect_err("refused");
        if err.kind() == ErrorKind::BudgetExhausted {
            exhausted += 1;
        }
    }
    assert!(exhausted > 0, "the budget ran out and said so");
}

#[tokio::test]
async fn total_deadline_ends_the_call_on_time() {
    let z = start("zervigo", "user-service", 2).await;
    for i in &z {
        i.set_behavior(Behavior::delayed(Duration::from_secs(3)));
    }
    let cfg = config(
        vec![cluster("zervigo", "user-service", &z)],
        vec![service("user", &[("zervigo", "user-service")], None)],
    );
    let client = FederatedServiceClient::from_config(cfg).expect("valid config");
    let started = Instant::now();
    let err = client
        .get("user", "/slow")
        .timeout(Duration::from_millis(300))
        .send()
        .await
        .expect_err("slow instances");
    let took = started.elapsed();
    assert_eq!(err.kind(), ErrorKind::Timeout, "{err}");
    assert!(
        took >= Duration::from_millis(290),
        "returned early: {took:?}"
    );
    // The per-attempt timeout is 1 s: anything well below shows the total deadline won.
    assert!(took < Duration::from_millis(900), "took {took:?}");
    assert_eq!(
        err.attempts().last().map(|a| a.outcome()),
        Some(AttemptOutcome::Timeout)
    );

    // Per-attempt timeouts are retried within the total deadline.
    let err = client
        .get("user", "/slow")
        .attempt_timeout(Duration::from_millis(100))
        .timeout(Duration::from_secs(2))
        .send()
        .await
        .expect_err("slow instances");
    assert_eq!(err.kind(), ErrorKind::Timeout);
    assert!(err.attempts().len() >= 2, "{err}");
}

#[tokio::test]
async fn retry_after_beyond_the_deadline_stops_retries() {
    let z = start("zervigo", "user-service", 1).await;
    let cfg = config(
        vec![cluster("zervigo", "user-service", &z)],
        vec![service("user", &[("zervigo", "user-service")], None)],
    );
    let client = FederatedServiceClient::from_config(cfg).expect("valid config");
    z[0].set_behavior(Behavior {
        status: Some(429),
        retry_after: Some("10".to_owned()),
        ..Behavior::default()
    });
    let response = client
        .get("user", "/x")
        .send()
        .await
        .expect("429 is a response");
    assert_eq!(response.status(), 429);
    assert_eq!(
        response.served().attempts().len(),
        1,
        "Retry-After exceeds the 3 s deadline"
    );

    z[0].set_behavior(Behavior {
        status: Some(429),
        retry_after: Some("0".to_owned()),
        ..Behavior::default()
    });
    let response = client
        .get("user", "/x")
        .send()
        .await
        .expect("429 is a response");
    assert_eq!(
        response.served().attempts().len(),
        3,
        "retried up to max_attempts"
    );
}

#[tokio::test]
async fn a_timed_out_post_says_it_was_not_retried() {
    let z = start("zervigo", "user-service", 2).await;
    for i in &z {
        i.set_behavior(Behavior::delayed(Duration::from_millis(800)));
    }
    let cfg = config(
        vec![cluster("zervigo", "user-service", &z)],
        vec![service("user", &[("zervigo", "user-service")], None)],
    );
    let client = FederatedServiceClient::from_config(cfg).expect("valid config");
    let err = client
        .post("user", "/orders")
        .attempt_timeout(Duration::from_millis(100))
        .timeout(Duration::from_secs(5))
        .send()
        .await
        .expect_err("the attempt times out");
    assert_eq!(err.kind(), ErrorKind::Timeout);
    assert_eq!(err.attempts().len(), 1, "not retried: {err}");
    assert_eq!(err.attempts()[0].outcome(), AttemptOutcome::Timeout);
    let text = err.to_string();
    assert!(
        text.contains("not retried") && text.contains("not idempotent"),
        "{text}"
    );

    // An idempotent request is retried after the same timeout, and says nothing of the kind.
    let err = client
        .get("user", "/orders")
        .attempt_timeout(Duration::from_millis(100))
        .timeout(Duration::from_secs(5))
        .send()
        .await
        .expect_err("every attempt times out");
    assert!(err.attempts().len() >= 2, "retried: {err}");
    assert!(!err.to_string().contains("not retried"), "{err}");
}

#[tokio::test]
async fn every_attempt_carries_the_callers_headers_and_the_calls_one_traceparent() {
    let z = start("zervigo", "user-service", 2).await;
    for i in &z {
        i.set_behavior(Behavior::status(503));
        i.set_recording(true);
    }
    let cfg = config(
        vec![cluster("zervigo", "user-service", &z)],
        vec![service("user", &[("zervigo", "user-service")], None)],
    );
    let client = FederatedServiceClient::from_config(cfg).expect("valid config");
    let incoming = "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01";
    let response = client
        .get("user", "/t")
        .header("x-caller", "kept")
        .header("traceparent", incoming)
        .send()
        .await
        .expect("a 503 is a response");
    assert_eq!(response.status(), 503);
    let attempts = response.served().attempts().len();
    assert!(attempts >= 2, "retried: {attempts} attempts");
    let recorded: Vec<_> = z.iter().flat_map(|i| i.recorded()).collect();
    assert_eq!(recorded.len(), attempts, "one request per attempt");
    let first = recorded[0].header("traceparent").expect("traceparent");
    assert!(
        first.starts_with("00-4bf92f3577b34da6a3ce929d0e0e4736-") && first != incoming,
        "the incoming trace continued with a new parent id: {first}"
    );
    for r in &recorded {
        assert_eq!(
            r.header("x-caller"),
            Some("kept"),
            "a retry keeps the caller's headers"
        );
        assert_eq!(
            r.header("traceparent"),
            Some(first),
            "one traceparent per call"
        );
        assert!(r.header("x-federation-deadline-ms").is_some());
    }
}
