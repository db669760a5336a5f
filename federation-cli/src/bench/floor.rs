//! The floor of an HTTP call here: raw hyper HTTP/1.1 connections, no SDK logic.
//!
//! Beating reqwest says little once the SDK's own transport no longer goes through it; the
//! honest bar is the cheapest correct HTTP/1.1 call the same hyper can make. This target keeps
//! a small pool of `hyper::client::conn::http1` connections per instance (an idle list under a
//! lock, newest first, `TCP_NODELAY`, 1 s connect timeout: the SDK's settings), round-robin
//! over the instances, reads every body to its end and puts the connection back. No
//! balancer, breaker, retry, deadline, telemetry or URL handling: what is left is the cost of
//! hyper, the socket and the server.

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, PoisonError};
use std::time::Duration;

use bytes::Bytes;
use http_body_util::{BodyExt, Empty};
use hyper::client::conn::http1::{self, SendRequest};
use hyper_util::rt::TokioIo;
use tokio::net::TcpStream;

use super::target::Target;

type Sender = SendRequest<Empty<Bytes>>;

/// Connection timeout, as the SDK's default.
const CONNECT_TIMEOUT: Duration = Duration::from_secs(1);

/// One instance: its address, the request's path and its idle connections.
#[derive(Debug)]
struct Upstream {
    addr: String,
    path: String,
    idle: Mutex<Vec<Sender>>,
}

/// Round-robin GETs over raw hyper connections.
#[derive(Clone, Debug)]
pub struct RawHyper {
    upstreams: Arc<[Upstream]>,
    next: Arc<AtomicUsize>,
}

impl RawHyper {
    /// Calls `path` on each `127.0.0.1:port` in turn.
    pub fn new(ports: &[u16], path: &str) -> Self {
        Self {
            upstreams: ports
                .iter()
                .map(|port| Upstream {
                    addr: format!("127.0.0.1:{port}"),
                    path: path.to_owned(),
                    idle: Mutex::new(Vec::new()),
                })
                .collect(),
            next: Arc::default(),
        }
    }
}

impl Target for RawHyper {
    async fn call(&self) -> bool {
        if self.upstreams.is_empty() {
            return false;
        }
        let i = self.next.fetch_add(1, Ordering::Relaxed) % self.upstreams.len();
        get(&self.upstreams[i]).await.unwrap_or(false)
    }
}

/// One GET on an idle connection of `up` (or a new one); `None` when it failed.
async fn get(up: &Upstream) -> Option<bool> {
    let mut sender = match take_idle(up) {
        Some(sender) => sender,
        None => connect(&up.addr).await?,
    };
    let request = hyper::Request::get(up.path.as_str())
        .header(hyper::header::HOST, up.addr.as_str())
        .body(Empty::new())
        .ok()?;
    sender.ready().await.ok()?;
    let response = sender.send_request(request).await.ok()?;
    let ok = response.status().is_success();
    response.into_body().collect().await.ok()?;
    up.idle
        .lock()
        .unwrap_or_else(PoisonError::into_inner)
        .push(sender);
    Some(ok)
}

/// The newest idle connection still open.
fn take_idle(up: &Upstream) -> Option<Sender> {
    let mut idle = up.idle.lock().unwrap_or_else(PoisonError::into_inner);
    while let Some(sender) = idle.pop() {
        if !sender.is_closed() {
            return Some(sender);
        }
    }
    None
}

async fn connect(addr: &str) -> Option<Sender> {
    let stream = tokio::time::timeout(CONNECT_TIMEOUT, TcpStream::connect(addr))
        .await
        .ok()?
        .ok()?;
    stream.set_nodelay(true).ok()?;
    let (sender, connection) = http1::handshake(TokioIo::new(stream)).await.ok()?;
    tokio::spawn(connection);
    Some(sender)
}
