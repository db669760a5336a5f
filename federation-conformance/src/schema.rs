//! The scenario file format (`tests/scenarios/*.yaml`), shared by the Rust, Python and Go runners.
//!
//! Three runners that each invent their own idea of "kill an instance" or "success share" would
//! prove three different things. So a scenario is plain data: a **topology** (clusters, their
//! Consul services and instance counts), the **client** configuration fragment handed to the SDK
//! unchanged (the runner only adds each cluster's discovery source), and a list of **steps**
//! executed in order: faults, waits, streams of calls with **expectations**, and health checks.
//! Unknown keys are errors, so a typo cannot silently turn an expectation off. The full format is
//! documented in `docs/conformance.md`.

use std::collections::BTreeMap;

use serde::Deserialize;

/// One scenario file.
#[derive(Clone, Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Scenario {
    /// Short identifier (the file stem by convention).
    pub name: String,
    /// What the scenario proves, one sentence (shown in `docs/conformance.md`).
    pub proves: String,
    /// Set when the scenario fails because of a known SDK bug: runners report it without failing.
    #[serde(default)]
    pub known_failure: Option<String>,
    /// Clusters and their instances.
    pub topology: Topology,
    /// SDK configuration without `clusters` (`services`, `defaults`), in the SDK's own schema.
    #[serde(default)]
    pub client: serde_json::Value,
    /// What happens, in order.
    pub steps: Vec<Step>,
}

/// The clusters of a scenario, in declaration order (the SDK's failover tie-break order).
#[derive(Clone, Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Topology {
    /// The clusters.
    pub clusters: Vec<ClusterSpec>,
}

/// One cluster: its discovery source and its Consul services.
#[derive(Clone, Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ClusterSpec {
    /// Cluster name (also the SDK cluster name).
    pub name: String,
    /// `consul` (a Consul double with HTTP checks on every instance) or `static`.
    #[serde(default)]
    pub discovery: DiscoveryKind,
    /// Written to the SDK cluster's `load_balancing` when set.
    #[serde(default)]
    pub load_balancing: Option<String>,
    /// Consul service name → how many instances it has.
    pub services: BTreeMap<String, ServiceSpec>,
    /// A slow agent from the start: the cluster's Consul double answers every request this many
    /// milliseconds late (the `slow` fault applied before the client exists).
    #[serde(default)]
    pub consul_delay_ms: Option<u64>,
}

/// How a cluster's instances are discovered.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum DiscoveryKind {
    /// A Consul double per cluster; instances registered with an HTTP check on `/health`
    /// (interval 100 ms) that starts passing.
    #[default]
    Consul,
    /// A static instance list in the client configuration.
    Static,
}

/// One Consul service of a cluster.
#[derive(Clone, Debug, Deserialize)]
#[serde(untagged)]
pub enum ServiceSpec {
    /// Just an instance count.
    Count(usize),
    /// Count and per-instance tags.
    Detailed {
        /// Instance count.
        instances: usize,
        /// Tags of every instance.
        #[serde(default)]
        tags: Vec<String>,
    },
}

impl ServiceSpec {
    /// The instance count.
    pub fn instances(&self) -> usize {
        match self {
            Self::Count(n) => *n,
            Self::Detailed { instances, .. } => *instances,
        }
    }

    /// The tags of every instance.
    pub fn tags(&self) -> &[String] {
        match self {
            Self::Count(_) => &[],
            Self::Detailed { tags, .. } => tags,
        }
    }
}

/// One step. Written as a single-key map, e.g. `- kill: zervigo/user-service/0`.
#[derive(Clone, Debug, Deserialize)]
#[serde(rename_all = "snake_case", deny_unknown_fields)]
pub enum Step {
    /// Stop instances (connections refused; their Consul checks turn critical).
    Kill(String),
    /// Restart instances on their old ports.
    Revive(String),
    /// Give instances a behaviour (replaces the previous one).
    Behavior(BehaviorSpec),
    /// Set the status instances answer on `/health` (their Consul check follows) while the
    /// instances keep serving normally.
    HealthStatus(HealthStatusSpec),
    /// Inject a fault into a cluster's Consul double.
    Consul(ConsulFaultSpec),
    /// Pause.
    SleepMs(u64),
    /// Wait until the cluster's Consul double lists exactly `count` passing instances.
    WaitPassing(WaitPassingSpec),
    /// Run a stream of calls and check expectations over it.
    Calls(Box<CallsStep>),
    /// Check the client's health snapshot.
    Health(HealthExpect),
}

