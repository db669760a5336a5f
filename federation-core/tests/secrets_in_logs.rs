//! Secrets never reach the logs, even at TRACE, from any crate in the process.
//!
//! Failure this catches: a `tracing` event or span field (ours or a dependency's, e.g. an HTTP
//! client dumping request headers) that prints the Consul ACL token, a configured
//! `Authorization` header or a caller's `Authorization` header, so turning on debug logging in
//! production copies credentials into the log pipeline. The run exercises every path that
//! sends a secret: discovery with a token, registration with a token, a rejected token (error
//! path), calls carrying both header kinds, and a failing upstream (retry and error paths).
//! The configuration has no Redis or Kafka password fields yet; add them here when it does.
//!
//! One test in its own binary: the capturing subscriber is process-global.

mod discovery_support;

use std::io::Write;
use std::sync::{Arc, Mutex, PoisonError};
use std::time::Duration;

use federation_core::client::FederatedServiceClient;
use federation_core::config::{Config, ConfigFormat};
use federation_core::discovery::Registration;
use federation_testkit::consul::{AclOptions, AclToken, ConsulDouble, ConsulOptions};
use federation_testkit::instance::{Identity, ServiceInstance};

const TOKEN: &str = "acl-7c1d-never-log-me";
const REJECTED_TOKEN: &str = "acl-dead-never-log-me";
const CLUSTER_AUTH: &str = "Bearer cluster-5e2a-never-log-me";
const CALL_AUTH: &str = "Bearer call-91b0-never-log-me";
/// The part of every secret above that no legitimate log line contains.
const MARK: &str = "never-log-me";

/// Everything the subscriber writes, kept in memory.
#[derive(Clone, Default)]
struct Captured(Arc<Mutex<Vec<u8>>>);

impl Captured {
    fn text(&self) -> String {
        String::from_utf8_lossy(&self.0.lock().unwrap_or_else(PoisonError::into_inner)).into_owned()
    }
}

impl Write for Captured {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        self.0
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .extend_from_slice(buf);
        Ok(buf.len())
    }

    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

/// Captures every event and span of every crate at TRACE (also `log` records, bridged).
fn capture_all_logs() -> Captured {
    let captured = Captured::default();
    let writer = captured.clone();
    tracing_subscriber::fmt()
        .with_max_level(tracing::Level::TRACE)
        .with_ansi(false)
        .with_span_events(tracing_subscriber::fmt::format::FmtSpan::FULL)
        .with_writer(move || writer.clone())
        .try_init()
        .expect("the only subscriber of this test binary");
    captured
}

async fn acl_double() -> ConsulDouble {
    let mut options = ConsulOptions::new("zervigo-dc");
    options.acl = Some(AclOptions {
        default_deny: true,
        tokens: vec![AclToken {
            secret: TOKEN.to_owned(),
            read: true,
            write: true,
        }],
    });
    ConsulDouble::start(options).await.expect("double starts")
}

/// `user` is served from `zervigo` (good token, cluster Authorization header); `lost` only
/// from `revoked` (a token the double does not know).
fn client(consul: &ConsulDouble) -> FederatedServiceClient {
    let url = consul.url();
    let text = format!(
        r#"
clusters:
  zervigo:
    consul: {{ address: "{url}", token: "{TOKEN}", datacenter: zervigo-dc }}
    headers: {{ Authorization: "{CLUSTER_AUTH}" }}
  revoked:
    consul: {{ address: "{url}", token: "{REJECTED_TOKEN}", datacenter: zervigo-dc }}
services:
  user: {{ names: {{ zervigo: user-service }} }}
  lost: {{ names: {{ revoked: user-service }} }}
"#
    );
    let config = Config::parse(&text, ConfigFormat::Yaml).expect("valid configuration");
    FederatedServiceClient::from_config(config).expect("client builds")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn no_secret_appears_in_trace_logs() {
    let logs = capture_all_logs();
    let consul = acl_double().await;
    let upstream = ServiceInstance::start(Identity::new("zervigo", "user-service", "user-1"))
        .await
        .expect("instance starts");
    upstream.set_recording(true);
    let client = client(&consul);

    // Registration with the token (the SDK registers the upstream itself).
    let registered = client
        .register(
            "zervigo",
            &Registration::new("user-1", "user-service", "127.0.0.1", upstream.port()),
        )
        .await
        .expect("registered with the token");

    // Discovery with the token; a call with the cluster's Authorization header, then one with
    // the caller's own (which takes its place).
    let mut served = None;
    for _ in 0..250 {
        match client.get("user", "/profile").send().await {
            Ok(response) => {
                served = Some(response);
                break;
            }
            Err(_) => tokio::time::sleep(Duration::from_millis(20)).await,
        }
    }
    let served = served.expect("the registered upstream is discovered and called");
    assert_eq!(served.status(), 200);
    let own = client
        .get("user", "/profile")
        .header("authorization", CALL_AUTH)
        .send()
        .await
        .expect("a call with the caller's Authorization header");
    assert_eq!(own.status(), 200);
    let sent: Vec<String> = upstream
        .recorded()
        .iter()
        .flat_map(|r| r.headers.get_all("authorization"))
        .filter_map(|v| v.to_str().ok().map(str::to_owned))
        .collect();
    assert!(
        sent.iter().any(|v| v == CALL_AUTH) && sent.iter().any(|v| v == CLUSTER_AUTH),
        "both Authorization headers reach the upstream (the secrets are really used): {sent:?}"
    );

    // Error paths: a rejected token, then a dead upstream.
    let rejected = client
        .get("lost", "/x")
        .timeout(Duration::from_secs(2))
        .send()
        .await
        .expect_err("the revoked cluster's token is rejected");
    assert!(!rejected.to_string().contains(MARK), "{rejected}");
    upstream.kill().await;
    let failed = client
        .get("user", "/profile")
        .header("authorization", CALL_AUTH)
        .timeout(Duration::from_secs(2))
        .send()
        .await
        .expect_err("the only upstream is down");
    assert!(!failed.to_string().contains(MARK), "{failed}");
    registered.deregister().await.expect("deregistered");

    let text = logs.text();
    assert!(
        text.contains("TRACE") && text.contains("zervigo"),
        "the capture saw the run:\n{text}"
    );
    let leaks: Vec<&str> = text.lines().filter(|line| line.contains(MARK)).collect();
    assert!(
        leaks.is_empty(),
        "{} log lines carry a secret:\n{}",
        leaks.len(),
        leaks.join("\n")
    );
    for secret in [TOKEN, REJECTED_TOKEN, CLUSTER_AUTH, CALL_AUTH] {
        assert!(!text.contains(secret), "{secret} logged");
    }
}
