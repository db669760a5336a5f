//! The connection a watch's blocking queries wait on: exactly one HTTP/1.1 connection per
//! watch, owned by its loop, holding as little memory as possible while its query waits.
//!
//! Failure this prevents: a client watching thousands of services holding far more memory per
//! watch than its answers need (heaptrack of the S1 client, docs/BENCHMARKS.md "S1: what a
//! watch costs"):
//! - **idle twins**: with a general pool, the blocking query that follows an answer at once
//!   often finds the previous connection not yet back in the pool, opens a second one, and
//!   the loser then sits idle for the idle timeout (3,745 connections for 2,000 watches, each
//!   with its task, buffers and channel). Here the loop keeps its connection and sends the next
//!   query on it once it is ready again;
//! - **per-connection buffers**: a hyper connection reserves an 8 KiB read buffer, an 8 KiB
//!   write buffer, a request channel and a task for its whole life (≈ 28 KiB), 55 MiB for
//!   2,000 watches. For a plain-HTTP agent (`http://`, the common case) the watch therefore
//!   speaks HTTP/1.1 itself on a bare TCP stream (`plain.rs`): while waiting it holds the
//!   socket only, and buffers exist while an answer is being read.
//!
//! HTTPS agents keep a hyper connection (its read buffer capped at hyper's minimum,
//! [`READ_BUFFER`]): a TLS session holds its own record buffers and keys, tens of KiB per
//! connection, which dominate what hyper adds, so a TLS variant of the plain reader would not
//! change the order of the cost. HTTP/1.1 needs one connection per request in flight, and a
//! Consul agent serves plain HTTP/1.1 only, so long polls cannot share connections: what each
//! one keeps while waiting is what has to be small. TLS and the connect timeout are the same
//! for both (platform roots plus the configured CA file).

use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use http_body_util::{BodyExt, Empty};
use hyper::body::Incoming;
use hyper::client::conn::http1::{self, SendRequest};
use hyper_rustls::{HttpsConnector, HttpsConnectorBuilder};
use hyper_util::client::legacy::connect::HttpConnector;
use rustls::pki_types::CertificateDer;
use rustls::pki_types::pem::PemObject;
use tower_service::Service;

use super::plain::{self, Answer, ExchangeError, Limits, PlainConnection};

/// hyper's smallest allowed read-buffer limit, and the head limit of the plain reader:
/// response heads up to 8 KiB (Consul's are under 1 KiB), and no read buffer above 8 KiB.
pub(crate) const READ_BUFFER: usize = 8192;

/// Boxed error of a connect or an exchange.
pub(crate) type PollError = Box<dyn std::error::Error + Send + Sync>;

/// The open connection of one watch (kept between its queries).
#[derive(Debug)]
pub(crate) enum Connection {
    /// To a plain-HTTP agent: the watch's own HTTP/1.1 exchange (`plain.rs`).
    Plain(PlainConnection),
    /// To an HTTPS agent: a hyper connection (its task runs until the sender is dropped).
    Tls(SendRequest<Empty<Bytes>>),
}

/// One blocking query.
#[derive(Debug)]
pub(crate) struct Query<'a> {
    /// Absolute URI (scheme, authority, path and query).
    pub(crate) uri: &'a http::Uri,
    /// The ACL token, sent in `X-Consul-Token`.
    pub(crate) token: Option<&'a str>,
    pub(crate) limits: Limits,
}

/// What an exchange returns: the answer and the connection to keep, if it can carry the next
/// query.
type Exchanged = (Answer, Option<Connection>);

