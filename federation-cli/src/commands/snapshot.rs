//! What `discover` and `health` show: per logical service and cluster, the instances the
//! registry reports and whether any can take traffic.
//!
//! Operators debugging "why did this call fail over" need the client's view, not Consul's UI:
//! the logical service mapped to each cluster's Consul name and tags, the instances that are
//! routable, and whether the cluster's registry answered or the list is stale. The view comes
//! from federation-core's own discovery ([`ClusterDiscovery`]), so it applies exactly the
//! client's rules (health from every check, tag filters, last known set kept on errors).

use std::time::Duration;

use federation_core::config::{Config, ServiceConfig};
use federation_core::discovery::{ClusterDiscovery, Health, InstanceSet};
use serde::Serialize;

use crate::exit::{CliError, Exit};

/// One logical service across clusters.
#[derive(Debug, Serialize)]
pub struct ServiceView {
    /// Logical name.
    pub service: String,
    /// Preferred cluster, if any.
    pub prefer: Option<String>,
    /// One entry per cluster the service is mapped to.
    pub clusters: Vec<ClusterView>,
}

impl ServiceView {
    /// Routable instances across every cluster.
    pub fn routable(&self) -> usize {
        self.clusters.iter().map(|c| c.routable).sum()
    }
}

/// A logical service in one cluster.
#[derive(Debug, Serialize)]
pub struct ClusterView {
    /// Cluster name.
    pub cluster: String,
    /// Consul service name in that cluster.
    pub consul_service: String,
    /// Instances as reported (every health).
    pub instances: Vec<InstanceView>,
    /// Instances that may receive traffic (passing or warning with weight, tags matching).
    pub routable: usize,
    /// Whether the registry has answered at least once.
    pub initialized: bool,
    /// Whether the last registry poll failed (the list may be out of date).
    pub stale: bool,
    /// The registry error, if any.
    pub error: Option<String>,
}

/// One instance.
#[derive(Debug, Serialize)]
pub struct InstanceView {
    /// Registry id.
    pub id: String,
    /// `host:port`.
    pub address: String,
    /// Consul health.
    pub health: Health,
    /// Tags.
    pub tags: Vec<String>,
    /// Whether the service's tag filter admits it and it is routable.
    pub routable: bool,
}

/// Discovery for every configured cluster, kept alive between snapshots (`health --watch`).
#[derive(Debug)]
pub struct Collector {
    config: Config,
    clusters: Vec<ClusterDiscovery>,
}

/// How long the first snapshot waits for each registry.
pub const FIRST_ANSWER: Duration = Duration::from_secs(5);

impl Collector {
    /// Discovery for every cluster in `config`.
    ///
    /// # Errors
    /// Exit 3 when a cluster's discovery source is unusable (bad address, missing token
    /// variable, unreadable CA file).
    pub fn new(config: Config) -> Result<Self, CliError> {
        let clusters = config
            .clusters
            .iter()
            .map(|c| {
                ClusterDiscovery::new(c)
                    .map_err(|e| CliError::new(Exit::Config, "config", e.to_string()))
            })
            .collect::<Result<_, _>>()?;
        Ok(Self { config, clusters })
    }

    /// The logical services to show: `only` or every configured one.
    ///
    /// # Errors
    /// Exit 2 for an unknown service, listing the known ones.
    pub fn services(&self, only: Option<&str>) -> Result<Vec<ServiceConfig>, CliError> {
        match only {
            None => Ok(self.config.services.clone()),
            Some(name) => match self.config.service(name) {
                Some(s) => Ok(vec![s.clone()]),
                None => {
                    let known: Vec<&str> = self
                        .config
                        .services
                        .iter()
                        .map(|s| s.name.as_str())
                        .collect();
                    Err(CliError::usage(format!(
                        "unknown service `{name}`; configured services: {}",
                        known.join(", ")
                    )))
                }
            },
        }
    }

    /// A snapshot of `services`, waiting up to `wait` for registries that never answered.
    pub async fn snapshot(&self, services: &[ServiceConfig], wait: Duration) -> Vec<ServiceView> {
        let mut views = Vec::new();
        for service in services {
            let mut clusters = Vec::new();
            for discovery in &self.clusters {
                let Some((consul_name, tags)) = target(service, discovery.cluster()) else {
                    continue;
                };
                let (set, error) = match discovery.wait_initialized(&consul_name, wait).await {
                    Ok(set) => (set, None),
                    Err(e) => (
                        discovery.watch(&consul_name).borrow().clone(),
                        Some(e.to_string()),
                    ),
                };
                clusters.push(cluster_view(
                    discovery.cluster(),
                    consul_name,
                    &tags,
                    &set,
                    error,
                ));
            }
            views.push(ServiceView {
                service: service.name.clone(),
                prefer: service.prefer.clone(),
                clusters,
            });
        }
        views
    }
}

/// The Consul name and required tags of `service` in `cluster`, if it is mapped there.
fn target(service: &ServiceConfig, cluster: &str) -> Option<(String, Vec<String>)> {
    if service.targets.is_empty() {
        return Some((service.name.clone(), service.tags.clone()));
    }
    let t = service.targets.iter().find(|t| t.cluster == cluster)?;
    let mut tags = service.tags.clone();
    tags.extend(t.tags.iter().cloned());
    Some((t.consul_name.clone(), tags))
}

fn cluster_view(
    cluster: &str,
    consul_service: String,
    tags: &[String],
    set: &InstanceSet,
    error: Option<String>,
) -> ClusterView {
    let instances: Vec<InstanceView> = set
        .instances
        .iter()
        .map(|i| InstanceView {
            id: i.id.clone(),
            address: i.authority(),
            health: i.health,
            tags: i.tags.clone(),
            routable: i.effective_weight() > 0 && i.has_tags(tags),
        })
        .collect();
    ClusterView {
        cluster: cluster.to_owned(),
        consul_service,
        routable: instances.iter().filter(|i| i.routable).count(),
        instances,
        initialized: set.initialized,
        stale: set.stale,
        error: error.or_else(|| set.last_error.clone()),
    }
}

/// Waits (at most `wait` per cluster) until every cluster each of `services` maps to has
/// answered discovery once. Unknown services and unusable sources are ignored (the call that
/// follows reports them).
///
/// A fresh client routes as soon as any cluster answers, so the first call of a short-lived
/// process could go to the non-preferred cluster only because its registry answered a few
/// milliseconds earlier (and then stay there for the fail-back dwell time). The client's own
/// watchers start when it is built, before these, so once these have answered the client's
/// have too in practice.
// Replace with the client's health snapshot (discovery freshness per route) or a client-side
// "wait for the first discovery answer" once federation-core offers one (issues 3 and 4).
pub async fn wait_for_discovery(config: Config, services: &[&str], wait: Duration) {
    let Ok(collector) = Collector::new(config) else {
        return;
    };
    for name in services {
        if let Ok(list) = collector.services(Some(name)) {
            let _ = collector.snapshot(&list, wait).await;
        }
    }
}

/// Exit 4 when some shown service has no routable instance anywhere, else 0.
pub fn exit_for(views: &[ServiceView]) -> Exit {
    if views.iter().any(|v| v.routable() == 0) {
        Exit::Unavailable
    } else {
        Exit::Ok
    }
}

/// Lower-case label of a health value.
pub fn health_label(health: Health) -> &'static str {
    match health {
        Health::Passing => "passing",
        Health::Warning => "warning",
        Health::Critical => "critical",
    }
}
