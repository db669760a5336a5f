//! Listener and connection bookkeeping, so the double can really go down and come back.
//!
//! "Consul is down" is a transport failure (connection refused, open connections reset),
//! not an HTTP error, and failover logic must be tested against the real thing. The double
//! tracks its accept task and every connection task; [`ServerControl::stop`] aborts them, which
//! closes the listening socket and drops open connections (blocked queries included). Coming
//! back binds the *same* port again with `SO_REUSEADDR`, retrying in the background if the
//! port is briefly unavailable. HTTP/1.1 headers go out title-cased (`X-Consul-Knownleader`),
//! as Go writes them.

use std::collections::HashMap;
use std::convert::Infallible;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, Weak};
use std::time::Duration;

use hyper::server::conn::http1;
use hyper::service::service_fn;
use hyper_util::rt::TokioIo;
use tokio::net::{TcpListener, TcpSocket};
use tokio::task::AbortHandle;

use super::routes;
use super::shared::{Shared, lock};

/// Control over the accept loop and open connections.
pub(crate) struct ServerControl {
    addr: SocketAddr,
    shut_down: AtomicBool,
    accept: Mutex<Option<AbortHandle>>,
    connections: Mutex<Connections>,
}

#[derive(Default)]
struct Connections {
    next_id: u64,
    live: HashMap<u64, AbortHandle>,
}

/// Binds a listening socket with `SO_REUSEADDR`, so a stopped double can rebind its port.
pub(crate) fn bind(addr: SocketAddr) -> std::io::Result<TcpListener> {
    let socket = if addr.is_ipv4() {
        TcpSocket::new_v4()?
    } else {
        TcpSocket::new_v6()?
    };
    socket.set_reuseaddr(true)?;
    socket.bind(addr)?;
    socket.listen(1024)
}

impl ServerControl {
    pub(crate) fn new(addr: SocketAddr) -> Self {
        Self {
            addr,
            shut_down: AtomicBool::new(false),
            accept: Mutex::new(None),
            connections: Mutex::new(Connections::default()),
        }
    }

    /// The bound address (stable across down/up cycles).
    pub(crate) fn addr(&self) -> SocketAddr {
        self.addr
    }

    /// Stops for good: a later `clear_fault` must not bring the listener back.
    pub(crate) fn shut_down(&self) {
        self.shut_down.store(true, Ordering::SeqCst);
        self.stop();
    }

    /// Closes the listener and drops every open connection.
    pub(crate) fn stop(&self) {
        if let Some(accept) = lock(&self.accept).take() {
            accept.abort();
        }
        for (_, connection) in lock(&self.connections).live.drain() {
            connection.abort();
        }
    }

    /// Whether the accept loop is running (or being restarted).
    pub(crate) fn is_listening(&self) -> bool {
        lock(&self.accept).is_some()
    }

    fn track(&self, connection: AbortHandle) -> u64 {
        let mut connections = lock(&self.connections);
        connections.live.retain(|_, task| !task.is_finished());
        connections.next_id += 1;
        let id = connections.next_id;
        connections.live.insert(id, connection);
        id
    }

    fn forget(&self, id: u64) {
        lock(&self.connections).live.remove(&id);
    }
}

/// Starts accepting on `listener`.
pub(crate) fn serve(shared: &Arc<Shared>, listener: TcpListener) {
    let task = shared
        .runtime
        .spawn(accept_loop(Arc::downgrade(shared), listener));
    if let Some(old) = lock(&shared.server.accept).replace(task.abort_handle()) {
        old.abort();
    }
}

/// Binds the original port again and serves; retries in the background while it is busy.
pub(crate) fn restart(shared: &Arc<Shared>) {
    if shared.server.is_listening() || shared.server.shut_down.load(Ordering::SeqCst) {
        return;
    }
    let addr = shared.server.addr;
    let bound = {
        let _runtime = shared.runtime.enter();
        bind(addr)
    };
    match bound {
        Ok(listener) => serve(shared, listener),
        Err(error) => {
            tracing::warn!(%addr, %error, "consul double: rebinding failed, retrying");
            let weak = Arc::downgrade(shared);
            let task = shared.runtime.spawn(async move {
                loop {
                    tokio::time::sleep(Duration::from_millis(20)).await;
                    if let Ok(listener) = bind(addr) {
                        if let Some(shared) = weak.upgrade() {
                            accept_loop(Arc::downgrade(&shared), listener).await;
                        }
                        return;
                    }
                }
            });
            *lock(&shared.server.accept) = Some(task.abort_handle());
        }
    }
}

async fn accept_loop(shared: Weak<Shared>, listener: TcpListener) {
    loop {
        let stream = match listener.accept().await {
            Ok((stream, _peer)) => stream,
            Err(error) => {
                // Typically EMFILE under load: back off briefly instead of spinning.
                tracing::debug!(%error, "consul double: accept failed");
                tokio::time::sleep(Duration::from_millis(10)).await;
                continue;
            }
        };
        let Some(strong) = shared.upgrade() else {
            return;
        };
        let _no_delay = stream.set_nodelay(true);
        let for_requests = shared.clone();
        let for_cleanup = shared.clone();
        let (id_sender, id_receiver) = tokio::sync::oneshot::channel::<u64>();
        let task = strong.runtime.spawn(async move {
            let service = service_fn(move |request| {
                let shared = for_requests.clone();
                async move { Ok::<_, Infallible>(routes::handle(shared, request).await) }
            });
            let served = http1::Builder::new()
                .title_case_headers(true)
                .serve_connection(TokioIo::new(stream), service)
                .await;
            if let Err(error) = served {
                tracing::trace!(%error, "consul double: connection ended with an error");
            }
            if let (Ok(id), Some(shared)) = (id_receiver.await, for_cleanup.upgrade()) {
                shared.server.forget(id);
            }
        });
        let id = strong.server.track(task.abort_handle());
        let _finished_already = id_sender.send(id);
    }
}