/// Opens connections to one Consul agent (HTTP or HTTPS by the URI's scheme).
#[derive(Clone, Debug)]
pub(crate) struct Connector {
    inner: HttpsConnector<HttpConnector>,
    connect_timeout: Duration,
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
        Ok(Self {
            inner,
            connect_timeout,
        })
    }

    /// Sends `query` on `kept` when it is still usable, else on a new connection; a kept
    /// connection the agent closed before answering is replaced once. Returns the answer,
    /// read to its end, and the connection when it can carry the next query.
    pub(crate) async fn exchange(
        &self,
        kept: Option<Connection>,
        query: &Query<'_>,
    ) -> Result<Exchanged, ExchangeError> {
        if query.uri.scheme_str() == Some("https") {
            let kept = match kept {
                Some(Connection::Tls(sender)) => Some(sender),
                _ => None,
            };
            // Boxed: a watch's future is as large as its largest await, and the hyper/TLS
            // exchange is several times the plain one, which every `http://` watch would
            // otherwise carry for nothing (S1, docs/BENCHMARKS.md).
            return Box::pin(self.tls_exchange(kept, query)).await;
        }
        let kept = match kept {
            Some(Connection::Plain(conn)) => Some(conn),
            _ => None,
        };
        self.plain_exchange(kept, query).await
    }

    async fn plain_exchange(
        &self,
        kept: Option<PlainConnection>,
        query: &Query<'_>,
    ) -> Result<Exchanged, ExchangeError> {
        let uri = query.uri;
        let target = uri.path_and_query().map_or("/", |p| p.as_str());
        let authority = uri.authority().map_or("", |a| a.as_str());
        let request =
            plain::request(target, authority, query.token).map_err(ExchangeError::Request)?;
        let keep = |(answer, conn): (Answer, Option<PlainConnection>)| {
            (answer, conn.map(Connection::Plain))
        };
        if let Some(conn) = kept.filter(PlainConnection::reusable) {
            match conn.exchange(&request, query.limits).await {
                // Closed by the agent before it answered (idle timeout, restart): a GET is
                // safe to send again, once, on a new connection.
                Err(ExchangeError::Unanswered(e)) => {
                    tracing::debug!(error = %e, "kept Consul watch connection closed; reconnecting");
                }
                other => return other.map(keep),
            }
        }
        let host = uri.host().unwrap_or_default();
        let host = host.trim_start_matches('[').trim_end_matches(']');
        let port = uri.port_u16().unwrap_or(80);
        let conn = PlainConnection::connect(host, port, self.connect_timeout).await?;
        conn.exchange(&request, query.limits).await.map(keep)
    }

    async fn tls_exchange(
        &self,
        kept: Option<SendRequest<Empty<Bytes>>>,
        query: &Query<'_>,
    ) -> Result<Exchanged, ExchangeError> {
        let uri = query.uri;
        let host = uri.authority().map_or("", |a| a.as_str());
        let origin_form = uri.path_and_query().map_or("/", |p| p.as_str());
        let mut request = http::Request::get(origin_form).header(http::header::HOST, host);
        if let Some(token) = query.token {
            request = request.header("x-consul-token", token);
        }
        let request = request
            .body(Empty::new())
            .map_err(|e| ExchangeError::Request(e.to_string()))?;
        let (resp, sender) = self
            .send(kept, uri, request)
            .await
            .map_err(ExchangeError::Transport)?;
        let status = resp.status();
        let index = resp
            .headers()
            .get("x-consul-index")
            .map(|v| v.as_bytes().to_vec());
        let body = read_incoming(resp, query.limits.body).await?;
        let answer = Answer {
            status,
            index,
            body,
        };
        Ok((answer, Some(Connection::Tls(sender))))
    }

    /// A new connection to `uri`'s authority; its task runs until the connection closes or
    /// the returned sender is dropped.
    async fn connect(&self, uri: &http::Uri) -> Result<SendRequest<Empty<Bytes>>, PollError> {
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
    async fn send(
        &self,
        kept: Option<SendRequest<Empty<Bytes>>>,
        uri: &http::Uri,
        mut request: http::Request<Empty<Bytes>>,
    ) -> Result<(http::Response<Incoming>, SendRequest<Empty<Bytes>>), PollError> {
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

/// Reads a hyper answer's whole body, chunk by chunk; more than `max_body` bytes (announced or
/// received) is refused and the rest never read.
async fn read_incoming(
    resp: http::Response<Incoming>,
    max_body: usize,
) -> Result<Vec<u8>, ExchangeError> {
    let announced = resp
        .headers()
        .get(http::header::CONTENT_LENGTH)
        .and_then(|v| v.to_str().ok()?.trim().parse::<u64>().ok());
    if let Some(len) = announced
        && len > max_body as u64
    {
        return Err(ExchangeError::TooLarge(len.to_string()));
    }
    let mut incoming = resp.into_body();
    let mut body = Vec::new();
    while let Some(frame) = incoming.frame().await {
        let frame = frame.map_err(|e| ExchangeError::Transport(Box::new(e)))?;
        let Ok(chunk) = frame.into_data() else {
            continue;
        };
        if body.len() + chunk.len() > max_body {
            return Err(ExchangeError::TooLarge(format!("over {max_body}")));
        }
        body.extend_from_slice(&chunk);
    }
    Ok(body)
}

#[cfg(test)]
#[path = "long_poll_tests.rs"]
pub(super) mod tests;
