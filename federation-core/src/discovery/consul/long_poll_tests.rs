//! A watch keeps one connection for all its queries, and its read buffer stays capped.

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use tokio::io::{AsyncReadExt, AsyncWriteExt};

use super::READ_BUFFER;
use crate::discovery::consul::http::tests::http;
use crate::discovery::consul::watcher;
use crate::discovery::state::ServiceState;
use crate::discovery::tuning::DiscoveryTuning;
use crate::discovery::{DiscoveryErrorKind, InstanceSet};

/// A keep-alive agent answering every request at once with an empty list, a growing
/// `X-Consul-Index` and a `pad`-byte extra header; counts the connections it accepted.
async fn agent(pad: usize) -> (String, Arc<AtomicUsize>) {
    agent_closing(pad, false).await
}

/// [`agent`], closing every connection after its first answer when `close` (without saying
/// so in the answer, as an agent timing out idle connections does).
async fn agent_closing(pad: usize, close: bool) -> (String, Arc<AtomicUsize>) {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("bind loopback");
    let addr = listener.local_addr().expect("local addr");
    let accepted = Arc::new(AtomicUsize::new(0));
    let index = Arc::new(AtomicU64::new(1));
    let count = Arc::clone(&accepted);
    tokio::spawn(async move {
        while let Ok((stream, _)) = listener.accept().await {
            count.fetch_add(1, Ordering::SeqCst);
            tokio::spawn(answer_each(stream, pad, Arc::clone(&index), close));
        }
    });
    (format!("http://{addr}"), accepted)
}

async fn answer_each(
    mut stream: tokio::net::TcpStream,
    pad: usize,
    index: Arc<AtomicU64>,
    close: bool,
) {
    while read_request(&mut stream).await {
        let n = index.fetch_add(1, Ordering::SeqCst);
        let head = format!(
            "HTTP/1.1 200 OK\r\ncontent-type: application/json\r\nx-consul-index: {n}\r\n\
             x-pad: {}\r\ncontent-length: 2\r\n\r\n[]",
            "p".repeat(pad)
        );
        if stream.write_all(head.as_bytes()).await.is_err() || close {
            return;
        }
    }
}

/// Reads one request head from `stream` (a client sends one query at a time); false once the
/// client closed the connection.
pub(crate) async fn read_request(stream: &mut tokio::net::TcpStream) -> bool {
    let mut seen = Vec::new();
    let mut buf = [0u8; 4096];
    while !seen.windows(4).any(|w| w == b"\r\n\r\n") {
        match stream.read(&mut buf).await {
            Ok(0) | Err(_) => return false,
            Ok(n) => seen.extend_from_slice(&buf[..n]),
        }
    }
    true
}

#[tokio::test]
async fn queries_sharing_a_connection_slot_open_one_connection() {
    let (url, accepted) = agent(10).await;
    let h = http(&url);
    let mut conn = None;
    for i in 0..5 {
        let answer = h
            .health_service("user-service", i, &mut conn)
            .await
            .expect("answer");
        assert!(answer.parsed.instances.is_empty());
        assert!(
            conn.is_some(),
            "the connection is kept after a whole answer"
        );
    }
    assert_eq!(accepted.load(Ordering::SeqCst), 1);
}

#[tokio::test]
async fn a_kept_connection_the_agent_closed_is_replaced_without_a_failed_query() {
    let (url, accepted) = agent_closing(10, true).await;
    let h = http(&url);
    let mut conn = None;
    for i in 0..5 {
        h.health_service("user-service", i, &mut conn)
            .await
            .expect("a closed kept connection is replaced, the query answered");
        // Let the close arrive (or not) before the next query: both must work.
        if i % 2 == 0 {
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }
    assert_eq!(accepted.load(Ordering::SeqCst), 5);
}

#[tokio::test]
async fn a_watch_loop_keeps_one_connection_across_its_polls() {
    let (url, accepted) = agent(10).await;
    let state = Arc::new(ServiceState::new(InstanceSet::pending()));
    let tuning = DiscoveryTuning {
        pace_refill: Duration::from_millis(10),
        ..DiscoveryTuning::default()
    };
    let task = tokio::spawn(watcher::run(
        Arc::new(http(&url)),
        "user-service".to_owned(),
        Arc::clone(&state),
        tuning,
    ));
    let deadline = Instant::now() + Duration::from_secs(10);
    while state.stats().polls < 8 && Instant::now() < deadline {
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    task.abort();
    let stats = state.stats();
    assert!(stats.polls >= 8, "{stats:?}");
    assert_eq!(stats.errors, 0, "{stats:?}");
    assert_eq!(accepted.load(Ordering::SeqCst), 1, "{stats:?}");
}

#[tokio::test]
async fn the_read_buffer_is_capped_at_hypers_minimum() {
    // A head that fits in the capped buffer is read; one over it is refused, which it would
    // not be with hyper's default (~400 KiB) buffer: the cap is in force.
    let (url, _) = agent(READ_BUFFER / 2).await;
    http(&url)
        .health_service("user-service", 0, &mut None)
        .await
        .expect("a head under the cap is read");
    let (url, _) = agent(READ_BUFFER + 1024).await;
    let err = http(&url)
        .health_service("user-service", 0, &mut None)
        .await
        .expect_err("a head over the cap is refused");
    assert_eq!(err.kind, DiscoveryErrorKind::Unreachable, "{err}");
    assert!(err.to_string().contains("too large"), "{err}");
    assert_eq!(READ_BUFFER, 8192);
}

/// What an idle watch costs is mostly its task's future (S1). The hyper/TLS exchange is boxed
/// so that `http://` watches, the common case, do not carry its state: 3,224 bytes with it
/// inline, 2,104 boxed (rustc 1.95); the bound leaves room for compiler changes.
#[test]
fn a_watch_future_does_not_carry_the_tls_exchange_inline() {
    let state = Arc::new(ServiceState::new(InstanceSet::pending()));
    let future = watcher::run(
        Arc::new(http("http://127.0.0.1:1")),
        "user-service".to_owned(),
        state,
        DiscoveryTuning::default(),
    );
    let size = std::mem::size_of_val(&future);
    assert!(size <= 2_600, "a watch's future is {size} bytes");
}
