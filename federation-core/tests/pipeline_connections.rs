//! A cluster's `connections` settings reach its instances' connection pools: with the default
//! settings sequential calls share one connection; with `max_idle_per_instance: 0` every call
//! opens its own.

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};

use federation_core::client::FederatedServiceClient;
use federation_core::config::{Config, ConfigFormat};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpListener;

/// An HTTP/1.1 upstream that answers `{}` to each request and counts the connections it accepts.
async fn counting_upstream() -> (u16, Arc<AtomicUsize>) {
    let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind");
    let port = listener.local_addr().expect("address").port();
    let connections = Arc::new(AtomicUsize::new(0));
    let seen = Arc::clone(&connections);
    tokio::spawn(async move {
        loop {
            let Ok((mut socket, _)) = listener.accept().await else {
                return;
            };
            seen.fetch_add(1, Ordering::SeqCst);
            tokio::spawn(async move {
                let mut pending = Vec::new();
                let mut buf = [0u8; 2048];
                loop {
                    let n = match socket.read(&mut buf).await {
                        Ok(0) | Err(_) => return,
                        Ok(n) => n,
                    };
                    pending.extend_from_slice(&buf[..n]);
                    // Requests carry no body (GET): each ends with an empty line.
                    while let Some(at) = pending.windows(4).position(|w| w == b"\r\n\r\n") {
                        pending.drain(..at + 4);
                        let answer = "HTTP/1.1 200 OK\r\ncontent-type: application/json\r\ncontent-length: 2\r\n\r\n{}";
                        if socket.write_all(answer.as_bytes()).await.is_err() {
                            return;
                        }
                    }
                }
            });
        }
    });
    (port, connections)
}

async fn connections_for_three_calls(connections_section: &str) -> usize {
    let (port, accepted) = counting_upstream().await;
    let yaml = format!(
        "clusters:\n  local:\n    static:\n      svc: [ {{ address: 127.0.0.1, port: {port} }} ]\n{connections_section}services:\n  svc:\n    names: {{ local: svc }}\n"
    );
    let config = Config::parse(&yaml, ConfigFormat::Yaml).expect("config");
    let client = FederatedServiceClient::from_config(config).expect("client");
    for _ in 0..3 {
        let response = client.get("svc", "/x").send().await.expect("call");
        assert_eq!(response.status().as_u16(), 200);
    }
    accepted.load(Ordering::SeqCst)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sequential_calls_share_one_connection_by_default() {
    assert_eq!(connections_for_three_calls("").await, 1);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn max_idle_zero_in_the_cluster_config_closes_each_connection() {
    let section = "    connections: { max_idle_per_instance: 0 }\n";
    assert_eq!(connections_for_three_calls(section).await, 3);
}
