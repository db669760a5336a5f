//! What discovery produces: instances with health, grouped in snapshots per (cluster, service).

use std::collections::BTreeMap;
use std::fmt;
use std::sync::Arc;
use std::time::{Instant, SystemTime};

use serde::Serialize;

/// Health of an instance as the registry reports it.
///
/// Consul: every check passing → `Passing`; any `warning` and no `critical` → `Warning` (kept in
/// rotation, with the `Warning` weight); any `critical` (maintenance included) → `Critical`
/// (never routed to).
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Health {
    /// Every check passes.
    Passing,
    /// At least one check warns, none is critical.
    Warning,
    /// At least one check is critical (or the instance is in maintenance).
    Critical,
}

/// Consul weights of an instance (`{"Passing": 1, "Warning": 1}` by default).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize)]
pub struct Weights {
    /// Weight while passing (≥ 1).
    pub passing: u32,
    /// Weight while warning (≥ 0; 0 takes a warning instance out of rotation).
    pub warning: u32,
}

impl Default for Weights {
    fn default() -> Self {
        Self {
            passing: 1,
            warning: 1,
        }
    }
}

/// One discovered instance of a service in one cluster.
#[derive(Clone, Debug, PartialEq, Eq, Hash, Serialize)]
pub struct Instance {
    /// Registry id of the instance (Consul `Service.ID`); unique together with `node`.
    pub id: String,
    /// Node name (Consul `Node.Node`); empty for static instances.
    pub node: String,
    /// Host: IPv4/IPv6 literal (no brackets) or host name. Consul: `Service.Address`, falling back
    /// to `Node.Address` when empty.
    pub host: String,
    /// TCP port.
    pub port: u16,
    /// Service tags.
    pub tags: Vec<String>,
    /// Service metadata.
    pub meta: BTreeMap<String, String>,
    /// Consul weights.
    pub weights: Weights,
    /// Registry health.
    pub health: Health,
}

impl Instance {
    /// `host:port`, with IPv6 literals bracketed (`[2001:db8::1]:9000`).
    pub fn authority(&self) -> String {
        if self.host.contains(':') && !self.host.starts_with('[') {
            format!("[{}]:{}", self.host, self.port)
        } else {
            format!("{}:{}", self.host, self.port)
        }
    }

    /// A key unique within one cluster: `node/id` (or `id` when there is no node).
    pub fn key(&self) -> String {
        if self.node.is_empty() {
            self.id.clone()
        } else {
            format!("{}/{}", self.node, self.id)
        }
    }

    /// The weight to balance with given the current health (0 = not routable).
    pub fn effective_weight(&self) -> u32 {
        match self.health {
            Health::Passing => self.weights.passing.max(1),
            Health::Warning => self.weights.warning,
            Health::Critical => 0,
        }
    }

    /// Whether the instance carries every tag in `required` (case-insensitive AND, as Consul).
    pub fn has_tags(&self, required: &[String]) -> bool {
        required
            .iter()
            .all(|want| self.tags.iter().any(|t| t.eq_ignore_ascii_case(want)))
    }
}

impl fmt::Display for Instance {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{} ({})", self.id, self.authority())
    }
}

/// The latest known instances of one Consul service in one cluster.
///
/// A snapshot is never emptied because the registry failed: on errors the previous instances
/// are kept and `stale` is set.
#[derive(Clone, Debug, Serialize)]
pub struct InstanceSet {
    /// Instances as last reported (every health, including critical).
    pub instances: Arc<[Instance]>,
    /// Registry index of the data (Consul `X-Consul-Index`; 0 for static sources).
    pub index: u64,
    /// Whether the registry has answered at least once.
    pub initialized: bool,
    /// When the registry last answered successfully (wall clock, for display).
    pub last_success: Option<SystemTime>,
    /// When the registry last answered successfully (monotonic, for age computations).
    #[serde(skip)]
    pub last_success_at: Option<Instant>,
    /// True when the last poll failed and these instances may be out of date.
    pub stale: bool,
    /// The last discovery error, if the last poll failed.
    pub last_error: Option<String>,
}

impl InstanceSet {
    /// An empty, not yet initialized set (before the first answer).
    pub fn pending() -> Self {
        Self {
            instances: Arc::from(Vec::new()),
            index: 0,
            initialized: false,
            last_success: None,
            last_success_at: None,
            stale: false,
            last_error: None,
        }
    }

    /// A fresh set built from a successful answer.
    pub fn fresh(instances: Vec<Instance>, index: u64) -> Self {
        Self {
            instances: Arc::from(instances),
            index,
            initialized: true,
            last_success: Some(SystemTime::now()),
            last_success_at: Some(Instant::now()),
            stale: false,
            last_error: None,
        }
    }

    /// Instances that may receive traffic (not critical, non-zero weight).
    pub fn routable(&self) -> impl Iterator<Item = &Instance> {
        self.instances.iter().filter(|i| i.effective_weight() > 0)
    }
}
