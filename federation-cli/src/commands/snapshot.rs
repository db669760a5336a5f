//! What `discover` and `health` show: the client's own view of every logical service in every
//! cluster, from `FederatedServiceClient::health()`.
//!
//! Operators debugging "why did this call fail over" need the client's view, not Consul's UI:
//! the logical service mapped to each cluster's Consul name, the instances the balancer may pick
//! (registry health, tag filter and breaker state together), each instance's EWMA latency, the
//! cluster score and the cluster the next call would try first, and whether the registry answered
//! or the list is stale. Reading the client's snapshot (rather than querying Consul separately)
//! means the CLI can never disagree with what a call would do.

use std::time::Duration;

use federation_core::client::FederatedServiceClient;
use federation_core::config::Config;
use federation_core::discovery::Health;
use federation_core::telemetry::{ClusterHealth, HealthSnapshot, ServiceHealth};
use tokio::time::Instant;

use crate::exit::{CliError, Exit};

/// How long the first snapshot waits for each registry's first answer.
pub const FIRST_ANSWER: Duration = Duration::from_secs(5);

/// A client used only to observe (no calls are made, so breakers start closed).
#[derive(Debug)]
pub struct Collector {
    client: FederatedServiceClient,
}

impl Collector {
    /// A client for `config` (its discovery starts at once).
    ///
    /// # Errors
    /// Exit 3 when the configuration cannot be used (bad address, missing token variable, ...).
    pub fn new(config: Config) -> Result<Self, CliError> {
        Ok(Self {
            client: FederatedServiceClient::from_config(config)?,
        })
    }

    /// The logical services to show: `only` or every configured one.
    ///
    /// # Errors
    /// Exit 2 for an unknown service, listing the known ones.
    pub fn services(&self, only: Option<&str>) -> Result<Vec<String>, CliError> {
        let known = self.client.services();
        match only {
            None => Ok(known),
            Some(name) if known.iter().any(|k| k == name) => Ok(vec![name.to_owned()]),
            Some(name) => Err(CliError::usage(format!(
                "unknown service `{name}`; configured services: {}",
                known.join(", ")
            ))),
        }
    }

    /// The snapshot of `services` (configuration order), after waiting up to `wait` for every
    /// registry they use to answer once.
    pub async fn snapshot(&self, services: &[String], wait: Duration) -> Vec<ServiceHealth> {
        let names: Vec<&str> = services.iter().map(String::as_str).collect();
        let snapshot = wait_for_discovery(&self.client, &names, wait).await;
        snapshot
            .services
            .into_iter()
            .filter(|s| services.contains(&s.service))
            .collect()
    }
}

/// Whether discovery of this cluster has answered (successfully or not).
fn answered(c: &ClusterHealth) -> bool {
    c.last_success.is_some() || c.last_error.is_some()
}

/// Waits (at most `wait`) until every cluster each of `services` maps to has answered discovery
/// once, and returns the client's health snapshot at that moment.
///
/// A fresh client routes as soon as any cluster answers, so the first call of a short-lived
/// process could otherwise go to the non-preferred cluster only because its registry answered a
/// few milliseconds earlier (and then stay there for the fail-back dwell time).
pub async fn wait_for_discovery(
    client: &FederatedServiceClient,
    services: &[&str],
    wait: Duration,
) -> HealthSnapshot {
    let give_up = Instant::now() + wait;
    loop {
        let snapshot = client.health();
        let ready = snapshot
            .services
            .iter()
            .filter(|s| services.contains(&s.service.as_str()))
            .all(|s| s.clusters.iter().all(answered));
        if ready || Instant::now() >= give_up {
            return snapshot;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

/// Exit 4 when some shown service has no available instance anywhere, else 0.
pub fn exit_for(views: &[ServiceHealth]) -> Exit {
    if views.iter().any(|v| available(v) == 0) {
        Exit::Unavailable
    } else {
        Exit::Ok
    }
}

/// Instances the balancer may pick, across clusters.
pub fn available(view: &ServiceHealth) -> usize {
    view.clusters.iter().map(|c| c.available).sum()
}

/// Lower-case label of a health value.
pub fn health_label(health: Health) -> &'static str {
    match health {
        Health::Passing => "passing",
        Health::Warning => "warning",
        Health::Critical => "critical",
    }
}

/// `fresh`, `stale` or `no answer` for a cluster's registry.
pub fn registry_label(c: &ClusterHealth) -> &'static str {
    if !answered(c) {
        "no answer"
    } else if c.stale || c.last_success.is_none() {
        "stale"
    } else {
        "fresh"
    }
}
