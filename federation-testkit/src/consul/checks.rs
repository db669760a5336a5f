//! The check runner: HTTP and TCP probes, TTL expiry and `DeregisterCriticalServiceAfter`.
//!
//! A double that marked registered services passing immediately would hide the window in
//! which real Consul reports a fresh instance as critical, and an SDK that routes to it too
//! early would pass its tests. So the double runs the checks itself: each check has a task
//! that probes every `Interval` (raised to `check_interval_floor`; 2xx is passing, 429 warning,
//! anything else or a timeout critical) or, for TTL checks, sleeps until the TTL deadline and
//! turns the check critical with output `TTL expired`. A reaper deregisters services whose
//! check stayed critical longer than `DeregisterCriticalServiceAfter` (Consul enforces a
//! 1-minute minimum; the double does not, so tests can stay short). Tasks hold a `Weak`
//! reference, so a dropped double stops them even if an abort was missed.

use std::convert::Infallible;
use std::sync::{Arc, Weak};
use std::time::Duration;

use tokio::task::AbortHandle;

use super::options::CheckStatus;
use super::registration::{CheckKind, HttpProbe};
use super::shared::Shared;

/// Consul's `OutputMaxSize` default.
const OUTPUT_MAX: usize = 4096;

/// HTTP clients for the probes (one verifying TLS, one not, for `TLSSkipVerify`).
pub(crate) struct Probes {
    verify: reqwest::Client,
    insecure: reqwest::Client,
}

impl Probes {
    pub(crate) fn new() -> std::io::Result<Self> {
        // reqwest is built without a bundled crypto provider; install ring unless the process
        // already chose one (the error only says a provider is already installed).
        let _already_installed = rustls::crypto::ring::default_provider().install_default();
        let build = |insecure: bool| {
            reqwest::Client::builder()
                .no_proxy()
                .user_agent("Consul Health Check")
                .tls_danger_accept_invalid_certs(insecure)
                .build()
                .map_err(std::io::Error::other)
        };
        Ok(Self {
            verify: build(false)?,
            insecure: build(true)?,
        })
    }
}

/// Starts the runner of one check.
pub(crate) fn spawn_runner(shared: &Arc<Shared>, check_id: String) -> AbortHandle {
    let weak = Arc::downgrade(shared);
    shared
        .runtime
        .spawn(run_check(weak, check_id))
        .abort_handle()
}

/// Starts the reaper.
pub(crate) fn spawn_reaper(shared: &Arc<Shared>) -> AbortHandle {
    let weak = Arc::downgrade(shared);
    let period = shared
        .opts
        .check_interval_floor
        .max(Duration::from_millis(10));
    shared
        .runtime
        .spawn(async move {
            loop {
                tokio::time::sleep(period).await;
                let Some(shared) = weak.upgrade() else { return };
                let now = tokio::time::Instant::now();
                for service_id in shared.read(|catalog| catalog.reapable(now)) {
                    tracing::debug!(service_id, "consul double: reaping critical service");
                    let _already_gone = shared.deregister(&service_id);
                }
            }
        })
        .abort_handle()
}

async fn run_check(shared: Weak<Shared>, check_id: String) {
    let Some(kind) = shared.upgrade().and_then(|shared| {
        shared.read(|catalog| {
            catalog
                .checks
                .get(&check_id)
                .and_then(|check| check.kind.clone())
        })
    }) else {
        return;
    };
    match kind {
        CheckKind::Ttl(_) => ttl_loop(shared, check_id).await,
        CheckKind::Http(probe) => probe_loop(shared, check_id, Probe::Http(probe)).await,
        CheckKind::Tcp {
            address,
            interval,
            timeout,
        } => {
            probe_loop(
                shared,
                check_id,
                Probe::Tcp {
                    address,
                    interval,
                    timeout,
                },
            )
            .await;
        }
    }
}

