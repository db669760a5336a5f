//! Every programmable fault of a service instance, as a client sees it.

use std::io::ErrorKind;
use std::time::{Duration, Instant};

use federation_testkit::instance::{Behavior, Identity, Latency, Mode, ServiceInstance};
use serde_json::Value;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

async fn start() -> ServiceInstance {
    ServiceInstance::start(Identity::new("looma", "ai-service", "ai-1"))
        .await
        .expect("instance starts")
}

fn client(timeout: Duration) -> reqwest::Client {
    let _ = rustls::crypto::ring::default_provider().install_default();
    reqwest::Client::builder()
        .no_proxy()
        .timeout(timeout)
        .build()
        .expect("client builds")
}

/// Write one raw request and read until the server closes or errors.
async fn raw_exchange(instance: &ServiceInstance, request: &str) -> std::io::Result<Vec<u8>> {
    let mut stream = TcpStream::connect(instance.addr()).await?;
    stream.write_all(request.as_bytes()).await?;
    let mut out = Vec::new();
    let mut buf = [0_u8; 4096];
    loop {
        match stream.read(&mut buf).await {
            Ok(0) => return Ok(out),
            Ok(n) => out.extend_from_slice(&buf[..n]),
            Err(e) => return Err(e),
        }
    }
}

#[tokio::test]
async fn fixed_latency_delays_the_answer() {
    let instance = start().await;
    instance.set_behavior(Behavior::delayed(Duration::from_millis(200)));
    let started = Instant::now();
    let response = client(Duration::from_secs(10))
        .get(format!("{}/slow", instance.url()))
        .send()
        .await
        .expect("request succeeds");
    assert_eq!(response.status(), 200);
    assert!(started.elapsed() >= Duration::from_millis(200));
}

#[tokio::test]
async fn uniform_latency_stays_within_its_lower_bound() {
    let instance = start().await;
    instance.set_behavior(Behavior {
        latency: Latency::Uniform(Duration::from_millis(50), Duration::from_millis(80)),
        ..Behavior::default()
    });
    let c = client(Duration::from_secs(10));
    for _ in 0..3 {
        let started = Instant::now();
        c.get(instance.url())
            .send()
            .await
            .expect("request succeeds");
        assert!(started.elapsed() >= Duration::from_millis(50));
    }
}

#[tokio::test]
async fn error_rate_is_reproducible_with_a_seed() {
    let instance = start().await;
    instance.set_behavior(Behavior {
        error_rate: 0.3,
        error_status: 503,
        ..Behavior::default()
    });
    let c = client(Duration::from_secs(10));
    let mut runs = Vec::new();
    for _ in 0..2 {
        instance.set_seed(42);
        let mut statuses = Vec::new();
        for _ in 0..200 {
            let response = c
                .get(instance.url())
                .send()
                .await
                .expect("request succeeds");
            statuses.push(response.status().as_u16());
        }
        runs.push(statuses);
    }
    assert_eq!(runs[0], runs[1], "same seed, same sequence");
    let errors = runs[0].iter().filter(|s| **s == 503).count();
    assert!(
        (30..=90).contains(&errors),
        "{errors} errors out of 200 at 30 %"
    );
    assert!(runs[0].iter().all(|s| *s == 200 || *s == 503));
}

#[tokio::test]
async fn fixed_status_carries_retry_after_and_identity() {
    let instance = start().await;
    instance.set_behavior(Behavior {
        retry_after: Some("2".to_owned()),
        ..Behavior::status(429)
    });
    let response = client(Duration::from_secs(10))
        .get(format!("{}/limited", instance.url()))
        .send()
        .await
        .expect("request succeeds");
    assert_eq!(response.status(), 429);
    assert_eq!(response.headers()["retry-after"].to_str().ok(), Some("2"));
    let body: Value = response.json().await.expect("json body");
    assert_eq!(body["instance"], "ai-1");
    assert_eq!(body["status"], 429);

    // Retry-After is only sent on errors.
    instance.set_behavior(Behavior {
        retry_after: Some("2".to_owned()),
        ..Behavior::default()
    });
    let response = client(Duration::from_secs(10))
        .get(instance.url())
        .send()
        .await
        .expect("request succeeds");
    assert!(response.headers().get("retry-after").is_none());
}

