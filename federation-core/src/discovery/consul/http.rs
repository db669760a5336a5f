//! The HTTP side of a Consul source: URLs, the ACL token header, timeouts, status mapping.
//!
//! Failures this prevents: a read timeout shorter than `wait + wait/16` (the server's jitter)
//! turning every idle blocking query into an error loop; service names with `/` or spaces
//! breaking the path (segments are percent-encoded by a URL builder, never `format!`); the token
//! leaking into URLs or logs (it travels only in `X-Consul-Token`); and `?dc`/`?ns` being sent to
//! Consul CE (they are never sent); and a broken or hostile agent answering an endless body
//! exhausting memory (bodies are read chunk by chunk up to [`MAX_BODY`], then refused).

use std::time::Duration;

use reqwest::{Method, StatusCode, Url};

use super::long_poll::{Connection, Connector, Query, READ_BUFFER};
use super::plain::{Answer, ExchangeError, Limits};
use super::wire::{Parsed, parse_health};
use crate::config::{ConsulSource, Secret};
use crate::discovery::tuning::DiscoveryTuning;
use crate::discovery::{DiscoveryError, DiscoveryErrorKind};

/// Consul's `max_query_time`: longer waits are capped by the server.
const MAX_WAIT: Duration = Duration::from_secs(600);
/// Header carrying the ACL token.
const TOKEN_HEADER: &str = "x-consul-token";
/// Largest `/v1/health/service` body read: far above any real answer (a 20 000-instance
/// service is ~30 MiB of JSON), low enough that a runaway answer cannot exhaust memory.
pub(crate) const MAX_BODY: usize = 64 * 1024 * 1024;

/// One successful `/v1/health/service` answer.
#[derive(Debug)]
pub(crate) struct HealthAnswer {
    /// The parsed instances.
    pub(crate) parsed: Parsed,
    /// `X-Consul-Index` as sent (not yet clamped).
    pub(crate) index: u64,
}

/// A configured HTTP client for one cluster's Consul agent.
#[derive(Clone, Debug)]
pub(crate) struct ConsulHttp {
    cluster: String,
    base: Url,
    token: Option<String>,
    datacenter: Option<String>,
    wait: Duration,
    margin: Duration,
    max_body: usize,
    client: reqwest::Client,
    /// Opens the watches' own connections for blocking queries (small read buffers,
    /// `long_poll.rs`); the rest (registration) goes through `client`.
    poll: Connector,
}

impl ConsulHttp {
    /// `(host, port)` of the agent, for a TCP connect (`recover.rs`).
    pub(crate) fn agent_address(&self) -> Option<(String, u16)> {
        let host = self.base.host_str()?;
        let host = host
            .trim_start_matches('[')
            .trim_end_matches(']')
            .to_owned();
        Some((host, self.base.port_or_known_default()?))
    }

    /// Builds the client with the already resolved ACL `token`. Reads the CA file now, so
    /// configuration mistakes surface at start-up. Needs no runtime and does no network I/O.
    pub(crate) fn new(
        cluster: &str,
        source: &ConsulSource,
        token: Option<&Secret>,
        tuning: &DiscoveryTuning,
    ) -> Result<Self, DiscoveryError> {
        let config_err =
            |msg: String| DiscoveryError::new(cluster, DiscoveryErrorKind::Config, msg);
        let base = Url::parse(source.address.trim()).map_err(|e| {
            config_err(format!(
                "invalid Consul address {:?}: {e} (expected e.g. http://consul:8500)",
                source.address
            ))
        })?;
        if !matches!(base.scheme(), "http" | "https") || base.cannot_be_a_base() {
            return Err(config_err(format!(
                "invalid Consul address {:?}: only http:// and https:// URLs are allowed",
                source.address
            )));
        }
        let token = token
            .map(|t| t.expose().trim().to_owned())
            .filter(|t| !t.is_empty());
        super::ensure_crypto_provider();
        let mut builder = reqwest::Client::builder()
            .connect_timeout(tuning.connect_timeout)
            .pool_idle_timeout(Duration::from_secs(90));
        let ca_pem = match &source.ca_file {
            Some(path) => Some(std::fs::read(path).map_err(|e| {
                config_err(format!(
                    "cannot read Consul CA file {}: {e}",
                    path.display()
                ))
            })?),
            None => None,
        };
        if let (Some(path), Some(pem)) = (&source.ca_file, &ca_pem) {
            let certs = reqwest::Certificate::from_pem_bundle(pem).map_err(|e| {
                config_err(format!(
                    "invalid PEM in Consul CA file {}: {e}",
                    path.display()
                ))
            })?;
            for cert in certs {
                builder = builder.add_root_certificate(cert);
            }
        }
        let client = builder
            .build()
            .map_err(|e| config_err(format!("cannot build the Consul HTTP client: {e}")))?;
        let poll = Connector::new(tuning.connect_timeout, ca_pem.as_deref()).map_err(|e| {
            let file = source.ca_file.as_ref().map(|p| p.display().to_string());
            config_err(format!("Consul CA file {}: {e}", file.unwrap_or_default()))
        })?;
        Ok(Self {
            cluster: cluster.to_owned(),
            base,
            token,
            datacenter: source.datacenter.clone().filter(|dc| !dc.is_empty()),
            wait: effective_wait(source.wait),
            margin: tuning.request_margin,
            max_body: MAX_BODY,
            client,
            poll,
        })
    }

