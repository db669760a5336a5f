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

use super::{PoolSettings, SendError};
use crate::error::HttpError;

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
        crate::lock::lock(&self.idle)
    }

    /// Sends `request` (origin-form URI, `Host` set) on an idle connection that is still
    /// usable, else on a new one; `now` is the attempt's start, the idle check's clock reading.
    /// Returns the response (its body not yet read) and the connection to give back once the
    /// body has been read to its end.
    pub(crate) async fn send(
        &self,
        settings: &PoolSettings,
        mut request: http::Request<Full<Bytes>>,
        now: Instant,
    ) -> Result<(http::Response<Incoming>, InUse), SendError> {
        loop {
            let (mut sender, reused) = match self.take_idle(settings, now) {
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

    /// Returns a connection whose response was read to its end at `now` (the attempt's end
    /// reading, so the pool reads no clock of its own), unless it closed or the instance
    /// already has `max_idle_per_host` idle ones.
    pub(crate) fn give_back(
        self: &Arc<Self>,
        connection: InUse,
        settings: &PoolSettings,
        now: Instant,
    ) {
        let InUse(sender) = connection;
        if sender.is_closed() {
            return;
        }
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

    /// The newest idle connection that is neither closed nor past `idle_timeout` at `now` (one
    /// given back after `now` counts as idle for no time).
    fn take_idle(&self, settings: &PoolSettings, now: Instant) -> Option<Sender> {
        let mut idle = self.lock();
        while let Some(newest) = idle.pop_back() {
            if now.saturating_duration_since(newest.since) >= settings.idle_timeout {
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
        let runtime = tokio::runtime::Handle::try_current()
            .map_err(|e| connect_error(format_args!("no runtime to run the connection on: {e}")))?;
        let connecting = TcpStream::connect((self.host.as_str(), self.port));
        let stream = match tokio::time::timeout(settings.connect_timeout, connecting).await {
            Ok(Ok(stream)) => stream,
            Ok(Err(e)) => return Err(connect_error(format_args!("tcp connect error: {e}"))),
            Err(_) => {
                return Err(connect_error(format_args!(
                    "tcp connect error: no connection within {:?}",
                    settings.connect_timeout
                )));
            }
        };
        stream
            .set_nodelay(settings.tcp_nodelay)
            .map_err(|e| connect_error(format_args!("cannot set TCP_NODELAY: {e}")))?;
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

/// A failure to open a connection, worded as hyper-util's connector words it.
fn connect_error(what: std::fmt::Arguments<'_>) -> SendError {
    SendError::Connect(HttpError::from(format!("client error (Connect): {what}")))
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
#[path = "http1_pool_tests.rs"]
mod tests;
