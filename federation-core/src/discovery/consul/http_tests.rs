//! URLs, waits, body limits and address checks of the Consul HTTP client.

use super::*;

/// A client for the agent at `address` with the default tuning.
pub(crate) fn http(address: &str) -> ConsulHttp {
    ConsulHttp::new(
        "zervigo",
        &ConsulSource::new(address),
        None,
        &DiscoveryTuning::default(),
    )
    .expect("valid source")
}

#[test]
fn service_names_are_percent_encoded_and_no_dc_is_sent() {
    let h = http("http://127.0.0.1:8500/");
    let url = h.url(&["health", "service", "a b/c?d"], &[("index", "7")]);
    assert_eq!(
        url.as_str(),
        "http://127.0.0.1:8500/v1/health/service/a%20b%2Fc%3Fd?index=7"
    );
    assert!(!url.as_str().contains("dc="));
}

#[test]
fn the_wait_is_bounded_like_consul_bounds_it() {
    assert_eq!(effective_wait(Duration::ZERO), ConsulSource::DEFAULT_WAIT);
    assert_eq!(effective_wait(Duration::from_secs(3600)), MAX_WAIT);
    assert_eq!(
        effective_wait(Duration::from_secs(1)),
        Duration::from_secs(1)
    );
}

#[test]
fn durations_use_go_syntax() {
    assert_eq!(go_duration(Duration::from_secs(60)), "60s");
    assert_eq!(go_duration(Duration::from_millis(1500)), "1500ms");
    assert_eq!(go_duration(Duration::ZERO), "0s");
}

/// Serves one `/v1/health/service` answer whose body is `size` bytes of a JSON array,
/// announced with a Content-Length or streamed chunked (length unknown up front).
async fn serve_body(size: usize, announce: bool) -> String {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("bind loopback");
    let addr = listener.local_addr().expect("local addr");
    tokio::spawn(async move {
        let Ok((mut stream, _)) = listener.accept().await else {
            return;
        };
        let mut head = [0u8; 4096];
        let _ = stream.read(&mut head).await;
        let framing = if announce {
            format!("content-length: {size}")
        } else {
            "transfer-encoding: chunked".to_owned()
        };
        let head = format!(
            "HTTP/1.1 200 OK\r\ncontent-type: application/json\r\nx-consul-index: 7\r\n{framing}\r\n\r\n"
        );
        if stream.write_all(head.as_bytes()).await.is_err() {
            return;
        }
        let mut body = vec![b' '; size];
        body[0] = b'[';
        body[size - 1] = b']';
        for piece in body.chunks(16 * 1024) {
            let sent = if announce {
                stream.write_all(piece).await
            } else {
                let frame = [format!("{:x}\r\n", piece.len()).as_bytes(), piece, b"\r\n"].concat();
                stream.write_all(&frame).await
            };
            if sent.is_err() {
                return;
            }
        }
        let _ = stream.write_all(b"0\r\n\r\n").await;
    });
    format!("http://{addr}")
}

#[tokio::test]
async fn an_answer_over_the_body_limit_is_a_parse_error_naming_the_cluster() {
    for announce in [true, false] {
        let mut h = http(&serve_body(300_000, announce).await);
        h.max_body = 100_000;
        let err = h
            .health_service("user-service", 0, &mut None)
            .await
            .expect_err("oversized answer refused");
        assert_eq!(err.kind, DiscoveryErrorKind::Parse, "{err}");
        assert!(err.to_string().contains("`zervigo`"), "{err}");
        assert!(err.to_string().contains("100000 bytes allowed"), "{err}");
    }
}

#[tokio::test]
async fn an_answer_under_the_body_limit_is_read_whole() {
    for announce in [true, false] {
        let mut h = http(&serve_body(90_000, announce).await);
        h.max_body = 100_000;
        let answer = h
            .health_service("user-service", 0, &mut None)
            .await
            .expect("answer under the limit");
        assert!(answer.parsed.instances.is_empty());
        assert_eq!(answer.index, 7);
    }
    assert_eq!(MAX_BODY, 64 * 1024 * 1024);
}

#[test]
fn bad_addresses_are_config_errors_naming_the_cluster() {
    for address in ["", "consul:8500", "ftp://x", "http://"] {
        let err = ConsulHttp::new(
            "looma",
            &ConsulSource::new(address),
            None,
            &DiscoveryTuning::default(),
        )
        .expect_err("address should be rejected");
        assert_eq!(err.kind, DiscoveryErrorKind::Config, "{address}: {err}");
        assert!(err.to_string().contains("`looma`"));
    }
}
