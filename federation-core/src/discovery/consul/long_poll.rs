//! The connection a watch's blocking queries wait on: exactly one HTTP/1.1 connection per
//! watch, owned by its loop, with a read buffer that cannot grow past [`READ_BUFFER`].
//!
//! Failure this prevents: a client watching thousands of services holding far more memory per
//! watch than its answers need (heaptrack of the S1 client, docs/BENCHMARKS.md "S1 follow-up"):
//! - **idle twins**: with a general pool, the blocking query that follows an answer at once
//!   often finds the previous connection not yet back in the pool, opens a second one, and
//!   the loser then sits idle for the idle timeout (3,745 connections for 2,000 watches, each
//!   with its task, buffers and channel). Here the loop keeps its connection and sends the next
//!   query on it once it is ready again;
//! - **grown read buffers**: hyper's adaptive read buffer doubles on every full read up to
//!   ~400 KiB and a waiting connection keeps it reserved (16 KiB and more per watch for a
//!   20-instance answer). Here it is capped at hyper's minimum (8 KiB); answers of any size up
//!   to the body limit still work, in more reads.
//!
//! HTTP/1.1 needs one connection per request in flight, and a Consul agent serves plain HTTP/1.1
//! only, so long polls cannot share connections: what each one keeps while waiting is what has
//! to be small. TLS and the connect timeout are the same as before (platform roots plus the
//! configured CA file).

use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use http_body_util::Empty;
use hyper::body::Incoming;
use hyper::client::conn::http1::{self, SendRequest};
use hyper_rustls::{HttpsConnector, HttpsConnectorBuilder};
use hyper_util::client::legacy::connect::HttpConnector;
use rustls::pki_types::CertificateDer;
use rustls::pki_types::pem::PemObject;
use tower_service::Service;

/// hyper's smallest allowed read-buffer limit: response heads up to 8 KiB (Consul's are under
/// 1 KiB), and no read buffer above 8 KiB.
pub(crate) const READ_BUFFER: usize = 8192;

/// Boxed error of a connect or an exchange.
pub(crate) type PollError = Box<dyn std::error::Error + Send + Sync>;

/// The open connection of one watch (kept between its queries).
pub(crate) type Connection = SendRequest<Empty<Bytes>>;

/// Opens connections to one Consul agent (HTTP or HTTPS by the URI's scheme).
#[derive(Clone, Debug)]
pub(crate) struct Connector {
    inner: HttpsConnector<HttpConnector>,
}

impl Connector {
    /// `ca_pem` (a PEM bundle) is trusted on top of the platform's roots, as reqwest's
    /// `add_root_certificate` does. The error says what is wrong with the bundle.
    pub(crate) fn new(connect_timeout: Duration, ca_pem: Option<&[u8]>) -> Result<Self, String> {
        let provider = Arc::new(rustls::crypto::ring::default_provider());
        let extra = match ca_pem {
            Some(pem) => CertificateDer::pem_slice_iter(pem)
                .collect::<Result<Vec<_>, _>>()
                .map_err(|e| format!("invalid PEM: {e}"))?,
            None => Vec::new(),
        };
        if ca_pem.is_some() && extra.is_empty() {
            return Err("no certificate found".to_owned());
        }
        let verifier =
            rustls_platform_verifier::Verifier::new_with_extra_roots(extra, Arc::clone(&provider))
                .map_err(|e| format!("unusable certificate: {e}"))?;
        let tls = rustls::ClientConfig::builder_with_provider(provider)
            .with_safe_default_protocol_versions()
            .map_err(|e| format!("TLS versions: {e}"))?
            .dangerous()
            .with_custom_certificate_verifier(Arc::new(verifier))
            .with_no_client_auth();
        let mut tcp = HttpConnector::new();
        tcp.enforce_http(false);
        tcp.set_nodelay(true);
        tcp.set_connect_timeout(Some(connect_timeout));
        let inner = HttpsConnectorBuilder::new()
            .with_tls_config(tls)
            .https_or_http()
            .enable_http1()
            .wrap_connector(tcp);
        Ok(Self { inner })
    }

    /// A new connection to `uri`'s authority; its task runs until the connection closes or
    /// the returned sender is dropped.
    async fn connect(&self, uri: &http::Uri) -> Result<Connection, PollError> {
        let mut connector = self.inner.clone();
        std::future::poll_fn(|cx| connector.poll_ready(cx)).await?;
        let io = connector.call(uri.clone()).await?;
        let (sender, connection) = http1::Builder::new()
            .max_buf_size(READ_BUFFER)
            .handshake(io)
            .await?;
        tokio::spawn(async move {
            if let Err(e) = connection.await {
                tracing::debug!(error = %e, "Consul watch connection closed");
            }
        });
        Ok(sender)
    }

    /// Sends `request` on `kept` when it is still usable, else on a new connection; a kept
    /// connection that closed before the request was written to it is replaced once. Returns
    /// the response and the connection, to keep once the body has been read to its end.
    pub(crate) async fn send(
        &self,
        kept: Option<Connection>,
        uri: &http::Uri,
        mut request: http::Request<Empty<Bytes>>,
    ) -> Result<(http::Response<Incoming>, Connection), PollError> {
        if let Some(mut sender) = kept
            && sender.ready().await.is_ok()
        {
            match sender.try_send_request(request).await {
                Ok(response) => return Ok((response, sender)),
                Err(mut e) => match e.take_message() {
                    Some(unsent) => request = unsent,
                    None => return Err(e.into_error().into()),
                },
            }
        }
        let mut sender = self.connect(uri).await?;
        let response = sender.send_request(request).await?;
        Ok((response, sender))
    }
}

#[cfg(test)]
#[path = "long_poll_tests.rs"]
mod tests;
