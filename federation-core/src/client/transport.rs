//! HTTP transport per cluster: one pooled reqwest client each, TLS, and bounded body reads.
//!
//! Failures prevented: a new connection per call (latency and port exhaustion), a hostile or
//! buggy upstream exhausting memory with a huge body, and a misconfigured certificate only
//! discovered on the first call in production. Each cluster gets one `reqwest::Client` built at
//! startup (its connection pool is reused by every call) with a rustls configuration using the
//! `ring` provider: plain-HTTP clusters get an empty trust store (they never speak TLS), HTTPS
//! clusters trust their `ca_file` or the platform roots and may present a client certificate
//! (mTLS). Certificates are read and checked when the client is built. Bodies are streamed into a
//! buffer that refuses to grow past `limits.max_response_bytes`; redirects are not followed (a
//! service's redirect is returned to the caller).

use std::sync::Arc;
use std::time::Duration;

use bytes::{Bytes, BytesMut};
use http::{HeaderMap, Method, StatusCode};
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, PrivateKeyDer};

use super::attempt_url::AttemptUrl;
use crate::config::{ClusterConfig, UpstreamTls};
use crate::error::Error;

/// Connection pool settings shared by every cluster's HTTP client.
#[derive(Clone, Debug)]
pub(crate) struct PoolSettings {
    pub(crate) max_idle_per_host: usize,
    pub(crate) idle_timeout: Duration,
    pub(crate) connect_timeout: Duration,
    pub(crate) tcp_nodelay: bool,
}

impl Default for PoolSettings {
    fn default() -> Self {
        Self {
            max_idle_per_host: 64,
            idle_timeout: Duration::from_secs(90),
            connect_timeout: Duration::from_secs(1),
            tcp_nodelay: true,
        }
    }
}

/// The HTTP client of one cluster.
#[derive(Clone, Debug)]
pub(crate) struct Transport {
    pub(crate) http: reqwest::Client,
    /// `http` or `https`.
    pub(crate) scheme: &'static str,
}

impl Transport {
    /// Builds the cluster's client, reading TLS material now so mistakes fail at startup.
    pub(crate) fn new(cluster: &ClusterConfig, pool: &PoolSettings) -> Result<Self, Error> {
        let (tls, scheme) = match &cluster.tls {
            Some(tls) => (tls_config(&cluster.name, tls)?, "https"),
            None => (plain_config(&cluster.name)?, "http"),
        };
        let http = reqwest::Client::builder()
            .use_preconfigured_tls(tls)
            .pool_max_idle_per_host(pool.max_idle_per_host)
            .pool_idle_timeout(pool.idle_timeout)
            .connect_timeout(pool.connect_timeout)
            .tcp_nodelay(pool.tcp_nodelay)
            .redirect(reqwest::redirect::Policy::none())
            .build()
            .map_err(|e| {
                Error::config(format!(
                    "clusters.{}: cannot build the HTTP client: {e}",
                    cluster.name
                ))
            })?;
        Ok(Self { http, scheme })
    }
}

fn provider() -> Arc<rustls::crypto::CryptoProvider> {
    Arc::new(rustls::crypto::ring::default_provider())
}

fn tls_error(cluster: &str, what: &str, e: impl std::fmt::Display) -> Error {
    Error::config(format!("clusters.{cluster}.tls: {what}: {e}"))
}

/// A TLS configuration that trusts nothing: plain-HTTP clusters never use it, but reqwest needs a
/// provider and we do not install a process-wide default.
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

/// Why one exchange failed.
#[derive(Debug)]
pub(crate) enum SendError {
    /// No connection: the request never reached the server.
    Connect(reqwest::Error),
    /// The exchange broke after the request may have been sent.
    Lost(reqwest::Error),
    /// The body exceeded the limit.
    TooLarge,
}

/// A fully read response.
pub(crate) struct Exchange {
    pub(crate) status: StatusCode,
    pub(crate) headers: HeaderMap,
    pub(crate) body: Bytes,
}

/// Sends one request and reads the whole body, refusing bodies over `limit` bytes.
pub(crate) async fn exchange(
    http: &reqwest::Client,
    method: Method,
    url: AttemptUrl,
    headers: HeaderMap,
    body: Bytes,
    limit: u64,
) -> Result<Exchange, SendError> {
    let request = match url {
        // The common case: the request is assembled here, its header map moved in whole
        // (the builder's `headers()` would re-insert every header into an empty map).
        AttemptUrl::Parsed(url) => {
            let mut request = reqwest::Request::new(method, url);
            *request.headers_mut() = headers;
            if !body.is_empty() {
                *request.body_mut() = Some(body.into());
            }
            request
        }
        // An origin no URL can carry: reqwest parses the string and reports what is wrong.
        AttemptUrl::Raw(url) => {
            let mut builder = http.request(method, url).headers(headers);
            if !body.is_empty() {
                builder = builder.body(body);
            }
            builder.build().map_err(SendError::Lost)?
        }
    };
    let mut response = http.execute(request).await.map_err(|e| {
        if e.is_connect() {
            SendError::Connect(e)
        } else {
            SendError::Lost(e)
        }
    })?;
    if response.content_length().is_some_and(|len| len > limit) {
        return Err(SendError::TooLarge);
    }
    let status = response.status();
    let headers = std::mem::take(response.headers_mut());
    let body = read_capped(&mut response, limit).await?;
    Ok(Exchange {
        status,
        headers,
        body,
    })
}

async fn read_capped(response: &mut reqwest::Response, limit: u64) -> Result<Bytes, SendError> {
    let limit = usize::try_from(limit).unwrap_or(usize::MAX);
    // The common case is a body in one chunk: keep it without copying.
    let Some(first) = response.chunk().await.map_err(SendError::Lost)? else {
        return Ok(Bytes::new());
    };
    if first.len() > limit {
        return Err(SendError::TooLarge);
    }
    let Some(second) = response.chunk().await.map_err(SendError::Lost)? else {
        return Ok(first);
    };
    let hint = response
        .content_length()
        .and_then(|n| usize::try_from(n).ok())
        .unwrap_or(0)
        .min(limit);
    let mut buf = BytesMut::with_capacity(hint.max(first.len() + second.len()));
    buf.extend_from_slice(&first);
    let mut next = Some(second);
    while let Some(chunk) = next {
        if buf.len().saturating_add(chunk.len()) > limit {
            return Err(SendError::TooLarge);
        }
        buf.extend_from_slice(&chunk);
        next = response.chunk().await.map_err(SendError::Lost)?;
    }
    Ok(buf.freeze())
}
