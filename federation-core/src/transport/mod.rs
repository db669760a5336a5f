//! HTTP transport per cluster: one pooled hyper client each, TLS, and bounded body reads.
//! Plain-HTTP/1.1 calls go through each instance's own connections instead (`http1_pool.rs`);
//! HTTPS, and calls a thread drives itself, use the hyper-util client described here.
//!
//! Failures prevented: a new connection per call (latency and port exhaustion), a hostile or
//! buggy upstream exhausting memory with a huge body, and a misconfigured certificate only
//! discovered on the first call in production. Each cluster gets one hyper-util client built at
//! startup (its connection pool is reused by every call; HTTP/2 when TLS negotiates it) with a
//! rustls configuration using the `ring` provider: plain-HTTP clusters get an empty trust store
//! (they never speak TLS), HTTPS clusters trust their `ca_file` or the platform roots and may
//! present a client certificate (mTLS). Certificates are read and checked when the client is
//! built. Bodies are streamed into a buffer that refuses to grow past
//! `limits.max_response_bytes`; redirects are not followed (a service's redirect is returned to
//! the caller).
//!
//! Why hyper-util directly and not reqwest (which the SDK used before): reqwest wraps the same
//! hyper-util client in layers a federation call does not need (it turns its `Url` back into a
//! `Uri` by printing and re-parsing it, re-parses it again in the redirect layer even with
//! redirects off, and boxes the response future twice). Callgrind on
//! `examples/call_cost.rs` (client, server and runtime together, c = 1): a plain reqwest call
//! 83.4k instructions, a bare hyper-util call 48.0k; the SDK's whole call went from 93.5k on
//! reqwest to 63.1k on hyper-util.

use std::sync::Arc;

use bytes::{Bytes, BytesMut};
use http::{HeaderMap, Method, Uri};
use http_body_util::{BodyExt, Full};
use hyper::body::{Body, Incoming};
use hyper_rustls::{HttpsConnector, HttpsConnectorBuilder};
use hyper_util::client::legacy::ResponseFuture;
use hyper_util::client::legacy::connect::HttpConnector;
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, PrivateKeyDer};
use tokio::time::Instant;

pub(crate) mod attempt_url;
pub(crate) mod http1_pool;
mod outcome;
mod settings;
mod thread_client;
pub(crate) mod timer_anchor;

pub(crate) use outcome::{Exchange, SendError};
pub(crate) use settings::PoolSettings;

use crate::config::{ClusterConfig, UpstreamTls};
use crate::error::{Error, HttpError};
use http1_pool::Http1Pool;
use thread_client::{HttpClient, build_client, local_client};

/// The HTTP client of one cluster.
#[derive(Clone, Debug)]
pub(crate) struct Transport {
    http: HttpClient,
    /// `http` or `https`.
    pub(crate) scheme: &'static str,
    /// What a calling thread needs to build its own pool for calls it drives itself
    /// ([`crate::driven`]); the `Arc` is the transport's identity in those per-thread pools.
    local: Arc<LocalRecipe>,
}

/// The parts of a cluster's client that a per-thread copy is built from.
#[derive(Debug)]
struct LocalRecipe {
    identity: Arc<()>,
    connector: HttpsConnector<HttpConnector>,
    pool: PoolSettings,
}

impl Transport {
    /// Builds the cluster's client, reading TLS material now so mistakes fail at startup.
    pub(crate) fn new(cluster: &ClusterConfig, pool: &PoolSettings) -> Result<Self, Error> {
        let pool = &pool.for_cluster(&cluster.connections);
        let (tls, scheme) = match &cluster.tls {
            Some(tls) => (tls_config(&cluster.name, tls)?, "https"),
            None => (plain_config(&cluster.name)?, "http"),
        };
        let mut tcp = HttpConnector::new();
        // The TLS layer below decides per URI scheme; plain-HTTP clusters never reach it.
        tcp.enforce_http(false);
        tcp.set_nodelay(pool.tcp_nodelay);
        tcp.set_connect_timeout(Some(pool.connect_timeout));
        let connector = HttpsConnectorBuilder::new()
            .with_tls_config(tls)
            .https_or_http()
            .enable_http1()
            .enable_http2()
            .wrap_connector(tcp);
        let http = build_client(connector.clone(), pool);
        let local = Arc::new(LocalRecipe {
            identity: Arc::new(()),
            connector,
            pool: pool.clone(),
        });
        Ok(Self {
            http,
            scheme,
            local,
        })
    }

