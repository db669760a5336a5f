//! The Consul source: HTTP client, answer parsing and the blocking-query watcher.

pub(crate) mod http;
pub(crate) mod watcher;
mod wire;

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
