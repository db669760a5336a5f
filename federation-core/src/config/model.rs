//! The typed configuration: what a file parses into and what code can build directly.
//!
//! Every field documents its default. Durations are `std::time::Duration`; in files they are
//! written as `250ms`, `1s`, `5m`. Clusters keep their declaration order: when two clusters are
//! otherwise equally good, the one declared first is tried first.

use std::collections::BTreeMap;
use std::fmt;
use std::path::PathBuf;
use std::time::Duration;

use serde::Serialize;

mod policy;
pub use policy::*;

/// A whole federation configuration: clusters, logical services and default policies.
#[derive(Clone, Debug, PartialEq, Default, Serialize)]
pub struct Config {
    /// Federation members in declaration order (the tie-break order for failover).
    pub clusters: Vec<ClusterConfig>,
    /// Logical services callers use, in declaration order.
    pub services: Vec<ServiceConfig>,
    /// Policies applied to every service unless the service overrides them.
    pub defaults: Policy,
    /// Cross-cluster data sync (the `sync` section). Default: none.
    pub sync: Option<super::sync::SyncConfig>,
    /// Client-wide discovery options (the `discovery` section). Default: eager watches.
    pub discovery: super::discovery::DiscoveryOptions,
}

impl Config {
    /// The cluster named `name`, if configured.
    pub fn cluster(&self, name: &str) -> Option<&ClusterConfig> {
        self.clusters.iter().find(|c| c.name == name)
    }

    /// The logical service named `name`, if configured.
    pub fn service(&self, name: &str) -> Option<&ServiceConfig> {
        self.services.iter().find(|s| s.name == name)
    }

    /// The effective policy of `service`: its own resolved policy, or the defaults.
    pub fn policy_for<'a>(&'a self, service: &'a ServiceConfig) -> &'a Policy {
        service.policy.as_ref().unwrap_or(&self.defaults)
    }
}

/// One federation member with exactly one discovery source.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct ClusterConfig {
    /// The cluster's name (`zervigo`, `looma`): letters, digits, `-` and `_`.
    pub name: String,
    /// Where instances come from.
    pub source: DiscoverySource,
    /// Balancing policy for instances of this cluster. Default: [`LoadBalancing::PeakEwma`].
    pub load_balancing: LoadBalancing,
    /// Headers added to every request sent to this cluster (for example a bearer token from an
    /// environment variable). Default: none. Values are never logged.
    pub headers: Vec<DefaultHeader>,
    /// TLS for upstream calls to this cluster's instances. Default: `None` (plain HTTP).
    pub tls: Option<UpstreamTls>,
    /// Connection pool settings for this cluster's instances. Default: every field from the
    /// client builder (itself defaulting to 1024 idle connections per instance, 90 s idle,
    /// 1 s connect timeout, `TCP_NODELAY` on).
    pub connections: ConnectionSettings,
}

/// Connection pool settings of one cluster; a field left `None` takes the client builder's
/// value.
#[derive(Clone, Debug, Default, PartialEq, Serialize)]
pub struct ConnectionSettings {
    /// Idle connections kept per instance (0: close each connection after its call).
    pub max_idle_per_instance: Option<u32>,
    /// How long an idle connection is kept before it is closed (> 0).
    #[serde(serialize_with = "super::units::ser_opt_duration")]
    pub idle_timeout: Option<Duration>,
    /// TCP (and TLS) connect timeout of one attempt (> 0); the attempt timeout still applies.
    #[serde(serialize_with = "super::units::ser_opt_duration")]
    pub connect_timeout: Option<Duration>,
    /// Disable Nagle's algorithm on the cluster's connections.
    pub tcp_nodelay: Option<bool>,
}

impl ClusterConfig {
    /// A cluster with the given source and every other field at its default.
    pub fn new(name: impl Into<String>, source: DiscoverySource) -> Self {
        Self {
            name: name.into(),
            source,
            load_balancing: LoadBalancing::default(),
            headers: Vec::new(),
            tls: None,
            connections: ConnectionSettings::default(),
        }
    }
}

/// Where a cluster's instances come from.
#[derive(Clone, Debug, PartialEq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum DiscoverySource {
    /// A Consul agent, watched with blocking queries.
    Consul(ConsulSource),
    /// A fixed list of instances per Consul service name (no Consul needed).
    Static(BTreeMap<String, Vec<StaticInstance>>),
}

/// A Consul agent to watch.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct ConsulSource {
    /// Base URL of the agent, e.g. `http://consul-zervigo:8500`. Required.
    pub address: String,
    /// Expected datacenter (`zervigo-dc`). Default: the agent's own. Never sent as `?dc=`.
    pub datacenter: Option<String>,
    /// ACL token given inline. Default: none. Prefer `token_env`.
    pub token: Option<Secret>,
    /// Name of an environment variable holding the ACL token, read when the client starts.
    pub token_env: Option<String>,
    /// PEM file with the CA that signs the agent's certificate (for `https://` addresses).
    pub ca_file: Option<PathBuf>,
    /// Blocking-query wait per request. Default: 60 s (Consul caps it at 10 min).
    #[serde(serialize_with = "super::units::ser_duration")]
    pub wait: Duration,
}