/// `behavior:` step.
#[derive(Clone, Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct BehaviorSpec {
    /// Instance reference (`cluster`, `cluster/service` or `cluster/service/index`).
    pub target: String,
    /// Fixed status for every request.
    #[serde(default)]
    pub status: Option<u16>,
    /// Fixed latency.
    #[serde(default)]
    pub latency_ms: Option<u64>,
    /// Probability of answering `error_status`.
    #[serde(default)]
    pub error_rate: Option<f64>,
    /// Status used by `error_rate` (default 500).
    #[serde(default)]
    pub error_status: Option<u16>,
    /// `Retry-After` on error answers.
    #[serde(default)]
    pub retry_after: Option<String>,
    /// `normal`, `hang`, `reset_after_request`, `reset_mid_body`, `malformed_headers`,
    /// `slow_drip` (with `chunk_delay_ms`) or `oversized` (with `bytes`).
    #[serde(default)]
    pub mode: Option<String>,
    /// Delay between 32-byte chunks for `slow_drip`.
    #[serde(default)]
    pub chunk_delay_ms: Option<u64>,
    /// Body size for `oversized`.
    #[serde(default)]
    pub bytes: Option<usize>,
}

/// `health_status:` step.
#[derive(Clone, Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct HealthStatusSpec {
    /// Instance reference.
    pub target: String,
    /// Status answered on `/health` (200 passing, 503 critical).
    pub status: u16,
}

/// `consul:` step.
#[derive(Clone, Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ConsulFaultSpec {
    /// Cluster whose double is affected.
    pub cluster: String,
    /// `down`, `hang`, `no_leader`, `garbled`, `index_reset`, `acl_not_found`, `slow` (with
    /// `delay_ms`) or `clear`.
    pub fault: String,
    /// Delay for `slow`.
    #[serde(default)]
    pub delay_ms: Option<u64>,
}

/// `wait_passing:` step.
#[derive(Clone, Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct WaitPassingSpec {
    /// `cluster/service`.
    pub target: String,
    /// Expected passing instances.
    pub count: usize,
    /// Give up (scenario fails) after this long. Default 5000.
    #[serde(default = "default_wait_ms")]
    pub timeout_ms: u64,
}

fn default_wait_ms() -> u64 {
    5_000
}

/// `calls:` step: what to send and what must hold over the results.
#[derive(Clone, Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CallsStep {
    /// Label used in reports.
    #[serde(default)]
    pub name: Option<String>,
    /// The request every call sends.
    pub request: CallSpec,
    /// Number of calls. Default 1.
    #[serde(default = "one")]
    pub count: usize,
    /// Concurrent workers sharing the count. Default 1.
    #[serde(default = "one")]
    pub concurrency: usize,
    /// Pause after each call per worker (sets the rate). Default 0.
    #[serde(default)]
    pub interval_ms: u64,
    /// Configuration reloads made while the calls run (hot reload under traffic).
    #[serde(default)]
    pub reloads: Option<ReloadsSpec>,
    /// What must hold.
    #[serde(default)]
    pub expect: CallsExpect,
}

/// `reloads:` of a calls step: while the calls run, every `every_ms` the client is reloaded
/// with the next of `clients` (cycling), each a `client` block as at the top of the scenario
/// (the topology's `clusters` are added to it). A rejected reload, or none before the calls
/// end, fails the step.
#[derive(Clone, Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ReloadsSpec {
    /// Pause before each reload.
    pub every_ms: u64,
    /// The `client` blocks applied in turn.
    pub clients: Vec<serde_json::Value>,
}

fn one() -> usize {
    1
}

