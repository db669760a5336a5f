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

/// Instance balancing policy.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Default, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum LoadBalancing {
    /// Power of two choices over peak-EWMA latency × (in-flight + 1). The default.
    #[default]
    PeakEwma,
    /// Power of two choices over in-flight requests.
    LeastRequest,
    /// Weighted round robin.
    RoundRobin,
}

/// Every tunable of the call pipeline. Defaults are the documented production defaults.
#[derive(Clone, Debug, PartialEq, Default, Serialize)]
pub struct Policy {
    /// Timeouts.
    pub timeout: TimeoutPolicy,
    /// Retries and the retry budget.
    pub retry: RetryPolicy,
    /// Per-instance circuit breaking.
    pub breaker: BreakerPolicy,
    /// Cluster choice and fail-back.
    pub failover: FailoverPolicy,
    /// Overrides the cluster's balancing policy for this service. Default: `None`.
    pub load_balancing: Option<LoadBalancing>,
    /// Result caching. Default: `None` (off).
    pub cache: Option<CachePolicy>,
    /// Load protection and size limits.
    pub limits: LimitPolicy,
    /// Backup requests for slow answers (`hedge`). Default: `None` (off).
    pub hedge: Option<super::HedgePolicy>,
    /// Load-aware spill from the preferred cluster (`spill`). Default: `None` (off).
    pub spill: Option<super::SpillPolicy>,
}

/// Timeouts of one call.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct TimeoutPolicy {
    /// Per attempt. Default: 1 s.
    #[serde(serialize_with = "super::units::ser_duration")]
    pub attempt: Duration,
    /// Across all attempts, backoffs and failovers. Default: 3 s.
    #[serde(serialize_with = "super::units::ser_duration")]
    pub total: Duration,
}

impl Default for TimeoutPolicy {
    fn default() -> Self {
        Self {
            attempt: Duration::from_secs(1),
            total: Duration::from_secs(3),
        }
    }
}

/// Retry behaviour.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct RetryPolicy {
    /// Attempts per call including the first (1 disables retries). Default: 3.
    pub max_attempts: u32,
    /// Budget shared by retries and failovers. Default: 20 % + 10/s over 10 s.
    pub budget: RetryBudgetPolicy,
    /// Backoff between attempts on the same cluster. Default: 25 ms growing to 250 ms, jittered.
    pub backoff: BackoffPolicy,
}

impl Default for RetryPolicy {
    fn default() -> Self {
        Self {
            max_attempts: 3,
            budget: RetryBudgetPolicy::default(),
            backoff: BackoffPolicy::default(),
        }
    }
}

/// The retry budget: extra load allowed as a share of traffic.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct RetryBudgetPolicy {
    /// Retries allowed as a percentage of first attempts (0–1000). Default: 20.
    pub percent: u32,
    /// Retries always allowed per second regardless of traffic. Default: 10.
    pub min_per_second: u32,
    /// Window over which requests and retries are counted. Default: 10 s.
    #[serde(serialize_with = "super::units::ser_duration")]
    pub window: Duration,
}

impl Default for RetryBudgetPolicy {
    fn default() -> Self {
        Self {
            percent: 20,
            min_per_second: 10,
            window: Duration::from_secs(10),
        }
    }
}

/// Jittered exponential backoff.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct BackoffPolicy {
    /// First backoff. Default: 25 ms.
    #[serde(serialize_with = "super::units::ser_duration")]
    pub base: Duration,
    /// Largest backoff. Default: 250 ms.
    #[serde(serialize_with = "super::units::ser_duration")]
    pub max: Duration,
}

impl Default for BackoffPolicy {
    fn default() -> Self {
        Self {
            base: Duration::from_millis(25),
            max: Duration::from_millis(250),
        }
    }
}

/// Per-instance circuit breaker and ejection.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct BreakerPolicy {
    /// Open after this many consecutive failures. Default: 5.
    pub consecutive_failures: u32,
    /// Also open when the failure rate over a window exceeds a threshold. Default: on (50 % of at
    /// least 20 calls over 10 s).
    pub failure_rate: Option<FailureRatePolicy>,
    /// First open (ejection) period. Default: 1 s.
    #[serde(serialize_with = "super::units::ser_duration")]
    pub open_for: Duration,
    /// Open period cap; the period doubles on each repeated ejection. Default: 60 s.
    #[serde(serialize_with = "super::units::ser_duration")]
    pub max_open_for: Duration,
}

impl Default for BreakerPolicy {
    fn default() -> Self {
        Self {
            consecutive_failures: 5,
            failure_rate: Some(FailureRatePolicy::default()),
            open_for: Duration::from_secs(1),
            max_open_for: Duration::from_secs(60),
        }
    }
}

