//! Tests of `http1_pool.rs` against loopback servers.

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpListener;

use super::*;

/// A loopback HTTP/1.1 server answering `ok` to every request; with `close_after_each` it
/// closes each connection right after its first response (without saying so), as a server
/// whose keep-alive timeout ran out does. Returns its port and its accepted connections.
async fn server(close_after_each: bool) -> (u16, Arc<AtomicUsize>) {
    let (port, accepted, _closed) = server_counting_closes(close_after_each).await;
    (port, accepted)
}

/// As `server`, also counting the connections the client closed.
async fn server_counting_closes(
    close_after_each: bool,
) -> (u16, Arc<AtomicUsize>, Arc<AtomicUsize>) {
    let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind");
    let port = listener.local_addr().expect("address").port();
    let accepted = Arc::new(AtomicUsize::new(0));
    let closed = Arc::new(AtomicUsize::new(0));
    let counter = Arc::clone(&accepted);
    let closes = Arc::clone(&closed);
    tokio::spawn(async move {
        while let Ok((mut socket, _)) = listener.accept().await {
            counter.fetch_add(1, Ordering::SeqCst);
            let closes = Arc::clone(&closes);
            tokio::spawn(async move {
                let mut buf = Vec::new();
                let mut chunk = [0u8; 1024];
                while let Ok(n) = socket.read(&mut chunk).await {
                    if n == 0 {
                        closes.fetch_add(1, Ordering::SeqCst);
                        return;
                    }
                    buf.extend_from_slice(&chunk[..n]);
                    while let Some(end) = buf.windows(4).position(|w| w == b"\r\n\r\n") {
                        buf.drain(..end + 4);
                        let reply = b"HTTP/1.1 200 OK\r\ncontent-length: 2\r\n\r\nok";
                        if socket.write_all(reply).await.is_err() || close_after_each {
                            return;
                        }
                    }
                }
            });
        }
    });
    (port, accepted, closed)
}

fn request() -> http::Request<Full<Bytes>> {
    http::Request::get("/x")
        .header(http::header::HOST, "127.0.0.1")
        .body(Full::new(Bytes::new()))
        .expect("request")
}

/// One exchange as the transport does it: send, read the body to its end, give back.
async fn call(pool: &Arc<Http1Pool>, settings: &PoolSettings) -> Result<Bytes, SendError> {
    let now = Instant::now();
    call_at(pool, settings, (now, now)).await
}

/// The same with the attempt's clock readings: its start and the end of its body.
async fn call_at(
    pool: &Arc<Http1Pool>,
    settings: &PoolSettings,
    (started, ended): (Instant, Instant),
) -> Result<Bytes, SendError> {
    use http_body_util::BodyExt;
    let (response, connection) = pool.send(settings, request(), started).await?;
    assert_eq!(response.status(), http::StatusCode::OK);
    let body = response
        .into_body()
        .collect()
        .await
        .expect("body")
        .to_bytes();
    pool.give_back(connection, settings, ended);
    Ok(body)
}

/// The pool reads no clock of its own on the call path: a connection's idle time runs from the
/// reading it was given back at (its attempt's end) to the next attempt's start.
#[tokio::test]
async fn idle_time_is_judged_by_the_attempts_clock_readings() {
    let (port, accepted) = server(false).await;
    let pool = Arc::new(Http1Pool::new("127.0.0.1", port));
    let settings = PoolSettings {
        idle_timeout: Duration::from_secs(10),
        ..PoolSettings::default()
    };
    let t0 = Instant::now();
    let at = |secs: u64| t0 + Duration::from_secs(secs);
    assert!(call_at(&pool, &settings, (at(0), at(1))).await.is_ok());
    // Idle 5 s by the readings (microseconds by the clock): reused.
    assert!(call_at(&pool, &settings, (at(6), at(7))).await.is_ok());
    assert_eq!(accepted.load(Ordering::SeqCst), 1);
    // Idle 11 s by the readings: past the timeout, so a new connection.
    assert!(call_at(&pool, &settings, (at(18), at(18))).await.is_ok());
    assert_eq!(accepted.load(Ordering::SeqCst), 2);
}

