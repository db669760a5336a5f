//! What a benchmark calls: the SDK, or the baselines a team would build without it.
//!
//! A comparison is only fair when both sides do the same work: the baselines here use the same
//! reqwest version, connection-pool settings, TLS provider and redirect policy as the SDK's
//! transport (`federation-core/src/transport/mod.rs`), and read the whole body as the SDK does.
//! Round-robin is the baseline balancer a hand-assembled stack would use.

use std::future::Future;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use federation_core::client::FederatedServiceClient;

use crate::exit::CliError;

/// One operation a load generator can repeat: `true` when it succeeded.
pub trait Target: Clone + Send + Sync + 'static {
    /// Runs one operation.
    fn call(&self) -> impl Future<Output = bool> + Send;
}

/// A plain reqwest client configured exactly like the SDK's per-cluster client.
///
/// # Errors
/// When reqwest cannot build a client (no TLS provider).
pub fn plain_reqwest() -> Result<reqwest::Client, CliError> {
    let tls = rustls::ClientConfig::builder_with_provider(Arc::new(
        rustls::crypto::ring::default_provider(),
    ))
    .with_safe_default_protocol_versions()
    .map_err(|e| CliError::failure(format!("bench: TLS versions: {e}")))?
    .with_root_certificates(rustls::RootCertStore::empty())
    .with_no_client_auth();
    reqwest::Client::builder()
        .use_preconfigured_tls(tls)
        .pool_max_idle_per_host(1024)
        .pool_idle_timeout(Duration::from_secs(90))
        .connect_timeout(Duration::from_secs(1))
        .tcp_nodelay(true)
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .map_err(|e| CliError::failure(format!("bench: cannot build the reqwest client: {e}")))
}

/// A GET through the SDK.
#[derive(Clone, Debug)]
pub struct Sdk {
    /// The client.
    pub client: FederatedServiceClient,
    /// Logical service.
    pub service: Arc<str>,
    /// Path of every call.
    pub path: Arc<str>,
}

impl Target for Sdk {
    async fn call(&self) -> bool {
        self.client
            .get(&self.service, &self.path)
            .send()
            .await
            .is_ok_and(|r| r.status().is_success())
    }
}

/// A GET with plain reqwest, round-robin over fixed URLs (one URL: a proxy in front).
#[derive(Clone, Debug)]
pub struct RoundRobin {
    client: reqwest::Client,
    urls: Arc<[String]>,
    next: Arc<AtomicUsize>,
}

impl RoundRobin {
    /// Round-robin over `urls` (full URLs including the path).
    pub fn new(client: reqwest::Client, urls: Vec<String>) -> Self {
        Self {
            client,
            urls: urls.into(),
            next: Arc::default(),
        }
    }
}

impl Target for RoundRobin {
    async fn call(&self) -> bool {
        if self.urls.is_empty() {
            return false;
        }
        let i = self.next.fetch_add(1, Ordering::Relaxed) % self.urls.len();
        match self.client.get(&self.urls[i]).send().await {
            Ok(r) => {
                let ok = r.status().is_success();
                r.bytes().await.is_ok() && ok
            }
            Err(_) => false,
        }
    }
}

/// Either variant of a comparison, so one generic runner drives both the same way.
#[derive(Clone, Debug)]
pub enum Variant {
    /// Through the SDK.
    Sdk(Sdk),
    /// Plain reqwest.
    Reqwest(RoundRobin),
    /// Raw hyper connections, the floor (`floor.rs`).
    Floor(super::floor::RawHyper),
}

impl Target for Variant {
    async fn call(&self) -> bool {
        match self {
            Self::Sdk(s) => s.call().await,
            Self::Reqwest(r) => r.call().await,
            Self::Floor(f) => f.call().await,
        }
    }
}
