//! End to end against real loopback instances: a call is served and says how, headers reach the
//! instance (deadline, trace context, Host, cluster defaults, caller's Authorization), bad input fails
//! before any network activity, oversized bodies are refused, load protection fails fast.

mod pipeline_support;

use std::time::Duration;

use federation_core::client::{AttemptOutcome, CacheStatus, FederatedServiceClient, Request};
use federation_core::config::{DefaultHeader, HeaderValueSource, RateLimitPolicy, Secret};
use federation_core::error::ErrorKind;
use federation_testkit::instance::{Behavior, Latency};
use http::Method;
use pipeline_support::{cluster, config, service, start};

#[tokio::test]
async fn get_is_served_and_reports_where() {
    let z = start("zervigo", "user-service", 2).await;
    let cfg = config(
        vec![cluster("zervigo", "user-service", &z)],
        vec![service("user", &[("zervigo", "user-service")], None)],
    );
    let client = FederatedServiceClient::from_config(cfg).expect("valid config");
    let response = client
        .get("user", "/api/v1/users/42")
        .query(&[("q", "a b&c")])
        .send()
        .await
        .expect("call succeeds");
    assert_eq!(response.status(), 200);
    let body: serde_json::Value = response.json().expect("identity JSON");
    assert_eq!(body["path"], "/api/v1/users/42");
    assert_eq!(body["query"], "q=a%20b%26c");
    let served = response.served();
    assert_eq!(served.cluster(), "zervigo");
    assert_eq!(body["instance"], served.instance());
    assert_eq!(served.attempts().len(), 1);
    assert_eq!(served.attempts()[0].outcome(), AttemptOutcome::Success);
    assert_eq!(served.cache(), CacheStatus::Bypass);
    assert!(served.elapsed() >= served.attempts()[0].duration());
}

#[tokio::test]
async fn headers_are_propagated_and_defaults_never_override_the_caller() {
    let z = start("zervigo", "user-service", 1).await;
    z[0].set_recording(true);
    let mut c = cluster("zervigo", "user-service", &z);
    // Cargo sets CARGO_PKG_NAME for test processes (tests cannot set variables: no unsafe).
    c.headers = vec![
        DefaultHeader {
            name: "authorization".into(),
            value: HeaderValueSource::Value(Secret::new("Bearer cluster-default")),
        },
        DefaultHeader {
            name: "x-from-env".into(),
            value: HeaderValueSource::Env("CARGO_PKG_NAME".into()),
        },
    ];
    let cfg = config(
        vec![c],
        vec![service("user", &[("zervigo", "user-service")], None)],
    );
    let client = FederatedServiceClient::from_config(cfg).expect("valid config");

    // No Authorization from the caller: the cluster default is sent.
    client.get("user", "/a").send().await.expect("call a");
    // The caller's Authorization passes through; an incoming deadline shortens ours; an
    // incoming trace is continued.
    let incoming = "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01";
    client
        .get("user", "/b")
        .header("host", "users.internal")
        .header("authorization", "Bearer caller")
        .header("x-federation-deadline-ms", "700")
        .header("traceparent", incoming)
        .send()
        .await
        .expect("call b");

    let recorded = z[0].recorded();
    let a = recorded
        .iter()
        .find(|r| r.path == "/a")
        .expect("a recorded");
    let b = recorded
        .iter()
        .find(|r| r.path == "/b")
        .expect("b recorded");
    assert_eq!(a.header("authorization"), Some("Bearer cluster-default"));
    assert_eq!(a.header("x-from-env"), Some("federation-core"));
    let deadline_a: u64 = a
        .header("x-federation-deadline-ms")
        .expect("deadline")
        .parse()
        .expect("ms");
    assert!(
        deadline_a > 2_000 && deadline_a <= 3_000,
        "default total is 3 s: {deadline_a}"
    );
    let trace_a = a.header("traceparent").expect("generated traceparent");
    assert_eq!(trace_a.len(), 55, "{trace_a}");
    // Host names the instance (address and port), unless the caller set one.
    let instance_host = format!("127.0.0.1:{}", z[0].port());
    assert_eq!(a.header("host"), Some(instance_host.as_str()));
    assert_eq!(b.header("host"), Some("users.internal"));

    assert_eq!(b.header("authorization"), Some("Bearer caller"));
    let deadline_b: u64 = b
        .header("x-federation-deadline-ms")
        .expect("deadline")
        .parse()
        .expect("ms");
    assert!(
        deadline_b <= 700,
        "incoming deadline honoured: {deadline_b}"
    );
    let trace_b = b.header("traceparent").expect("traceparent");
    assert!(
        trace_b.starts_with("00-4bf92f3577b34da6a3ce929d0e0e4736-"),
        "{trace_b}"
    );
    assert_ne!(trace_b, incoming, "a new parent id");
}

#[tokio::test]
async fn bad_input_fails_before_any_network_activity() {
    let z = start("zervigo", "user-service", 1).await;
    let cfg = config(
        vec![cluster("zervigo", "user-service", &z)],
        vec![service("user", &[("zervigo", "user-service")], None)],
    );
    let client = FederatedServiceClient::from_config(cfg).expect("valid config");
    let cases = [
        client.get("nope", "/x").send().await,
        client.get("user", "no-slash").send().await,
        client.get("user", "/a b").send().await,
        client
            .get("user", "/x")
            .header("bad header", "v")
            .send()
            .await,
        client
            .get("user", "/x")
            .header("x-ok", "line\nbreak")
            .send()
            .await,
        client.get("user", "/x").cluster("mars").send().await,
    ];
    for (i, result) in cases.into_iter().enumerate() {
        let err = result.expect_err("invalid input is rejected");
        assert_eq!(err.kind(), ErrorKind::InvalidRequest, "case {i}: {err}");
        assert!(err.attempts().is_empty());
    }
    let err = Request::try_new("BAD METHOD", "/x").expect_err("invalid method");
    assert_eq!(err.kind(), ErrorKind::InvalidRequest);
    assert_eq!(z[0].requests(), 0, "nothing reached the instance");
}

