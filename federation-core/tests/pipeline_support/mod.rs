//! Shared helpers of the pipeline integration tests: real loopback instances and static-source
//! configurations pointing at them.
#![allow(dead_code, reason = "each test file uses a different subset")]

use std::collections::BTreeMap;
use std::time::Duration;

use federation_core::config::{
    ClusterConfig, Config, DiscoverySource, ServiceConfig, ServiceTarget, StaticInstance,
};
use federation_testkit::instance::{Identity, ServiceInstance};

/// Starts `n` instances of `service` in `cluster`, ids `<service>-<cluster>-<i>`.
pub async fn start(cluster: &str, service: &str, n: usize) -> Vec<ServiceInstance> {
    let mut out = Vec::with_capacity(n);
    for i in 1..=n {
        let id = format!("{service}-{cluster}-{i}");
        let instance = ServiceInstance::start(Identity::new(cluster, service, id))
            .await
            .expect("instance starts on loopback");
        out.push(instance);
    }
    out
}

/// A static instance entry for a running instance.
pub fn entry(instance: &ServiceInstance) -> StaticInstance {
    StaticInstance {
        id: Some(instance.identity().instance.clone()),
        address: "127.0.0.1".to_owned(),
        port: instance.port(),
        tags: Vec::new(),
        meta: BTreeMap::new(),
        weight: 1,
    }
}

/// A static cluster whose `consul_name` service is served by `instances`.
pub fn cluster(name: &str, consul_name: &str, instances: &[ServiceInstance]) -> ClusterConfig {
    cluster_with(name, consul_name, instances.iter().map(entry).collect())
}

/// A static cluster with explicit entries.
pub fn cluster_with(name: &str, consul_name: &str, entries: Vec<StaticInstance>) -> ClusterConfig {
    let mut services = BTreeMap::new();
    services.insert(consul_name.to_owned(), entries);
    ClusterConfig::new(name, DiscoverySource::Static(services))
}

/// A logical service mapped onto `(cluster, consul name)` pairs.
pub fn service(name: &str, targets: &[(&str, &str)], prefer: Option<&str>) -> ServiceConfig {
    let mut s = ServiceConfig::new(name);
    s.targets = targets
        .iter()
        .map(|(cluster, consul)| ServiceTarget {
            cluster: (*cluster).to_owned(),
            consul_name: (*consul).to_owned(),
            tags: Vec::new(),
            path_prefix: None,
        })
        .collect();
    s.prefer = prefer.map(str::to_owned);
    s
}

/// A configuration of `clusters` and `services` with default policies.
pub fn config(clusters: Vec<ClusterConfig>, services: Vec<ServiceConfig>) -> Config {
    Config {
        clusters,
        services,
        ..Config::default()
    }
}

/// Polls `cond` every 20 ms until it holds or `limit` passes; returns whether it held.
pub async fn eventually(limit: Duration, mut cond: impl FnMut() -> bool) -> bool {
    let until = tokio::time::Instant::now() + limit;
    while tokio::time::Instant::now() < until {
        if cond() {
            return true;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    cond()
}

/// The breaker state of instance `id` as the client reports it.
pub fn breaker_of(
    client: &federation_core::FederatedServiceClient,
    id: &str,
) -> Option<federation_core::telemetry::BreakerStateValue> {
    client
        .health()
        .services
        .iter()
        .flat_map(|s| s.clusters.iter())
        .flat_map(|c| c.instances.iter())
        .find(|i| i.id == id)
        .map(|i| i.breaker)
}
