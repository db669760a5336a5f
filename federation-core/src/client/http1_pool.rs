//! The plain-HTTP/1.1 connections of one instance, pooled by the SDK.
//!
//! Failure prevented: paying, on every call, for a general-purpose pool that the endpoint
//! already makes unnecessary. hyper-util's pooled client finds a connection by hashing the
//! request's scheme and authority byte by byte (SipHash), takes a lock for the whole pool,
//! wraps each connection in a checkout future, and when a response arrives before its
//! connection is ready again it spawns a task only to put the connection back. The SDK already
//! knows the instance it picked, so each instance keeps its own idle list: taking a
//! connection is a pop under that list's lock, giving it back a push once the body has been
//! read to its end. At 1000 concurrent calls, client and server in one process
//! (`examples/call_cost.rs`), this cut the CPU per call of a bare pooled client from about
//! 79 µs to 60–71 µs.
//!
//! Semantics kept from the general pool:
//! - Connections are reused newest first (warm ones), up to `max_idle_per_host` idle per
//!   instance; an idle connection is closed once it has been idle for `idle_timeout`, by a
//!   reaper task that runs while the instance has idle connections (and when it is next seen).
//! - A reused connection that turns out to be closed before the request was written to it (the
//!   server timed it out, the instance restarted) is discarded and the request goes to the next
//!   idle connection or a new one: nothing was sent, so this is safe for any method.
//! - Only a new connection that fails is a connection error ([`SendError::Connect`]): the
//!   request never reached the server. A failure after the request may have been written is
//!   [`SendError::Lost`].
//! - The TCP connect has `connect_timeout`; `tcp_nodelay` as configured.
//! - A connection whose response was not read to its end (a timeout, a body over the limit, a
//!   cancelled call) is dropped, which closes it: HTTP/1.1 cannot reuse it.
//!
//! HTTPS endpoints (TLS, and HTTP/2 when ALPN picks it) and calls a thread drives itself
//! ([`crate::driven`]) keep using hyper-util's client (transport.rs).

use std::collections::VecDeque;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, MutexGuard, Weak};
use std::time::Duration;

use bytes::Bytes;
use http_body_util::Full;
use hyper::body::Incoming;
use hyper::client::conn::http1::{self, SendRequest};
use hyper_util::rt::TokioIo;
use tokio::net::TcpStream;
use tokio::time::Instant;

use super::transport::{HttpError, PoolSettings, SendError};

type Sender = SendRequest<Full<Bytes>>;

/// The idle connections of one instance (`host:port`).
#[derive(Debug)]
pub(crate) struct Http1Pool {
    host: String,
    port: u16,
    idle: Mutex<VecDeque<Idle>>,
    /// A reaper task is running for this pool.
    reaping: AtomicBool,
}

#[derive(Debug)]
struct Idle {
    sender: Sender,
    since: Instant,
}

/// A connection in use by one exchange: [`Http1Pool::give_back`] once its response was read.
pub(crate) struct InUse(Sender);

impl Http1Pool {
    /// An empty pool for the instance at `host` (a name, an IPv4 or an IPv6 address, with or
    /// without brackets) and `port`.
    pub(crate) fn new(host: &str, port: u16) -> Self {
        Self {
            host: bare(host).to_owned(),
            port,
            idle: Mutex::new(VecDeque::new()),
            reaping: AtomicBool::new(false),
        }
    }

    /// Whether this pool connects to `host:port`.
    pub(crate) fn is_for(&self, host: &str, port: u16) -> bool {
        bare(host) == self.host && self.port == port
    }

    fn lock(&self) -> MutexGuard<'_, VecDeque<Idle>> {
        // The list stays consistent whatever panicked while holding it.
        self.idle.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Sends `request` (origin-form URI, `Host` set) on an idle connection that is still
    /// usable, else on a new one. Returns the response (its body not yet read) and the
    /// connection to give back once the body has been read to its end.
    pub(crate) async fn send(
        &self,
        settings: &PoolSettings,
        mut request: http::Request<Full<Bytes>>,
    ) -> Result<(http::Response<Incoming>, InUse), SendError> {
        loop {
            let (mut sender, reused) = match self.take_idle(settings) {
                Some(sender) => (sender, true),
                None => (self.connect(settings).await?, false),
            };
            if let Err(e) = sender.ready().await {
                if reused {
                    continue; // closed while idle: try the next one
                }
                return Err(SendError::Connect(HttpError::new(&e)));
            }
            match sender.try_send_request(request).await {
                Ok(response) => return Ok((response, InUse(sender))),
                Err(mut e) => match e.take_message() {
                    // Not written to the connection: safe to send elsewhere.
                    Some(unsent) if reused => request = unsent,
                    Some(_) => return Err(SendError::Connect(HttpError::new(e.error()))),
                    None => return Err(SendError::Lost(HttpError::new(e.error()))),
                },
            }
        }
    }