    /// `{base}/v1/<segments...>` with each segment percent-encoded.
    fn url(&self, segments: &[&str], query: &[(&str, &str)]) -> Url {
        let mut url = self.base.clone();
        if let Ok(mut path) = url.path_segments_mut() {
            path.pop_if_empty().push("v1").extend(segments);
        }
        if !query.is_empty() {
            let mut pairs = url.query_pairs_mut();
            for (k, v) in query {
                pairs.append_pair(k, v);
            }
        }
        url
    }

    fn request(&self, method: Method, url: Url, timeout: Duration) -> reqwest::RequestBuilder {
        let mut req = self.client.request(method, url).timeout(timeout);
        if let Some(token) = &self.token {
            req = req.header(TOKEN_HEADER, token);
        }
        req
    }

    /// `GET /v1/health/service/<service>?index=..&wait=..` (index 0 = non-blocking), on the
    /// caller's connection `conn` when it is still usable (else on a new one, left in `conn`
    /// once the answer was read to its end; `None` after any failure).
    pub(crate) async fn health_service(
        &self,
        service: &str,
        index: u64,
        conn: &mut Option<Connection>,
    ) -> Result<HealthAnswer, DiscoveryError> {
        let what = format!("watching `{service}`");
        let wait = go_duration(self.wait);
        let index_text = index.to_string();
        let query: Vec<(&str, &str)> = if index > 0 {
            vec![("index", index_text.as_str()), ("wait", wait.as_str())]
        } else {
            Vec::new()
        };
        let url = self.url(&["health", "service", service], &query);
        // A blocking query may be held for `wait` plus Consul's jitter (< wait/16): allow for
        // both plus a margin. A non-blocking read answers at once, so a hung agent is detected
        // quickly at start-up and after errors.
        let timeout = if index > 0 {
            self.wait + self.wait / 16 + self.margin
        } else {
            self.margin * 2
        };
        let answer = match tokio::time::timeout(timeout, self.poll_once(&what, url, conn)).await {
            Ok(answer) => answer?,
            Err(_) => {
                let message = format!(
                    "{what}: Consul agent at {} did not answer in time",
                    self.base
                );
                return Err(self.error(DiscoveryErrorKind::Timeout, message));
            }
        };
        if answer.status != StatusCode::OK {
            return Err(DiscoveryError::from_status(
                &self.cluster,
                &what,
                answer.status.as_u16(),
                &String::from_utf8_lossy(&answer.body),
            ));
        }
        let index = match answer.index.as_deref().map(header_text) {
            Some(Some(text)) => text.parse::<u64>().map_err(|_| {
                self.error(
                    DiscoveryErrorKind::Parse,
                    format!("{what}: invalid X-Consul-Index {text:?}"),
                )
            })?,
            Some(None) => {
                return Err(self.error(
                    DiscoveryErrorKind::Parse,
                    format!("{what}: X-Consul-Index is not text"),
                ));
            }
            None => {
                return Err(self.error(
                    DiscoveryErrorKind::Parse,
                    format!("{what}: the answer has no X-Consul-Index header"),
                ));
            }
        };
        let parsed = parse_health(service, &answer.body)
            .map_err(|e| self.error(DiscoveryErrorKind::Parse, format!("{what}: {}", e.0)))?;
        if let (Some(want), Some(got)) = (&self.datacenter, &parsed.datacenter)
            && !want.eq_ignore_ascii_case(got)
        {
            return Err(self.error(
                DiscoveryErrorKind::Config,
                format!(
                    "{what}: the Consul agent at {} serves datacenter `{got}`, but the cluster \
                     expects `{want}` (is the address pointing at the other cluster?)",
                    self.base
                ),
            ));
        }
        Ok(HealthAnswer { parsed, index })
    }

