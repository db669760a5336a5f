//! Feeding arbitrary bytes to the SDK's Consul answer parser through its public API.
//!
//! The parser of `/v1/health/service` answers is private to `federation-core`, and a parser
//! that panics or hangs on a hostile or broken agent takes discovery down with it. So bad-input
//! tests (proptest here, `cargo fuzz` in `fuzz/`) serve each body from a tiny loopback HTTP
//! server and let a real [`ClusterDiscovery`] watcher read it: the whole path (headers, index,
//! body, parser, instance set) is exercised, exactly as a broken agent would exercise it.

use std::net::SocketAddr;
use std::sync::{Arc, Mutex, PoisonError};
use std::time::Duration;

use federation_core::config::{ClusterConfig, ConsulSource, DiscoverySource};
use federation_core::discovery::{ClusterDiscovery, DiscoveryError, DiscoveryTuning, InstanceSet};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpListener;

/// What the server answers.
#[derive(Clone, Debug)]
struct Answer {
    body: Vec<u8>,
    index: Option<String>,
}

/// A loopback HTTP/1.1 server answering every request with the current body.
#[derive(Debug)]
pub struct BodyServer {
    addr: SocketAddr,
    answer: Arc<Mutex<Answer>>,
    task: tokio::task::JoinHandle<()>,
}

impl Drop for BodyServer {
    fn drop(&mut self) {
        self.task.abort();
    }
}

impl BodyServer {
    /// Starts the server on `127.0.0.1` with an empty JSON array and index 1.
    pub async fn start() -> std::io::Result<Self> {
        let listener = TcpListener::bind("127.0.0.1:0").await?;
        let addr = listener.local_addr()?;
        let answer = Arc::new(Mutex::new(Answer {
            body: b"[]".to_vec(),
            index: Some("1".to_owned()),
        }));
        let shared = Arc::clone(&answer);
        let task = tokio::spawn(async move {
            while let Ok((mut stream, _)) = listener.accept().await {
                let answer = shared
                    .lock()
                    .unwrap_or_else(PoisonError::into_inner)
                    .clone();
                tokio::spawn(async move {
                    let mut head = Vec::new();
                    let mut buf = [0u8; 1024];
                    while !head.windows(4).any(|w| w == b"\r\n\r\n") && head.len() < 65_536 {
                        match stream.read(&mut buf).await {
                            Ok(0) | Err(_) => return,
                            Ok(n) => head.extend_from_slice(&buf[..n]),
                        }
                    }
                    let mut out = format!(
                        "HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: {}\r\nConnection: close\r\n",
                        answer.body.len()
                    );
                    if let Some(index) = &answer.index {
                        out.push_str(&format!("X-Consul-Index: {index}\r\n"));
                    }
                    out.push_str("\r\n");
                    let _ = stream.write_all(out.as_bytes()).await;
                    let _ = stream.write_all(&answer.body).await;
                    let _ = stream.shutdown().await;
                });
            }
        });
        Ok(Self { addr, answer, task })
    }

    /// Answers later requests with `body` and the `X-Consul-Index` header `index` (omitted when
    /// `None`; any text, so invalid indexes can be served too).
    pub fn set(&self, body: Vec<u8>, index: Option<String>) {
        *self.answer.lock().unwrap_or_else(PoisonError::into_inner) = Answer { body, index };
    }

    /// `http://127.0.0.1:<port>`.
    pub fn url(&self) -> String {
        format!("http://{}", self.addr)
    }
}

/// Serves `body` and returns what a fresh discovery watcher made of it: the first instance set,
/// or the first error. Never panics for any input; a hang shows as a `Timeout` error.
pub async fn discover(
    server: &BodyServer,
    body: Vec<u8>,
    index: Option<String>,
) -> Result<Arc<InstanceSet>, DiscoveryError> {
    server.set(body, index);
    let mut source = ConsulSource::new(server.url());
    source.wait = Duration::from_secs(1);
    let cluster = ClusterConfig::new("probe", DiscoverySource::Consul(source));
    let tuning = DiscoveryTuning {
        backoff_base: Duration::from_millis(10),
        backoff_max: Duration::from_millis(50),
        ..DiscoveryTuning::default()
    };
    let discovery = ClusterDiscovery::with_tuning(&cluster, tuning)?;
    let result = discovery
        .wait_initialized("svc", Duration::from_secs(5))
        .await;
    discovery.shutdown();
    result
}