/// Failure-rate trigger of the breaker.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct FailureRatePolicy {
    /// Failure share (0.0–1.0, exclusive of 0) that opens the breaker. Default: 0.5.
    pub threshold: f64,
    /// Calls needed in the window before the rate is judged. Default: 20.
    pub minimum_requests: u32,
    /// Window length. Default: 10 s.
    #[serde(serialize_with = "super::units::ser_duration")]
    pub window: Duration,
}

impl Default for FailureRatePolicy {
    fn default() -> Self {
        Self {
            threshold: 0.5,
            minimum_requests: 20,
            window: Duration::from_secs(10),
        }
    }
}

/// Cluster choice.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct FailoverPolicy {
    /// The preferred cluster is used while at least this share of its instances is available
    /// (0.0–1.0). Default: 0.5.
    pub healthy_threshold: f64,
    /// After a failover, the preferred cluster must stay healthy this long before traffic
    /// returns. Default: 5 s.
    #[serde(serialize_with = "super::units::ser_duration")]
    pub dwell: Duration,
    /// Panic routing (`breaker/panic.rs`): when the instances the breakers admit are at most this
    /// share (0.0–1.0) of the routable ones, over the clusters a call may use, held-out instances
    /// not known to be unreachable are admitted too. `None` (`false` in a file) turns it off.
    /// Default: `Some(0.0)` — only when the breakers admit nothing.
    pub panic_threshold: Option<f64>,
}

impl Default for FailoverPolicy {
    fn default() -> Self {
        Self {
            healthy_threshold: 0.5,
            dwell: Duration::from_secs(5),
            panic_threshold: Some(0.0),
        }
    }
}

/// Result caching of one service. Present = enabled.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct CachePolicy {
    /// Time to live of a stored response. Default: 30 s.
    #[serde(serialize_with = "super::units::ser_duration")]
    pub ttl: Duration,
    /// Cacheable methods (upper case). Default: `GET`, `HEAD`. `POST` keys include a body hash.
    pub methods: Vec<String>,
    /// Request headers whose values are part of the key. Default: none.
    pub vary_headers: Vec<String>,
    /// Upper bound of the service's cache in bytes (keys + bodies). Default: 64 MiB.
    pub max_bytes: u64,
    /// Serve a value this long past its TTL while one background refresh runs. Default: none.
    #[serde(serialize_with = "super::units::ser_opt_duration")]
    pub stale_while_revalidate: Option<Duration>,
    /// Serve a value this long past its TTL when every cluster fails. Default: none.
    #[serde(serialize_with = "super::units::ser_opt_duration")]
    pub stale_if_error: Option<Duration>,
    /// Honour upstream `Cache-Control: max-age` / `no-store`. Default: true.
    pub respect_cache_control: bool,
    /// The shared Redis tier (`cache.l2`). Default: `None` (this process's memory only).
    pub l2: Option<super::L2Policy>,
    /// Paths fetched into the cache when the client starts (`GET`). Default: none.
    pub warm: Vec<String>,
    /// Most warm-up fetches in flight at once. Default: 4.
    pub warm_concurrency: u32,
    /// Entity type → path templates with `{id}` (a trailing `*` makes it a prefix) dropped by
    /// `invalidate_entity(type, id)`, e.g. `user: [/api/v1/users/{id}]`. Default: none.
    pub entities: std::collections::BTreeMap<String, Vec<String>>,
}

impl Default for CachePolicy {
    fn default() -> Self {
        Self {
            ttl: Duration::from_secs(30),
            methods: vec!["GET".to_owned(), "HEAD".to_owned()],
            vary_headers: Vec::new(),
            max_bytes: 64 * 1024 * 1024,
            stale_while_revalidate: None,
            stale_if_error: None,
            respect_cache_control: true,
            l2: None,
            warm: Vec::new(),
            warm_concurrency: 4,
            entities: std::collections::BTreeMap::new(),
        }
    }
}

/// Load protection and size limits.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct LimitPolicy {
    /// Most calls of this service in flight at once (bulkhead). Default: `None` (unlimited).
    pub max_concurrent: Option<u32>,
    /// Token-bucket rate limit. Default: `None`.
    pub rate_limit: Option<RateLimitPolicy>,
    /// Largest response body accepted, in bytes. Default: 32 MiB.
    pub max_response_bytes: u64,
}

impl Default for LimitPolicy {
    fn default() -> Self {
        Self {
            max_concurrent: None,
            rate_limit: None,
            max_response_bytes: 32 * 1024 * 1024,
        }
    }
}

/// A token bucket.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct RateLimitPolicy {
    /// Sustained calls per second (> 0).
    pub per_second: f64,
    /// Bucket size. Default: equal to `per_second`, at least 1.
    pub burst: u32,
}

impl RateLimitPolicy {
    /// The default bucket size for `per_second`: one second's worth of calls, at least 1.
    pub fn default_burst(per_second: f64) -> u32 {
        if per_second.is_finite() && per_second > 1.0 {
            // Saturating float-to-int conversion; rates above u32::MAX are not meaningful.
            per_second.ceil() as u32
        } else {
            1
        }
    }
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