    /// Starts `request` on the shared pool, or on the calling thread's own pool while that
    /// thread drives the call itself ([`crate::driven::run_here`]): a connection's task must
    /// run on the runtime that polls its calls.
    fn request(&self, request: http::Request<Full<Bytes>>) -> ResponseFuture {
        if crate::driven::active() {
            let recipe = &self.local;
            local_client(
                &recipe.identity,
                || build_client(recipe.connector.clone(), &recipe.pool),
                |http| http.request(request),
            )
        } else {
            self.http.request(request)
        }
    }
}

fn provider() -> Arc<rustls::crypto::CryptoProvider> {
    Arc::new(rustls::crypto::ring::default_provider())
}

fn tls_error(cluster: &str, what: &str, e: impl std::fmt::Display) -> Error {
    Error::config(format!("clusters.{cluster}.tls: {what}: {e}"))
}

/// A TLS configuration that trusts nothing: plain-HTTP clusters never use it, but the connector
/// needs one and we do not install a process-wide default provider.
fn plain_config(cluster: &str) -> Result<rustls::ClientConfig, Error> {
    Ok(rustls::ClientConfig::builder_with_provider(provider())
        .with_safe_default_protocol_versions()
        .map_err(|e| tls_error(cluster, "TLS versions", e))?
        .with_root_certificates(rustls::RootCertStore::empty())
        .with_no_client_auth())
}

fn read(cluster: &str, what: &str, path: &std::path::Path) -> Result<Vec<u8>, Error> {
    std::fs::read(path).map_err(|e| {
        tls_error(
            cluster,
            &format!("cannot read {what} {}", path.display()),
            e,
        )
    })
}

fn tls_config(cluster: &str, tls: &UpstreamTls) -> Result<rustls::ClientConfig, Error> {
    let provider = provider();
    let builder = rustls::ClientConfig::builder_with_provider(Arc::clone(&provider))
        .with_safe_default_protocol_versions()
        .map_err(|e| tls_error(cluster, "TLS versions", e))?;
    let builder = match &tls.ca_file {
        Some(path) => {
            let pem = read(cluster, "ca_file", path)?;
            let mut roots = rustls::RootCertStore::empty();
            for cert in CertificateDer::pem_slice_iter(&pem) {
                let cert = cert.map_err(|e| tls_error(cluster, "ca_file is not valid PEM", e))?;
                roots
                    .add(cert)
                    .map_err(|e| tls_error(cluster, "ca_file holds an unusable certificate", e))?;
            }
            if roots.is_empty() {
                return Err(tls_error(cluster, "ca_file", "no certificate found"));
            }
            builder.with_root_certificates(roots)
        }
        None => {
            let verifier = rustls_platform_verifier::Verifier::new(provider)
                .map_err(|e| tls_error(cluster, "platform trust store", e))?;
            builder
                .dangerous()
                .with_custom_certificate_verifier(Arc::new(verifier))
        }
    };
    match (&tls.client_cert, &tls.client_key) {
        (None, None) => Ok(builder.with_no_client_auth()),
        (Some(cert_path), Some(key_path)) => {
            let pem = read(cluster, "client_cert", cert_path)?;
            let chain = CertificateDer::pem_slice_iter(&pem)
                .collect::<Result<Vec<_>, _>>()
                .map_err(|e| tls_error(cluster, "client_cert is not valid PEM", e))?;
            if chain.is_empty() {
                return Err(tls_error(cluster, "client_cert", "no certificate found"));
            }
            let pem = read(cluster, "client_key", key_path)?;
            let key = PrivateKeyDer::from_pem_slice(&pem)
                .map_err(|e| tls_error(cluster, "client_key is not a PEM private key", e))?;
            builder
                .with_client_auth_cert(chain, key)
                .map_err(|e| tls_error(cluster, "client certificate and key do not match", e))
        }
        _ => Err(tls_error(
            cluster,
            "client_cert and client_key",
            "must be given together",
        )),
    }
}

