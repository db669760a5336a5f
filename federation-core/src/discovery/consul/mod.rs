//! The Consul source: HTTP client, answer parsing and the blocking-query watcher.

pub(crate) mod http;
pub(crate) mod long_poll;
mod plain;
mod plain_body;
mod recover;
pub(crate) mod watcher;
mod wire;

use crate::discovery::Instance;

/// Parses one `/v1/health/service/<service>` answer body into the instances discovery would
/// accept and the datacenter the answer reports; the error says why the body is unusable.
///
/// Not part of the stable API: exposed so the fuzz target and property tests can exercise the
/// parser in-process instead of through a loopback Consul answer.
#[doc(hidden)]
pub fn parse_health_answer(
    service: &str,
    body: &[u8],
) -> Result<(Vec<Instance>, Option<String>), String> {
    wire::parse_health(service, body)
        .map(|p| (p.instances, p.datacenter))
        .map_err(|e| e.0)
}

/// Installs rustls' `ring` provider as the process default if none is installed yet.
///
/// reqwest is built with `rustls-no-provider` (ring builds faster and needs no cmake) and panics
/// when a client is built without a default provider; installing twice is harmless.
pub(crate) fn ensure_crypto_provider() {
    if rustls::crypto::CryptoProvider::get_default().is_none() {
        // Another thread may win the race; either way a provider is installed afterwards.
        let _ = rustls::crypto::ring::default_provider().install_default();
    }
}