#[tokio::test]
async fn sequential_calls_reuse_one_connection() {
    let (port, accepted) = server(false).await;
    let pool = Arc::new(Http1Pool::new("127.0.0.1", port));
    let settings = PoolSettings::default();
    for _ in 0..3 {
        assert_eq!(call(&pool, &settings).await.ok(), Some(Bytes::from("ok")));
    }
    assert_eq!(accepted.load(Ordering::SeqCst), 1);
}

#[tokio::test]
async fn a_connection_the_server_closed_while_idle_is_replaced_without_an_error() {
    let (port, accepted) = server(true).await;
    let pool = Arc::new(Http1Pool::new("127.0.0.1", port));
    let settings = PoolSettings::default();
    for _ in 0..3 {
        assert_eq!(call(&pool, &settings).await.ok(), Some(Bytes::from("ok")));
        // Long enough for the idle connection's task to see the server's close.
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert_eq!(accepted.load(Ordering::SeqCst), 3);
}

#[tokio::test]
async fn no_connection_is_kept_when_max_idle_is_zero() {
    let (port, accepted) = server(false).await;
    let pool = Arc::new(Http1Pool::new("127.0.0.1", port));
    let settings = PoolSettings {
        max_idle_per_host: 0,
        ..PoolSettings::default()
    };
    for _ in 0..2 {
        assert!(call(&pool, &settings).await.is_ok());
    }
    assert_eq!(accepted.load(Ordering::SeqCst), 2);
}

#[tokio::test]
async fn a_connection_idle_past_the_timeout_is_not_reused() {
    let (port, accepted) = server(false).await;
    let pool = Arc::new(Http1Pool::new("127.0.0.1", port));
    let settings = PoolSettings {
        idle_timeout: Duration::from_millis(50),
        ..PoolSettings::default()
    };
    assert!(call(&pool, &settings).await.is_ok());
    tokio::time::sleep(Duration::from_millis(120)).await;
    assert!(call(&pool, &settings).await.is_ok());
    assert_eq!(accepted.load(Ordering::SeqCst), 2);
}

#[tokio::test]
async fn an_idle_connection_is_closed_after_the_timeout_without_further_calls() {
    let (port, accepted, closed) = server_counting_closes(false).await;
    let pool = Arc::new(Http1Pool::new("127.0.0.1", port));
    let settings = PoolSettings {
        idle_timeout: Duration::from_millis(50),
        ..PoolSettings::default()
    };
    assert!(call(&pool, &settings).await.is_ok());
    assert_eq!(closed.load(Ordering::SeqCst), 0, "kept while idle");
    let deadline = Instant::now() + Duration::from_secs(5);
    while closed.load(Ordering::SeqCst) == 0 && Instant::now() < deadline {
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    assert_eq!(closed.load(Ordering::SeqCst), 1, "closed by the reaper");
    assert_eq!(accepted.load(Ordering::SeqCst), 1);
    assert!(pool.lock().is_empty());
    // The reaper stopped with the list empty; the next idle connection gets a new one.
    assert!(call(&pool, &settings).await.is_ok());
    let deadline = Instant::now() + Duration::from_secs(5);
    while closed.load(Ordering::SeqCst) < 2 && Instant::now() < deadline {
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    assert_eq!(closed.load(Ordering::SeqCst), 2);
}

#[tokio::test]
async fn a_refused_connection_is_a_connect_error_naming_the_cause() {
    let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind");
    let port = listener.local_addr().expect("address").port();
    drop(listener);
    let pool = Arc::new(Http1Pool::new("127.0.0.1", port));
    match pool
        .send(&PoolSettings::default(), request(), Instant::now())
        .await
    {
        Err(SendError::Connect(e)) => {
            assert!(e.to_string().contains("tcp connect error"), "message: {e}")
        }
        Err(other) => panic!("expected a connect error, got {other:?}"),
        Ok(_) => panic!("expected a connect error, got a response"),
    }
}

#[test]
fn an_ipv6_host_is_kept_without_brackets_and_matched_either_way() {
    let pool = Http1Pool::new("[::1]", 8080);
    assert!(pool.is_for("::1", 8080));
    assert!(pool.is_for("[::1]", 8080));
    assert!(!pool.is_for("::1", 8081));
    assert!(!pool.is_for("127.0.0.1", 8080));
}
