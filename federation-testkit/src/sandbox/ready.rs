//! Waiting until the Consul doubles see instances as passing.
//!
//! A sandbox handed out before its checks passed would make the first calls of every test fail
//! with "no healthy instance" at random. So readiness is judged the way the SDK will see it:
//! `GET /v1/health/service/<name>?passing` on the cluster's own double, polled until the expected
//! number of instances is listed or a deadline passes, and the error names what is missing.

use std::io;
use std::time::Duration;

use percent_encoding::{AsciiSet, NON_ALPHANUMERIC, utf8_percent_encode};
use tokio::time::Instant;

/// Characters escaped in a service name placed in a URL path segment.
const PATH_SEGMENT: &AsciiSet = &NON_ALPHANUMERIC.remove(b'-').remove(b'_').remove(b'.');

/// Pause between polls.
const POLL_STEP: Duration = Duration::from_millis(25);
/// Timeout of one poll request.
const POLL_TIMEOUT: Duration = Duration::from_secs(2);

/// One thing to wait for: at least `expected` passing instances of `service` in a double.
#[derive(Clone, Debug)]
pub(crate) struct Expectation {
    pub(crate) cluster: String,
    pub(crate) consul_url: String,
    pub(crate) service: String,
    pub(crate) expected: usize,
}

/// An HTTP client for the doubles' health endpoint.
pub(crate) fn http_client() -> io::Result<reqwest::Client> {
    // reqwest is built without a bundled crypto provider; an error only means one is installed.
    let _ = rustls::crypto::ring::default_provider().install_default();
    reqwest::Client::builder()
        .no_proxy()
        .timeout(POLL_TIMEOUT)
        .build()
        .map_err(io::Error::other)
}

/// How many instances of `service` the double at `consul_url` lists as passing.
pub(crate) async fn passing(
    http: &reqwest::Client,
    consul_url: &str,
    service: &str,
) -> io::Result<usize> {
    let name = utf8_percent_encode(service, PATH_SEGMENT);
    let url = format!("{consul_url}/v1/health/service/{name}?passing");
    let response = http.get(&url).send().await.map_err(io::Error::other)?;
    let status = response.status();
    if !status.is_success() {
        return Err(io::Error::other(format!("GET {url} answered {status}")));
    }
    let entries: Vec<serde_json::Value> = response.json().await.map_err(io::Error::other)?;
    Ok(entries.len())
}

/// Poll until every expectation holds (exactly: `passing == expected`), or fail after
/// `timeout` naming each one that did not.
pub(crate) async fn wait_all(
    http: &reqwest::Client,
    expectations: &[Expectation],
    timeout: Duration,
) -> io::Result<()> {
    let deadline = Instant::now() + timeout;
    let mut pending: Vec<&Expectation> = expectations.iter().collect();
    loop {
        let mut still = Vec::new();
        let mut last = Vec::new();
        for e in pending {
            match passing(http, &e.consul_url, &e.service).await {
                Ok(n) if n == e.expected => {}
                Ok(n) => {
                    last.push(format!(
                        "{}/{}: {n} of {} passing",
                        e.cluster, e.service, e.expected
                    ));
                    still.push(e);
                }
                Err(err) => {
                    last.push(format!("{}/{}: {err}", e.cluster, e.service));
                    still.push(e);
                }
            }
        }
        if still.is_empty() {
            return Ok(());
        }
        if Instant::now() >= deadline {
            return Err(io::Error::new(
                io::ErrorKind::TimedOut,
                format!(
                    "instances not passing in Consul after {timeout:?}: {}",
                    last.join("; ")
                ),
            ));
        }
        pending = still;
        tokio::time::sleep(POLL_STEP).await;
    }
}