/// Sends one request and reads the whole body, refusing bodies over `limit` bytes. A
/// plain-HTTP instance's own connections (`connections`, with the attempt's start as their idle
/// check's clock reading) carry it unless the calling thread drives the call itself; otherwise
/// the cluster's hyper-util client does.
pub(crate) async fn exchange(
    transport: &Transport,
    connections: Option<(&Arc<Http1Pool>, Instant)>,
    method: Method,
    uri: Uri,
    headers: HeaderMap,
    body: Bytes,
    limit: u64,
) -> Result<Exchange, SendError> {
    let mut request = http::Request::new(Full::new(body));
    *request.method_mut() = method;
    if let Some((pool, started)) = connections.filter(|_| !crate::driven::active()) {
        // The pipeline sets `Host` on every plain-HTTP attempt (the endpoint's precomputed one,
        // or the caller's own), which is the only way a request gets here.
        debug_assert!(headers.contains_key(http::header::HOST));
        // HTTP/1.1 to the origin server: the request line carries the path and query only.
        *request.uri_mut() = uri
            .path_and_query()
            .cloned()
            .map_or_else(Uri::default, Uri::from);
        *request.headers_mut() = headers;
        let settings = &transport.local.pool;
        let (response, connection) = pool.send(settings, request, started).await?;
        let exchange = read_response(response, limit).await?;
        pool.give_back(connection, settings, exchange.ended);
        return Ok(exchange);
    }
    *request.uri_mut() = uri;
    *request.headers_mut() = headers;
    let response = transport.request(request).await.map_err(|e| {
        if e.is_connect() {
            SendError::Connect(HttpError::new(&e))
        } else {
            SendError::Lost(HttpError::new(&e))
        }
    })?;
    read_response(response, limit).await
}

/// Reads a response's body to its end, refusing bodies over `limit` bytes.
async fn read_response(
    response: http::Response<Incoming>,
    limit: u64,
) -> Result<Exchange, SendError> {
    let (parts, mut body) = response.into_parts();
    // A declared length over the limit fails before any byte of the body is read.
    if body.size_hint().lower() > limit {
        return Err(SendError::TooLarge);
    }
    let body = read_capped(&mut body, limit).await?;
    Ok(Exchange {
        status: parts.status,
        headers: parts.headers,
        body,
        ended: Instant::now(),
    })
}

/// The next chunk of data (trailers are skipped); `None` at the end of the body.
async fn next_chunk(body: &mut Incoming) -> Result<Option<Bytes>, SendError> {
    while let Some(frame) = body.frame().await {
        let frame = frame.map_err(|e| SendError::Lost(HttpError::new(&e)))?;
        if let Ok(data) = frame.into_data() {
            return Ok(Some(data));
        }
    }
    Ok(None)
}

async fn read_capped(body: &mut Incoming, limit: u64) -> Result<Bytes, SendError> {
    let hint = body.size_hint().lower();
    let limit = usize::try_from(limit).unwrap_or(usize::MAX);
    // The common case is a body in one chunk: keep it without copying.
    let Some(first) = next_chunk(body).await? else {
        return Ok(Bytes::new());
    };
    if first.len() > limit {
        return Err(SendError::TooLarge);
    }
    let Some(second) = next_chunk(body).await? else {
        return Ok(first);
    };
    let hint = usize::try_from(hint).unwrap_or(0).min(limit);
    let mut buf = BytesMut::with_capacity(hint.max(first.len() + second.len()));
    buf.extend_from_slice(&first);
    let mut next = Some(second);
    while let Some(chunk) = next {
        if buf.len().saturating_add(chunk.len()) > limit {
            return Err(SendError::TooLarge);
        }
        buf.extend_from_slice(&chunk);
        next = next_chunk(body).await?;
    }
    Ok(buf.freeze())
}