    /// `PUT /v1/<segments>` with an optional JSON body; success is any 2xx.
    pub(crate) async fn put(
        &self,
        what: &str,
        segments: &[&str],
        query: &[(&str, &str)],
        body: Option<Vec<u8>>,
    ) -> Result<(), DiscoveryError> {
        let url = self.url(segments, query);
        let mut req = self.request(Method::PUT, url, self.margin.max(Duration::from_secs(5)));
        if let Some(body) = body {
            req = req.header("content-type", "application/json").body(body);
        }
        let resp = req.send().await.map_err(|e| self.request_error(what, &e))?;
        let status = resp.status();
        if status.is_success() {
            return Ok(());
        }
        let body = resp.text().await.unwrap_or_default();
        Err(DiscoveryError::from_status(
            &self.cluster,
            what,
            status.as_u16(),
            &body,
        ))
    }

    /// Sends one blocking query on the watch's connection and reads the whole answer; more
    /// than `max_body` bytes (announced or received) is a parse error naming the cluster, and
    /// the rest is never read.
    async fn poll_once(
        &self,
        what: &str,
        url: Url,
        conn: &mut Option<Connection>,
    ) -> Result<Answer, DiscoveryError> {
        let kept = conn.take();
        let bad_request =
            |e: String| self.error(DiscoveryErrorKind::Config, format!("{what}: {e}"));
        let uri: http::Uri = url
            .as_str()
            .parse()
            .map_err(|e| bad_request(format!("{e}")))?;
        let query = Query {
            uri: &uri,
            token: self.token.as_deref(),
            limits: Limits {
                head: READ_BUFFER,
                body: self.max_body,
            },
        };
        let (answer, kept) = self
            .poll
            .exchange(kept, &query)
            .await
            .map_err(|e| match e {
                ExchangeError::TooLarge(n) => self.error(
                    DiscoveryErrorKind::Parse,
                    format!(
                        "{what}: the answer is {n} bytes, more than the {} bytes allowed",
                        self.max_body
                    ),
                ),
                ExchangeError::Request(e) => bad_request(e),
                // A connect that timed out is an agent that did not accept (a restarted agent
                // drops SYNs under a fleet's reconnect storm): unreachable, so the recovery probe
                // ends the backoff once it accepts (`recover.rs`).
                other => self.transport_error(what, DiscoveryErrorKind::Unreachable, Some(&other)),
            })?;
        // Read to its end: the connection can carry the watch's next query.
        *conn = kept;
        Ok(answer)
    }

    fn error(&self, kind: DiscoveryErrorKind, message: String) -> DiscoveryError {
        DiscoveryError::new(&self.cluster, kind, message)
    }

    /// A registration request that failed on the way (reqwest).
    fn request_error(&self, what: &str, e: &reqwest::Error) -> DiscoveryError {
        // As for blocking queries: a connect that timed out is an unreachable agent; only a
        // request that was sent and not answered in time is a timeout.
        let kind = if e.is_timeout() && !e.is_connect() {
            DiscoveryErrorKind::Timeout
        } else {
            DiscoveryErrorKind::Unreachable
        };
        // reqwest's own Display names the URL: only its causes are added.
        self.transport_error(what, kind, std::error::Error::source(e))
    }

    /// `what` failed on the way with `e`: the message names the agent, `e` and its causes.
    fn transport_error(
        &self,
        what: &str,
        kind: DiscoveryErrorKind,
        e: Option<&dyn std::error::Error>,
    ) -> DiscoveryError {
        // The errors' Display never carries the token (it travels only in a header).
        let mut message = format!("{what}: Consul agent at {} ", self.base);
        message.push_str(if kind == DiscoveryErrorKind::Timeout {
            "did not answer in time"
        } else {
            "is unreachable"
        });
        let mut source = e;
        while let Some(cause) = source {
            message.push_str(": ");
            message.push_str(&cause.to_string());
            source = cause.source();
        }
        self.error(kind, message)
    }
}

/// A header value as text (trimmed), `None` when it has bytes a header text cannot have.
fn header_text(value: &[u8]) -> Option<&str> {
    let visible = value
        .iter()
        .all(|&b| b == b'\t' || (0x20..0x7f).contains(&b));
    let text = std::str::from_utf8(value).ok().filter(|_| visible)?;
    Some(text.trim())
}

/// The wait actually sent: Consul treats 0 as its 5 min default and caps at 10 min, so the
/// client's timeout must be computed from the same value.
fn effective_wait(configured: Duration) -> Duration {
    if configured.is_zero() {
        ConsulSource::DEFAULT_WAIT
    } else {
        configured.min(MAX_WAIT)
    }
}

/// A Go duration string Consul accepts: `60s`, `1500ms` (never a bare number).
pub(crate) fn go_duration(d: Duration) -> String {
    let ms = d.as_millis();
    if ms.is_multiple_of(1000) {
        format!("{}s", ms / 1000)
    } else {
        format!("{ms}ms")
    }
}

#[cfg(test)]
#[path = "http_tests.rs"]
pub(super) mod tests;
