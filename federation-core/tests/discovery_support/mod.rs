//! Shared helpers of the `discovery_*` integration tests.
#![allow(dead_code, reason = "each test binary uses a different subset")]

use std::sync::Arc;
use std::sync::atomic::{AtomicU16, AtomicU64, Ordering};
use std::time::Duration;

use federation_core::config::{ClusterConfig, ConsulSource, DiscoverySource, Secret};
use federation_core::discovery::{ClusterDiscovery, DiscoveryTuning, InstanceSet, InstanceWatch};
use federation_testkit::consul::{
    CheckDefinition, ConsulDouble, ConsulOptions, ServiceRegistration,
};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpListener;

/// Generous bound for "eventually" conditions on a loaded machine.
pub const EVENTUALLY: Duration = Duration::from_secs(10);

/// Fast backoff so fault tests recover quickly.
pub fn tuning() -> DiscoveryTuning {
    DiscoveryTuning {
        backoff_base: Duration::from_millis(50),
        backoff_max: Duration::from_millis(300),
        request_margin: Duration::from_secs(2),
        connect_timeout: Duration::from_secs(1),
        ..DiscoveryTuning::default()
    }
}

/// A Consul double for `zervigo-dc`.
pub async fn double() -> ConsulDouble {
    ConsulDouble::start(ConsulOptions::new("zervigo-dc"))
        .await
        .expect("the Consul double starts")
}

/// A cluster config pointing at `url` with the given blocking wait and optional token.
pub fn cluster(name: &str, url: &str, wait: Duration, token: Option<&str>) -> ClusterConfig {
    let mut source = ConsulSource::new(url);
    source.wait = wait;
    source.datacenter = Some("zervigo-dc".to_owned());
    source.token = token.map(Secret::new);
    ClusterConfig::new(name, DiscoverySource::Consul(source))
}

/// Discovery for `cluster`, with test tuning.
pub fn discovery(cluster: &ClusterConfig) -> ClusterDiscovery {
    ClusterDiscovery::with_tuning(cluster, tuning()).expect("valid cluster config")
}

/// A plain registration without checks (always passing).
pub fn instance(id: &str, service: &str, address: &str, port: u16) -> ServiceRegistration {
    ServiceRegistration {
        id: Some(id.to_owned()),
        name: service.to_owned(),
        address: address.to_owned(),
        port,
        ..ServiceRegistration::default()
    }
}

/// A registration with one long TTL check `check:<id>` starting in `status`.
pub fn with_ttl_check(mut reg: ServiceRegistration, status: &str) -> ServiceRegistration {
    let id = reg.id.clone().unwrap_or_default();
    reg.check = Some(CheckDefinition {
        check_id: Some(format!("check:{id}")),
        ttl: Some("1h".to_owned()),
        status: Some(status.to_owned()),
        ..CheckDefinition::default()
    });
    reg
}

/// Waits until the watched set satisfies `pred`, returning it; panics with the last set on
/// timeout.
pub async fn until(
    rx: &mut InstanceWatch,
    what: &str,
    pred: impl Fn(&InstanceSet) -> bool,
) -> Arc<InstanceSet> {
    let wait = async {
        loop {
            let set = rx.borrow_and_update().clone();
            if pred(&set) {
                return set;
            }
            rx.changed().await.expect("the watcher is running");
        }
    };
    match tokio::time::timeout(EVENTUALLY, wait).await {
        Ok(set) => set,
        Err(_) => panic!("timed out waiting for: {what}; last set: {:?}", rx.borrow()),
    }
}

/// The ids of the instances in `set`, sorted.
pub fn ids(set: &InstanceSet) -> Vec<String> {
    let mut ids: Vec<String> = set.instances.iter().map(|i| i.id.clone()).collect();
    ids.sort();
    ids
}

/// A tiny HTTP health endpoint on 127.0.0.1 whose status can be switched; counts requests.
#[derive(Clone)]
pub struct HealthEndpoint {
    /// `http://127.0.0.1:<port>/health`.
    pub url: String,
    status: Arc<AtomicU16>,
    hits: Arc<AtomicU64>,
}

impl HealthEndpoint {
    /// Starts answering `status` to every request.
    pub async fn start(status: u16) -> Self {
        let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind");
        let port = listener.local_addr().expect("local addr").port();
        let status_cell = Arc::new(AtomicU16::new(status));
        let hits = Arc::new(AtomicU64::new(0));
        let (s, h) = (Arc::clone(&status_cell), Arc::clone(&hits));
        tokio::spawn(async move {
            while let Ok((mut conn, _)) = listener.accept().await {
                let (s, h) = (Arc::clone(&s), Arc::clone(&h));
                tokio::spawn(async move {
                    let mut buf = [0u8; 2048];
                    // One request per connection is enough for a health probe.
                    if conn.read(&mut buf).await.unwrap_or(0) == 0 {
                        return;
                    }
                    h.fetch_add(1, Ordering::SeqCst);
                    let code = s.load(Ordering::SeqCst);
                    let reply = format!(
                        "HTTP/1.1 {code} X\r\ncontent-length: 2\r\nconnection: close\r\n\r\nok"
                    );
                    let _ = conn.write_all(reply.as_bytes()).await;
                    let _ = conn.shutdown().await;
                });
            }
        });
        Self {
            url: format!("http://127.0.0.1:{port}/health"),
            status: status_cell,
            hits,
        }
    }

    /// Answers `status` from now on.
    pub fn set_status(&self, status: u16) {
        self.status.store(status, Ordering::SeqCst);
    }

    /// Requests received so far.
    pub fn hits(&self) -> u64 {
        self.hits.load(Ordering::SeqCst)
    }
}