#[tokio::test]
async fn hang_times_out_the_client_but_counts_the_request() {
    let instance = start().await;
    instance.set_behavior(Behavior::mode(Mode::Hang));
    let err = client(Duration::from_millis(300))
        .post(format!("{}/never", instance.url()))
        .body("payload")
        .send()
        .await
        .expect_err("a hanging instance never answers");
    assert!(err.is_timeout(), "{err:?}");
    assert_eq!(instance.requests(), 1);
}

#[tokio::test]
async fn reset_after_request_sends_rst_once_the_request_was_read() {
    let instance = start().await;
    instance.set_behavior(Behavior::mode(Mode::ResetAfterRequest));
    let result = raw_exchange(
        &instance,
        "POST /orders HTTP/1.1\r\nHost: x\r\nContent-Length: 3\r\n\r\nabc",
    )
    .await;
    let err = result.expect_err("the connection is reset, not answered");
    assert_eq!(err.kind(), ErrorKind::ConnectionReset);
    assert_eq!(
        instance.requests_for("/orders"),
        1,
        "the request was received"
    );

    let err = client(Duration::from_secs(10))
        .post(format!("{}/orders", instance.url()))
        .body("abc")
        .send()
        .await
        .expect_err("reqwest sees the reset");
    assert!(!err.is_timeout(), "{err:?}");
}

#[tokio::test]
async fn reset_mid_body_delivers_headers_then_fails_the_body() {
    let instance = start().await;
    instance.set_behavior(Behavior {
        body_size: Some(10_000),
        ..Behavior::mode(Mode::ResetMidBody)
    });
    let response = client(Duration::from_secs(10))
        .get(instance.url())
        .send()
        .await
        .expect("headers arrive");
    assert_eq!(response.status(), 200);
    assert_eq!(response.content_length(), Some(10_000));
    response
        .bytes()
        .await
        .expect_err("the body is cut by a reset");
}

#[tokio::test]
async fn slow_drip_delivers_the_whole_body_slowly() {
    let instance = start().await;
    instance.set_behavior(Behavior {
        body_size: Some(320),
        ..Behavior::mode(Mode::SlowDrip {
            chunk_delay: Duration::from_millis(20),
        })
    });
    let started = Instant::now();
    let bytes = client(Duration::from_secs(10))
        .get(instance.url())
        .send()
        .await
        .expect("request succeeds")
        .bytes()
        .await
        .expect("body completes");
    assert_eq!(bytes.len(), 320);
    // 10 chunks of 32 bytes, each after a 20 ms pause.
    assert!(started.elapsed() >= Duration::from_millis(200));
    let body: Value = serde_json::from_slice(&bytes).expect("json body");
    assert_eq!(body["service"], "ai-service");
}

#[tokio::test]
async fn oversized_streams_exactly_the_requested_bytes_without_length() {
    let instance = start().await;
    let size = 3 * 1024 * 1024 + 17;
    instance.set_behavior(Behavior::mode(Mode::Oversized { bytes: size }));
    let response = client(Duration::from_secs(20))
        .get(instance.url())
        .send()
        .await
        .expect("request succeeds");
    assert_eq!(
        response.content_length(),
        None,
        "chunked, no declared length"
    );
    let bytes = response.bytes().await.expect("body completes");
    assert_eq!(bytes.len(), size);
}

#[tokio::test]
async fn malformed_headers_are_a_client_error() {
    let instance = start().await;
    instance.set_behavior(Behavior::mode(Mode::MalformedHeaders));
    let raw = raw_exchange(&instance, "GET / HTTP/1.1\r\nHost: x\r\n\r\n")
        .await
        .expect("raw bytes arrive");
    assert!(raw.starts_with(b"HTTP/1.1 200 OK\r\nContent-Length: not-a-number"));
    client(Duration::from_secs(10))
        .get(instance.url())
        .send()
        .await
        .expect_err("an invalid response head is rejected");
}

#[tokio::test]
async fn behaviour_changes_apply_to_the_next_request() {
    let instance = start().await;
    let c = client(Duration::from_secs(10));
    instance.set_behavior(Behavior::status(503));
    assert_eq!(instance.behavior().status, Some(503));
    assert_eq!(
        c.get(instance.url()).send().await.expect("ok").status(),
        503
    );
    instance.set_behavior(Behavior::default());
    assert_eq!(
        c.get(instance.url()).send().await.expect("ok").status(),
        200
    );
}
