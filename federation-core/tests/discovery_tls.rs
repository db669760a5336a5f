//! Consul agents served over HTTPS: the watch's blocking queries trust the configured CA file
//! (on top of the platform roots), keep their connection between queries, and fail with a
//! certificate error, not silence, when the agent's certificate is not trusted.
//!
//! The agent is the Consul double behind a TLS-terminating proxy on loopback whose certificate
//! is signed by a CA generated for the test.

mod discovery_support;
mod tls_support;

use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use discovery_support::*;
use federation_core::config::{ClusterConfig, DiscoverySource};
use federation_testkit::consul::ConsulDouble;
use tls_support::{pki, server_config, temp_dir, write};
use tokio::net::{TcpListener, TcpStream};
use tokio_rustls::TlsAcceptor;

/// Terminates TLS on loopback and forwards the plain bytes to `upstream`; counts the TLS
/// connections that completed a handshake. The accept task ends with the test's runtime.
async fn tls_proxy(upstream: SocketAddr, accepted: Arc<AtomicUsize>) -> u16 {
    let acceptor = TlsAcceptor::from(server_config(pki_for_proxy()));
    let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind");
    let port = listener.local_addr().expect("local addr").port();
    tokio::spawn(async move {
        while let Ok((client, _)) = listener.accept().await {
            let (acceptor, accepted) = (acceptor.clone(), Arc::clone(&accepted));
            tokio::spawn(async move {
                let Ok(mut tls) = acceptor.accept(client).await else {
                    return;
                };
                accepted.fetch_add(1, Ordering::SeqCst);
                let Ok(mut agent) = TcpStream::connect(upstream).await else {
                    return;
                };
                let _ = tokio::io::copy_bidirectional(&mut tls, &mut agent).await;
            });
        }
    });
    port
}

/// The test's PKI, generated once per process so the proxy and the CA file agree.
fn pki_for_proxy() -> &'static tls_support::Pki {
    static PKI: std::sync::OnceLock<tls_support::Pki> = std::sync::OnceLock::new();
    PKI.get_or_init(pki)
}

/// A cluster whose Consul agent is `https://127.0.0.1:{port}`, trusting `ca_file` if given.
fn https_cluster(port: u16, ca_file: Option<std::path::PathBuf>) -> ClusterConfig {
    let mut cluster = cluster(
        "zervigo",
        &format!("https://127.0.0.1:{port}"),
        Duration::from_secs(30),
        None,
    );
    if let DiscoverySource::Consul(source) = &mut cluster.source {
        source.ca_file = ca_file;
    }
    cluster
}

async fn agent_with_one_instance() -> ConsulDouble {
    let consul = double().await;
    consul
        .register(instance("u1", "user-api", "127.0.0.1", 8081))
        .expect("register");
    consul
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_https_agent_is_watched_through_the_configured_ca() {
    let consul = agent_with_one_instance().await;
    let accepted = Arc::new(AtomicUsize::new(0));
    let port = tls_proxy(consul.addr(), Arc::clone(&accepted)).await;
    let ca = write(&temp_dir("consul-ca"), "ca.pem", &pki_for_proxy().ca_pem);
    let d = discovery(&https_cluster(port, Some(ca)));

    let first = d
        .wait_initialized("user-api", EVENTUALLY)
        .await
        .expect("the first answer arrives over TLS");
    assert_eq!(ids(&first), ["u1"]);

    // Changes arrive through the blocking queries that follow, on the same TLS connection.
    let mut rx = d.watch("user-api");
    for n in 2..=4u16 {
        let id = format!("u{n}");
        consul
            .register(instance(&id, "user-api", "127.0.0.1", 8080 + n))
            .expect("register");
        until(&mut rx, "the new instance", |s| ids(s).contains(&id)).await;
    }
    assert_eq!(
        accepted.load(Ordering::SeqCst),
        1,
        "one TLS connection carried the watch's four answers"
    );
    d.shutdown();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_https_agent_with_an_untrusted_certificate_is_an_error_naming_the_certificate() {
    let consul = agent_with_one_instance().await;
    let port = tls_proxy(consul.addr(), Arc::new(AtomicUsize::new(0))).await;
    let d = discovery(&https_cluster(port, None));

    let error = d
        .wait_initialized("user-api", EVENTUALLY)
        .await
        .expect_err("a certificate no configured root signed is refused");
    let text = error.to_string().to_lowercase();
    assert!(
        text.contains("certificate"),
        "the error says the certificate is the problem: {error}"
    );
    d.shutdown();
}