#[tokio::test]
async fn oversized_bodies_are_refused_and_error_for_status_works() {
    let z = start("zervigo", "user-service", 1).await;
    let mut svc = service("user", &[("zervigo", "user-service")], None);
    let mut policy = federation_core::config::Policy::default();
    policy.limits.max_response_bytes = 4096;
    svc.policy = Some(policy);
    let cfg = config(vec![cluster("zervigo", "user-service", &z)], vec![svc]);
    let client = FederatedServiceClient::from_config(cfg).expect("valid config");

    z[0].set_behavior(Behavior {
        body_size: Some(64 * 1024),
        ..Behavior::default()
    });
    let err = client
        .get("user", "/big")
        .send()
        .await
        .expect_err("too large");
    assert_eq!(err.kind(), ErrorKind::Transport);
    assert!(err.to_string().contains("4096"), "{err}");
    assert_eq!(err.attempts().len(), 1, "not retried");

    z[0].set_behavior(Behavior::status(404));
    let response = client
        .get("user", "/missing")
        .send()
        .await
        .expect("a 404 is a response");
    assert_eq!(response.status(), 404);
    let err = response
        .error_for_status()
        .expect_err("404 becomes an error");
    assert_eq!(err.status(), Some(http::StatusCode::NOT_FOUND));
}

#[tokio::test]
async fn bulkhead_and_rate_limit_fail_fast_with_overloaded() {
    let z = start("zervigo", "user-service", 1).await;
    z[0].set_behavior(Behavior {
        latency: Latency::Fixed(Duration::from_millis(700)),
        ..Behavior::default()
    });
    let mut limited = service("slow", &[("zervigo", "user-service")], None);
    let mut policy = federation_core::config::Policy::default();
    policy.limits.max_concurrent = Some(1);
    limited.policy = Some(policy);
    let mut rated = service("rated", &[("zervigo", "user-service")], None);
    let mut policy = federation_core::config::Policy::default();
    policy.limits.rate_limit = Some(RateLimitPolicy {
        per_second: 1.0,
        burst: 1,
    });
    rated.policy = Some(policy);
    let cfg = config(
        vec![cluster("zervigo", "user-service", &z)],
        vec![limited, rated],
    );
    let client = FederatedServiceClient::from_config(cfg).expect("valid config");

    let first = tokio::spawn({
        let client = client.clone();
        async move { client.get("slow", "/1").send().await }
    });
    // The first call holds the only permit once the upstream has its request (and answers it
    // 700 ms later; attempts time out after 1 s).
    assert!(
        pipeline_support::eventually(Duration::from_secs(10), || z[0].requests_for("/1") == 1)
            .await,
        "the first call never reached the upstream"
    );
    let started = std::time::Instant::now();
    let err = client
        .get("slow", "/2")
        .send()
        .await
        .expect_err("bulkhead full");
    assert_eq!(err.kind(), ErrorKind::Overloaded);
    assert!(started.elapsed() < Duration::from_millis(100), "fails fast");
    first.await.expect("join").expect("the first call succeeds");

    z[0].set_behavior(Behavior::ok());
    client
        .get("rated", "/1")
        .send()
        .await
        .expect("within the rate");
    let err = client
        .get("rated", "/2")
        .send()
        .await
        .expect_err("rate exceeded");
    assert_eq!(err.kind(), ErrorKind::Overloaded);
}

#[tokio::test]
async fn call_with_a_request_value_and_method_text() {
    let z = start("zervigo", "user-service", 1).await;
    let cfg = config(
        vec![cluster("zervigo", "user-service", &z)],
        vec![service("user", &[("zervigo", "user-service")], None)],
    );
    let client = FederatedServiceClient::from_config(cfg).expect("valid config");
    let mut request = Request::try_new("PUT", "/items/1").expect("valid method");
    request.set_body("payload");
    assert!(request.is_idempotent());
    let response = client.call("user", request).await.expect("call succeeds");
    let body: serde_json::Value = response.json().expect("json");
    assert_eq!(body["method"], "PUT");
    assert_eq!(body["body_len"], 7);
    assert!(!Request::new(Method::POST, "/").is_idempotent());
}

#[tokio::test]
async fn an_invalid_incoming_deadline_is_an_invalid_request() {
    let z = start("zervigo", "user-service", 1).await;
    let cfg = config(
        vec![cluster("zervigo", "user-service", &z)],
        vec![service("user", &[("zervigo", "user-service")], None)],
    );
    let client = FederatedServiceClient::from_config(cfg).expect("valid config");
    for bad in ["soon", "-5", "1.5", ""] {
        let err = client
            .get("user", "/x")
            .header("x-federation-deadline-ms", bad)
            .send()
            .await
            .expect_err("invalid deadline header");
        assert_eq!(err.kind(), ErrorKind::InvalidRequest, "{bad:?}: {err}");
        let text = err.to_string();
        assert!(
            text.contains("x-federation-deadline-ms") && text.contains(&format!("{bad:?}")),
            "names the header and the value: {text}"
        );
    }
    assert_eq!(z[0].requests(), 0, "nothing was sent");
    let ok = client
        .get("user", "/x")
        .header("x-federation-deadline-ms", "2000")
        .send()
        .await
        .expect("a valid deadline is honoured");
    assert_eq!(ok.status(), 200);
}