impl ConsulSource {
    /// Default blocking-query wait.
    pub const DEFAULT_WAIT: Duration = Duration::from_secs(60);

    /// A source for the agent at `address` with every other field at its default.
    pub fn new(address: impl Into<String>) -> Self {
        Self {
            address: address.into(),
            datacenter: None,
            token: None,
            token_env: None,
            ca_file: None,
            wait: Self::DEFAULT_WAIT,
        }
    }
}

/// One statically configured instance.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct StaticInstance {
    /// Instance id. Default: `host:port`.
    pub id: Option<String>,
    /// Host name or IP literal (IPv6 without brackets).
    pub address: String,
    /// TCP port (1–65535).
    pub port: u16,
    /// Tags, used by tag filters. Default: none.
    pub tags: Vec<String>,
    /// Free-form metadata. Default: none.
    pub meta: BTreeMap<String, String>,
    /// Relative weight (1–65535). Default: 1.
    pub weight: u32,
}

/// A header added to every request to a cluster.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct DefaultHeader {
    /// Header name.
    pub name: String,
    /// Where the value comes from.
    pub value: HeaderValueSource,
}

/// The value of a [`DefaultHeader`].
#[derive(Clone, Debug, PartialEq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum HeaderValueSource {
    /// A literal value (treated as secret: never printed).
    Value(Secret),
    /// Read from this environment variable when the client starts.
    Env(String),
}

/// TLS settings for calls to a cluster's instances.
#[derive(Clone, Debug, PartialEq, Default, Serialize)]
pub struct UpstreamTls {
    /// PEM CA bundle that signs the instances' certificates. Default: the platform's roots.
    pub ca_file: Option<PathBuf>,
    /// PEM client certificate chain for mTLS. Must be given together with `client_key`.
    pub client_cert: Option<PathBuf>,
    /// PEM private key for mTLS.
    pub client_key: Option<PathBuf>,
}

/// A logical service as callers name it, mapped onto each cluster.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct ServiceConfig {
    /// Logical name callers use (`user`).
    pub name: String,
    /// Per-cluster targets. Empty means: every cluster, under the logical name.
    pub targets: Vec<ServiceTarget>,
    /// Preferred cluster (affinity). Default: none (best health score wins).
    pub prefer: Option<String>,
    /// Tags every instance must carry (AND, case-insensitive), in every cluster. Default: none.
    pub tags: Vec<String>,
    /// The resolved policy (defaults merged with this service's overrides); `None` = defaults.
    pub policy: Option<Policy>,
    /// Weighted or canary split between tag sets and clusters (`split`). Default: none.
    pub split: Option<super::SplitConfig>,
}

impl ServiceConfig {
    /// A service present in every cluster under its own name, with default policies.
    pub fn new(name: impl Into<String>) -> Self {
        Self {
            name: name.into(),
            targets: Vec::new(),
            prefer: None,
            tags: Vec::new(),
            policy: None,
            split: None,
        }
    }

    /// How this service is found in `cluster`: its explicit target, or — when `targets` is
    /// empty — the logical name in any cluster. `None` when the service is not mapped there.
    pub fn target_in(&self, cluster: &str) -> Option<ServiceTarget> {
        if self.targets.is_empty() {
            return Some(ServiceTarget {
                cluster: cluster.to_owned(),
                consul_name: self.name.clone(),
                tags: Vec::new(),
                path_prefix: None,
            });
        }
        self.targets.iter().find(|t| t.cluster == cluster).cloned()
    }
}

/// How a logical service is found in one cluster.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct ServiceTarget {
    /// Cluster name.
    pub cluster: String,
    /// The Consul service name in that cluster (`looma-user-api`).
    pub consul_name: String,
    /// Extra tags required in this cluster only. Default: none.
    pub tags: Vec<String>,
    /// Path prefix prepended to request paths in this cluster (`/api`). Default: none.
    pub path_prefix: Option<String>,
}

/// A secret string (ACL token, bearer token). `Debug`, `Display` and `Serialize` never show it.
#[derive(Clone, PartialEq, Eq)]
pub struct Secret(String);

impl Secret {
    /// Wraps a secret value.
    pub fn new(value: impl Into<String>) -> Self {
        Self(value.into())
    }

    /// The secret value, for sending it where it belongs (a header). Never log it.
    pub fn expose(&self) -> &str {
        &self.0
    }
}

impl fmt::Debug for Secret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("Secret(\"***\")")
    }
}

impl fmt::Display for Secret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("***")
    }
}

impl Serialize for Secret {
    fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.serialize_str("***")
    }
}
