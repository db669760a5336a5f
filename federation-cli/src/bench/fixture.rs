//! Shared set-up: loopback instances and client configurations for the scenarios.
//!
//! Every scenario must measure the SDK and its baseline against the *same* upstreams, or the
//! comparison measures the servers instead of the clients; this file starts them once per
//! scenario and writes the SDK configuration that points at them.

use federation_core::config::{Config, ConfigFormat};
use federation_testkit::instance::{Identity, ServiceInstance};

use crate::exit::CliError;

/// Cluster name used by every benchmark configuration.
pub const CLUSTER: &str = "bench";
/// Consul (or static) service name of the benchmark upstreams.
pub const UPSTREAM: &str = "bench-svc";
/// Logical service: cache off, default policies (P2C peak-EWMA, breaker, retries armed).
pub const SERVICE: &str = "bench";
/// Logical service with result caching on for GET.
pub const CACHED: &str = "cached";
/// Path every benchmark call uses.
pub const PATH: &str = "/bench";

/// Starts `n` instances of the benchmark service on loopback.
///
/// # Errors
/// When a listener cannot be bound.
pub async fn start_instances(n: usize) -> Result<Vec<ServiceInstance>, CliError> {
    let mut out = Vec::with_capacity(n);
    for i in 0..n {
        let identity = Identity::new(CLUSTER, UPSTREAM, instance_id(i));
        let instance = ServiceInstance::start(identity)
            .await
            .map_err(|e| CliError::failure(format!("bench: cannot start an instance: {e}")))?;
        // Byte-identical answers for every variant: the SDK's trace and deadline headers must
        // not make the upstream build a bigger body for it than for the baseline.
        instance.set_echo_propagation(false);
        out.push(instance);
    }
    Ok(out)
}

/// The id of the `i`-th instance (`bench-svc-0`).
pub fn instance_id(i: usize) -> String {
    format!("{UPSTREAM}-{i}")
}

/// Full URLs of `PATH` on each instance, for the round-robin baseline.
pub fn urls(instances: &[ServiceInstance]) -> Vec<String> {
    instances
        .iter()
        .map(|i| format!("{}{PATH}", i.url().trim_end_matches('/')))
        .collect()
}

/// A configuration with static instances: service [`SERVICE`] (defaults) and [`CACHED`].
///
/// # Errors
/// When the generated configuration does not validate (a bug in the harness).
pub fn static_config(instances: &[ServiceInstance]) -> Result<Config, CliError> {
    let mut yaml = format!("clusters:\n  {CLUSTER}:\n    static:\n      {UPSTREAM}:\n");
    for (i, instance) in instances.iter().enumerate() {
        yaml.push_str(&format!(
            "        - {{ id: {}, address: 127.0.0.1, port: {} }}\n",
            instance_id(i),
            instance.port()
        ));
    }
    yaml.push_str(&services_yaml());
    parse(&yaml)
}

/// A configuration discovering [`UPSTREAM`] through the Consul agent at `address`.
///
/// # Errors
/// When the generated configuration does not validate (a bug in the harness).
pub fn consul_config(address: &str, datacenter: &str, wait: &str) -> Result<Config, CliError> {
    let yaml = format!(
        "clusters:\n  {CLUSTER}:\n    consul: {{ address: \"{address}\", datacenter: {datacenter}, wait: {wait} }}\n{}",
        services_yaml()
    );
    parse(&yaml)
}

fn services_yaml() -> String {
    format!(
        "services:\n  {SERVICE}:\n    names: {{ {CLUSTER}: {UPSTREAM} }}\n  {CACHED}:\n    names: {{ {CLUSTER}: {UPSTREAM} }}\n    cache: {{ ttl: 10m, methods: [GET] }}\n"
    )
}

fn parse(yaml: &str) -> Result<Config, CliError> {
    Config::parse(yaml, ConfigFormat::Yaml)
        .map_err(|e| CliError::failure(format!("bench: invalid generated configuration: {e}")))
}