async fn ttl_loop(shared: Weak<Shared>, check_id: String) {
    loop {
        let (deadline, floor) = {
            let Some(strong) = shared.upgrade() else {
                return;
            };
            let Some(deadline) = strong.read(|catalog| {
                catalog
                    .checks
                    .get(&check_id)
                    .map(|check| check.ttl_deadline)
            }) else {
                return;
            };
            (deadline, strong.opts.check_interval_floor)
        };
        match deadline {
            Some(deadline) => tokio::time::sleep_until(deadline).await,
            // Expired: wait for a pass/warn/fail to set a new deadline.
            None => tokio::time::sleep(floor.max(Duration::from_millis(10))).await,
        }
        let Some(strong) = shared.upgrade() else {
            return;
        };
        let now = tokio::time::Instant::now();
        let _infallible = strong.commit(|catalog| {
            Ok::<_, Infallible>(catalog.expire_ttl(&check_id, now).unwrap_or_default())
        });
    }
}

enum Probe {
    Http(HttpProbe),
    Tcp {
        address: String,
        interval: Duration,
        timeout: Duration,
    },
}

async fn probe_loop(shared: Weak<Shared>, check_id: String, probe: Probe) {
    let interval = match &probe {
        Probe::Http(http) => http.interval,
        Probe::Tcp { interval, .. } => *interval,
    };
    loop {
        let floor = {
            let Some(strong) = shared.upgrade() else {
                return;
            };
            let (status, output) = match &probe {
                Probe::Http(http) => run_http(&strong, http).await,
                Probe::Tcp {
                    address, timeout, ..
                } => run_tcp(address, *timeout).await,
            };
            if strong.read(|catalog| !catalog.checks.contains_key(&check_id)) {
                return;
            }
            let _infallible = strong.commit(|catalog| {
                Ok::<_, Infallible>(
                    catalog
                        .set_status(&check_id, status, &output)
                        .unwrap_or_default(),
                )
            });
            strong.opts.check_interval_floor
        };
        tokio::time::sleep(interval.max(floor)).await;
    }
}

async fn run_http(shared: &Shared, probe: &HttpProbe) -> (CheckStatus, String) {
    let client = if probe.tls_skip_verify {
        &shared.probes.insecure
    } else {
        &shared.probes.verify
    };
    let Ok(method) = reqwest::Method::from_bytes(probe.method.as_bytes()) else {
        return (
            CheckStatus::Critical,
            format!("invalid HTTP method {:?}", probe.method),
        );
    };
    let mut request = client
        .request(method.clone(), &probe.url)
        .timeout(probe.timeout);
    for (name, values) in &probe.header {
        for value in values {
            request = request.header(name.as_str(), value.as_str());
        }
    }
    if let Some(body) = &probe.body {
        request = request.body(body.clone());
    }
    let verb = method.as_str();
    match request.send().await {
        Err(error) => (
            CheckStatus::Critical,
            format!("{verb} \"{}\": {error}", probe.url),
        ),
        Ok(response) => {
            let code = response.status();
            let status = if code.is_success() {
                CheckStatus::Passing
            } else if code.as_u16() == 429 {
                CheckStatus::Warning
            } else {
                CheckStatus::Critical
            };
            let body = response.bytes().await.unwrap_or_default();
            let body = String::from_utf8_lossy(&body[..body.len().min(OUTPUT_MAX)]).into_owned();
            let reason = code.canonical_reason().unwrap_or("");
            (
                status,
                format!(
                    "HTTP {verb} {}: {} {reason} Output: {body}",
                    probe.url,
                    code.as_u16()
                ),
            )
        }
    }
}

async fn run_tcp(address: &str, timeout: Duration) -> (CheckStatus, String) {
    match tokio::time::timeout(timeout, tokio::net::TcpStream::connect(address)).await {
        Ok(Ok(_stream)) => (
            CheckStatus::Passing,
            format!("TCP connect {address}: Success"),
        ),
        Ok(Err(error)) => (
            CheckStatus::Critical,
            format!("dial tcp {address}: {error}"),
        ),
        Err(_) => (
            CheckStatus::Critical,
            format!("dial tcp {address}: i/o timeout"),
        ),
    }
}
