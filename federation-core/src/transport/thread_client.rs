//! The HTTP clients of a thread that drives its own calls ([`crate::driven::run_here`]).
//!
//! **Failure prevented.** A connection's task runs on the runtime that opened it; a call driven
//! on its own thread must not use a connection of the main runtime (it would wait for a worker,
//! the hand-off the driven mode exists to avoid), so each such thread keeps one client per
//! transport, made on first use and dropped with the thread.

use std::cell::RefCell;
use std::sync::{Arc, Weak};

use bytes::Bytes;
use http_body_util::Full;
use hyper_rustls::HttpsConnector;
use hyper_util::client::legacy::Client;
use hyper_util::client::legacy::connect::HttpConnector;
use hyper_util::rt::{TokioExecutor, TokioTimer};

use super::settings::PoolSettings;

/// The HTTP/1.1 and HTTP/2 client every attempt of one cluster goes through.
pub(crate) type HttpClient = Client<HttpsConnector<HttpConnector>, Full<Bytes>>;

/// A pooled client over `connector` with `pool`'s settings.
pub(crate) fn build_client(
    connector: HttpsConnector<HttpConnector>,
    pool: &PoolSettings,
) -> HttpClient {
    Client::builder(TokioExecutor::new())
        .pool_timer(TokioTimer::new())
        .timer(TokioTimer::new())
        .pool_max_idle_per_host(pool.max_idle_per_host)
        .pool_idle_timeout(pool.idle_timeout)
        .build(connector)
}

thread_local! {
    /// One HTTP client (connection pool) per transport, keyed by the transport's identity;
    /// entries of dropped transports are pruned when a new one is added.
    static CLIENTS: RefCell<Vec<(Weak<()>, HttpClient)>> = const { RefCell::new(Vec::new()) };
}

/// This thread's HTTP client for the transport identified by `owner`, made by `build` on first
/// use. Only meaningful inside [`run_here`](crate::driven::run_here), whose runtime the client's
/// connections then run on.
pub(crate) fn local_client<R>(
    owner: &Arc<()>,
    build: impl FnOnce() -> HttpClient,
    use_client: impl FnOnce(&HttpClient) -> R,
) -> R {
    CLIENTS.with(|clients| {
        let mut clients = clients.borrow_mut();
        let found = clients
            .iter()
            .position(|(key, _)| std::ptr::eq(key.as_ptr(), Arc::as_ptr(owner)));
        let index = match found {
            Some(i) => i,
            None => {
                clients.retain(|(key, _)| key.strong_count() > 0);
                clients.push((Arc::downgrade(owner), build()));
                clients.len() - 1
            }
        };
        use_client(&clients[index].1)
    })
}
