//! Service instances answer with their identity, count requests, record headers and report
//! health.

use std::time::Duration;

use federation_testkit::instance::{Behavior, Identity, ServiceInstance};
use serde_json::Value;

async fn start(name: &str) -> ServiceInstance {
    ServiceInstance::start(Identity::new("zervigo", "user-service", name))
        .await
        .expect("instance starts")
}

fn client() -> reqwest::Client {
    let _ = rustls::crypto::ring::default_provider().install_default();
    reqwest::Client::builder()
        .no_proxy()
        .timeout(Duration::from_secs(10))
        .build()
        .expect("client builds")
}

#[tokio::test]
async fn answers_with_identity_json() {
    let instance = start("u1").await;
    let response = client()
        .post(format!("{}/api/v1/users/42?x=1&y=2", instance.url()))
        .header(
            "traceparent",
            "00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01",
        )
        .header("X-Federation-Deadline-Ms", "250")
        .body("hello")
        .send()
        .await
        .expect("request succeeds");
    assert_eq!(response.status(), 200);
    assert_eq!(
        response.headers()["content-type"].to_str().ok(),
        Some("application/json")
    );
    let body: Value = response.json().await.expect("json body");
    assert_eq!(body["cluster"], "zervigo");
    assert_eq!(body["service"], "user-service");
    assert_eq!(body["instance"], "u1");
    assert_eq!(body["method"], "POST");
    assert_eq!(body["path"], "/api/v1/users/42");
    assert_eq!(body["query"], "x=1&y=2");
    assert_eq!(
        body["traceparent"],
        "00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01"
    );
    assert_eq!(body["deadline"], "250");
    assert_eq!(body["body_len"], 5);
    assert_eq!(body["status"], 200);
}

#[tokio::test]
async fn echo_off_gives_every_client_the_same_answer() {
    let instance = start("u1").await;
    instance.set_echo_propagation(false);
    let plain = client()
        .get(format!("{}/x", instance.url()))
        .send()
        .await
        .expect("request succeeds")
        .bytes()
        .await
        .expect("body");
    let traced = client()
        .get(format!("{}/x", instance.url()))
        .header(
            "traceparent",
            "00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01",
        )
        .header("X-Federation-Deadline-Ms", "250")
        .send()
        .await
        .expect("request succeeds")
        .bytes()
        .await
        .expect("body");
    assert_eq!(plain, traced, "the headers do not change the answer");
    let body: Value = serde_json::from_slice(&traced).expect("json body");
    assert!(body.get("traceparent").is_none());
    assert_eq!(body["instance"], "u1");
}

#[tokio::test]
async fn optional_fields_are_absent_when_not_sent() {
    let instance = start("u1").await;
    let body: Value = client()
        .get(format!("{}/x", instance.url()))
        .send()
        .await
        .expect("request succeeds")
        .json()
        .await
        .expect("json body");
    assert!(body.get("traceparent").is_none());
    assert!(body.get("deadline").is_none());
    assert_eq!(body["query"], Value::Null);
    assert_eq!(body["body_len"], 0);
}

#[tokio::test]
async fn counts_requests_per_path_but_not_health() {
    let instance = start("u1").await;
    let c = client();
    for path in ["/a", "/a", "/b", "/health", "/health"] {
        c.get(format!("{}{path}", instance.url()))
            .send()
            .await
            .expect("request succeeds");
    }
    assert_eq!(instance.requests(), 3);
    assert_eq!(instance.requests_for("/a"), 2);
    assert_eq!(instance.requests_for("/b"), 1);
    assert_eq!(instance.requests_for("/health"), 0);
    instance.reset_counters();
    assert_eq!(instance.requests(), 0);
    assert!(instance.requests_by_path().is_empty());
}

#[tokio::test]
async fn records_headers_only_when_enabled() {
    let instance = start("u1").await;
    let c = client();
    c.get(format!("{}/before", instance.url()))
        .send()
        .await
        .expect("request succeeds");
    assert!(
        instance.recorded().is_empty(),
        "recording is off by default"
    );

    instance.set_recording(true);
    c.put(format!("{}/users/7?full=true", instance.url()))
        .header("Authorization", "Bearer abc")
        .body(vec![0_u8; 1234])
        .send()
        .await
        .expect("request succeeds");
    let recorded = instance.recorded();
    assert_eq!(recorded.len(), 1);
    let r = &recorded[0];
    assert_eq!(r.method, "PUT");
    assert_eq!(r.path, "/users/7");
    assert_eq!(r.query.as_deref(), Some("full=true"));
    assert_eq!(r.header("authorization"), Some("Bearer abc"));
    assert_eq!(r.body_len, 1234);
}

#[tokio::test]
async fn health_answers_the_configured_status() {
    let instance = start("u1").await;
    let c = client();
    let url = format!("{}/health", instance.url());
    assert_eq!(c.get(&url).send().await.expect("health").status(), 200);
    for code in [429_u16, 500] {
        instance.set_health_status(code);
        let got = c.get(&url).send().await.expect("health").status().as_u16();
        assert_eq!(got, code);
    }
    // The behaviour does not touch /health.
    instance.set_behavior(Behavior::status(503));
    instance.set_health_status(200);
    assert_eq!(c.get(&url).send().await.expect("health").status(), 200);
}

#[tokio::test]
async fn padded_body_is_still_json() {
    let instance = start("u1").await;
    instance.set_behavior(Behavior {
        body_size: Some(4096),
        ..Behavior::default()
    });
    let bytes = client()
        .get(format!("{}/pad", instance.url()))
        .send()
        .await
        .expect("request succeeds")
        .bytes()
        .await
        .expect("body");
    assert_eq!(bytes.len(), 4096);
    let body: Value = serde_json::from_slice(&bytes).expect("padded body parses");
    assert_eq!(body["instance"], "u1");
}