    /// Returns a connection whose response was read to its end, unless it closed or the
    /// instance already has `max_idle_per_host` idle ones.
    pub(crate) fn give_back(self: &Arc<Self>, connection: InUse, settings: &PoolSettings) {
        let InUse(sender) = connection;
        if sender.is_closed() {
            return;
        }
        let now = Instant::now();
        let mut idle = self.lock();
        let expired = take_expired(&mut idle, now, settings.idle_timeout);
        let kept = idle.len() < settings.max_idle_per_host;
        if kept {
            idle.push_back(Idle { sender, since: now });
        }
        drop(idle);
        drop(expired); // closes them, outside the lock
        if kept && !self.reaping.swap(true, Ordering::AcqRel) {
            self.start_reaper(settings.idle_timeout);
        }
    }

    /// Closes idle connections as they reach `idle_timeout`, until none is left. Without a
    /// runtime to run on (not reached: calls run on one) they expire when next seen.
    fn start_reaper(self: &Arc<Self>, idle_timeout: Duration) {
        let Ok(runtime) = tokio::runtime::Handle::try_current() else {
            self.reaping.store(false, Ordering::Release);
            return;
        };
        let pool: Weak<Self> = Arc::downgrade(self);
        runtime.spawn(async move {
            let mut wake_at = Instant::now() + idle_timeout;
            loop {
                tokio::time::sleep_until(wake_at).await;
                let Some(pool) = pool.upgrade() else {
                    return; // the instance is gone, and its connections with it
                };
                let mut idle = pool.lock();
                let expired = take_expired(&mut idle, Instant::now(), idle_timeout);
                let next = idle.front().map(|oldest| oldest.since + idle_timeout);
                drop(idle);
                drop(expired);
                match next {
                    Some(at) => wake_at = at,
                    None => {
                        pool.reaping.store(false, Ordering::Release);
                        // A connection given back since the check found the flag still set.
                        if pool.lock().is_empty() || pool.reaping.swap(true, Ordering::AcqRel) {
                            return;
                        }
                        wake_at = Instant::now() + idle_timeout;
                    }
                }
            }
        });
    }

    /// The newest idle connection that is neither closed nor past `idle_timeout`.
    fn take_idle(&self, settings: &PoolSettings) -> Option<Sender> {
        let mut idle = self.lock();
        while let Some(newest) = idle.pop_back() {
            if newest.since.elapsed() >= settings.idle_timeout {
                // Every older one is past it too.
                let expired: Vec<Idle> = idle.drain(..).collect();
                drop(idle);
                drop((newest, expired));
                return None;
            }
            if !newest.sender.is_closed() {
                return Some(newest.sender);
            }
        }
        None
    }

    /// Opens a new connection and starts its task on the current runtime.
    async fn connect(&self, settings: &PoolSettings) -> Result<Sender, SendError> {
        // Calls run on the client's runtime (directly, or entered by the bindings); without
        // one there is nowhere to run the connection.
        let runtime = tokio::runtime::Handle::try_current().map_err(|e| {
            SendError::Connect(HttpError::from(format!(
                "client error (Connect): no runtime to run the connection on: {e}"
            )))
        })?;
        let connecting = TcpStream::connect((self.host.as_str(), self.port));
        let stream = match tokio::time::timeout(settings.connect_timeout, connecting).await {
            Ok(Ok(stream)) => stream,
            Ok(Err(e)) => {
                return Err(SendError::Connect(HttpError::from(format!(
                    "client error (Connect): tcp connect error: {e}"
                ))));
            }
            Err(_) => {
                return Err(SendError::Connect(HttpError::from(format!(
                    "client error (Connect): tcp connect error: no connection within {:?}",
                    settings.connect_timeout
                ))));
            }
        };
        stream.set_nodelay(settings.tcp_nodelay).map_err(|e| {
            SendError::Connect(HttpError::from(format!(
                "client error (Connect): cannot set TCP_NODELAY: {e}"
            )))
        })?;
        let (sender, connection) = http1::handshake(TokioIo::new(stream))
            .await
            .map_err(|e| SendError::Connect(HttpError::new(&e)))?;
        // The connection's I/O runs as its own task; it ends when the connection closes (the
        // last sender dropped, or the server closed it).
        runtime.spawn(async move {
            let _closed = connection.await;
        });
        Ok(sender)
    }
}

/// Removes the idle connections that have been idle for longer than `idle_timeout` (the
/// oldest are at the front), for the caller to drop outside the lock.
fn take_expired(idle: &mut VecDeque<Idle>, now: Instant, idle_timeout: Duration) -> Vec<Idle> {
    let mut expired = Vec::new();
    while idle
        .front()
        .is_some_and(|oldest| now.duration_since(oldest.since) >= idle_timeout)
    {
        expired.extend(idle.pop_front());
    }
    expired
}

/// `host` without the brackets of an IPv6 literal (`TcpStream::connect` wants it bare).
fn bare(host: &str) -> &str {
    host.strip_prefix('[')
        .and_then(|h| h.strip_suffix(']'))
        .unwrap_or(host)
}

#[cfg(test)]
mod tests {
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
        use http_body_util::BodyExt;
        let (response, connection) = pool.send(settings, request()).await?;
        assert_eq!(response.status(), http::StatusCode::OK);
        let body = response
            .into_body()
            .collect()
            .await
            .expect("body")
            .to_bytes();
        pool.give_back(connection, settings);
        Ok(body)
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
        match pool.send(&PoolSettings::default(), request()).await {
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
}