/// One call, as every language's SDK spells it.
#[derive(Clone, Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CallSpec {
    /// Logical service.
    pub service: String,
    /// HTTP method. Default `GET`.
    #[serde(default = "get")]
    pub method: String,
    /// Path. Default `/work`.
    #[serde(default = "work")]
    pub path: String,
    /// Overrides the method's idempotency.
    #[serde(default)]
    pub idempotent: Option<bool>,
    /// Total deadline of each call.
    #[serde(default)]
    pub timeout_ms: Option<u64>,
    /// Per-attempt timeout.
    #[serde(default)]
    pub attempt_timeout_ms: Option<u64>,
    /// Explicit cluster.
    #[serde(default)]
    pub cluster: Option<String>,
    /// Per-call tag filter.
    #[serde(default)]
    pub tags: Option<Vec<String>>,
    /// Request body (UTF-8).
    #[serde(default)]
    pub body: Option<String>,
    /// Request headers.
    #[serde(default)]
    pub headers: BTreeMap<String, String>,
}

fn get() -> String {
    "GET".to_owned()
}

fn work() -> String {
    "/work".to_owned()
}

/// An inclusive bound; either side may be absent.
#[derive(Clone, Copy, Debug, Default, PartialEq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Bound {
    /// Lowest allowed value.
    #[serde(default)]
    pub min: Option<f64>,
    /// Highest allowed value.
    #[serde(default)]
    pub max: Option<f64>,
}

impl Bound {
    /// Whether `value` lies within the bound.
    pub fn holds(&self, value: f64) -> bool {
        self.min.is_none_or(|m| value >= m) && self.max.is_none_or(|m| value <= m)
    }
}

/// Expectations over the calls of one `calls:` step. Every field is optional.
#[derive(Clone, Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CallsExpect {
    /// Share of calls that returned a 2xx response.
    #[serde(default)]
    pub success_share: Option<Bound>,
    /// Cluster → bound on the share of successful calls it served.
    #[serde(default)]
    pub served_by: BTreeMap<String, Bound>,
    /// Most attempts any single call made.
    #[serde(default)]
    pub max_attempts: Option<usize>,
    /// Requests received by every instance of the topology during the step, divided by calls.
    #[serde(default)]
    pub upstream_per_call: Option<Bound>,
    /// Instance reference → bound on the requests its instances received during the step.
    #[serde(default)]
    pub instance_requests: BTreeMap<String, Bound>,
    /// Instance reference → bound on the attempts the client reported sending to it.
    #[serde(default)]
    pub instance_attempts: BTreeMap<String, Bound>,
    /// Longest allowed duration of a single call, in milliseconds.
    #[serde(default)]
    pub max_call_ms: Option<u64>,
    /// Every failed call must have one of these error kinds (`timeout`, `transport`, ...).
    #[serde(default)]
    pub error_kinds: Option<Vec<String>>,
    /// Every response must have one of these statuses.
    #[serde(default)]
    pub statuses: Option<Vec<u16>>,
    /// Cache status (`hit`, `miss`, `stale`, `bypass`) → bound on how many calls had it.
    #[serde(default)]
    pub cache: BTreeMap<String, Bound>,
}

/// `health:` step: a check of the client's health snapshot for one service in one cluster.
#[derive(Clone, Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct HealthExpect {
    /// Logical service.
    pub service: String,
    /// Cluster the counts refer to.
    #[serde(default)]
    pub cluster: Option<String>,
    /// Cluster the next call would try first.
    #[serde(default)]
    pub selected: Option<String>,
    /// Bound on ejected instances in `cluster`.
    #[serde(default)]
    pub ejected: Option<Bound>,
    /// Bound on available instances in `cluster`.
    #[serde(default)]
    pub available: Option<Bound>,
    /// Expected discovery staleness of `cluster`.
    #[serde(default)]
    pub stale: Option<bool>,
    /// Keep polling the snapshot up to this long before failing. Default 3000.
    #[serde(default = "default_health_wait")]
    pub within_ms: u64,
}

fn default_health_wait() -> u64 {
    3_000
}
