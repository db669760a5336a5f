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

    /// A client for `config` that re-reads `path` every `every` and applies its edits
    /// (`federation health --watch` follows a configuration being edited).
    ///
    /// # Errors
    /// As [`new`](Self::new).
    pub fn watching(
        config: Config,
        path: std::path::PathBuf,
        every: Duration,
    ) -> Result<Self, CliError> {
        let client = FederatedServiceClient::builder()
            .config(config)
            .watch_config_file(path, every)
            .build()?;
        Ok(Self { client })
    }

    /// The configuration generation the client runs.
    pub fn generation(&self) -> federation_core::telemetry::ConfigGeneration {
        self.client.config_generation()
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
        let snapshot = wait_for_discovery(&self.client, wait).await;
        snapshot
            .services
            .into_iter()
            .filter(|s| services.contains(&s.service))
            .collect()
    }
}

/// Waits (at most `wait`) until the client is ready ([`FederatedServiceClient::wait_ready`]:
/// every registry answered once) and returns its health snapshot.
///
/// A fresh client routes as soon as any cluster answers, so the first call of a short-lived
/// process could otherwise go to the non-preferred cluster only because its registry answered a
/// few milliseconds earlier (and then stay there for the fail-back dwell time). A registry that
/// does not answer in time is no error here: the snapshot shows it (its `last_error`, nothing
/// discovered), and calls still route by what is known.
pub async fn wait_for_discovery(client: &FederatedServiceClient, wait: Duration) -> HealthSnapshot {
    // Not ready in time: the snapshot reports why, per cluster.
    let _not_ready = client.wait_ready(wait).await;
    client.health()
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
    if c.last_success.is_none() && c.last_error.is_none() {
        "no answer"
    } else if c.stale || c.last_success.is_none() {
        "stale"
    } else {
        "fresh"
    }
}
