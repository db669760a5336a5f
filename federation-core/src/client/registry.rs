//! Self-registration through the client: a service announces itself in one cluster's Consul.
//!
//! **Failures prevented.** A service registered with a TTL check that nobody heartbeats turns
//! critical one TTL after start and drops out of every caller's routing table; a heartbeat
//! period chosen too close to the TTL lets one slow Consul answer flip the instance to critical;
//! and a service that forgets to deregister on shutdown keeps receiving traffic until its check
//! fails. So [`FederatedServiceClient::register`] starts one heartbeat per TTL check itself, at a
//! third of the TTL (two heartbeats can be lost before the check lapses), and returns a
//! [`Registered`] handle that owns those heartbeats and whose [`Registered::deregister`]
//! removes the instance.
//!
//! **Algorithm.** Find the cluster's discovery handle (unknown or static cluster: an
//! `InvalidRequest` error, nothing sent); `PUT /v1/agent/service/register` through it (Consul's
//! register is an upsert, so registering again refreshes the definition); then spawn the
//! heartbeats, each passing its check at once and then every `ttl / 3`. Dropping the handle
//! stops the heartbeats but leaves the instance registered (its TTL checks then lapse to
//! critical, so callers stop routing to it); deregistering stops them first, then removes the
//! instance and its checks.
//!
//! ```no_run
//! use std::time::Duration;
//! use federation_core::client::FederatedServiceClient;
//! use federation_core::discovery::{Registration, RegistrationCheck};
//!
//! # async fn demo(client: FederatedServiceClient) -> Result<(), federation_core::error::Error> {
//! let mut reg = Registration::new("order-1", "order-svc", "10.8.3.14", 7443);
//! reg.checks.push(RegistrationCheck::Ttl {
//!     check_id: None,
//!     ttl: Duration::from_secs(15),
//!     deregister_critical_after: None,
//! });
//! let registered = client.register("looma", &reg).await?; // heartbeats every 5 s
//! // ... serve ...
//! registered.deregister().await?;
//! # Ok(())
//! # }
//! ```

use std::time::Duration;

use super::front::FederatedServiceClient;
use crate::discovery::{
    ClusterDiscovery, DiscoveryError, DiscoveryErrorKind, HeartbeatHandle, Registration,
    RegistrationCheck,
};
use crate::error::Error;

/// Shortest heartbeat period, whatever the TTL (keeps a tiny TTL from becoming a busy loop).
const MIN_HEARTBEAT: Duration = Duration::from_millis(10);

impl FederatedServiceClient {
    /// Registers `registration` with the Consul agent of `cluster` and keeps its TTL checks
    /// passing with heartbeats every third of their TTL, for as long as the returned handle
    /// lives. HTTP checks are run by the agent: a new instance starts critical and becomes
    /// passing after the agent's first successful probe.
    ///
    /// # Errors
    /// [`ErrorKind::InvalidRequest`](crate::error::ErrorKind::InvalidRequest) when `cluster` is
    /// unknown, has a static instance list ("registration needs a Consul cluster"), or the
    /// registration is invalid (no name, unroutable address, port 0, zero TTL or interval);
    /// nothing is sent then. [`ErrorKind::Discovery`](crate::error::ErrorKind::Discovery),
    /// naming the cluster, when the agent is unreachable or refuses (e.g. 403 for a bad token).
    pub async fn register(
        &self,
        cluster: &str,
        registration: &Registration,
    ) -> Result<Registered, Error> {
        let discovery = self.registry_of(cluster)?;
        discovery
            .register(registration)
            .await
            .map_err(registry_error)?;
        // `ttl_check_ids()` lists the TTL checks' ids in declaration order, as registered.
        let ttls = registration.checks.iter().filter_map(|check| match check {
            RegistrationCheck::Ttl { ttl, .. } => Some(*ttl),
            RegistrationCheck::Http { .. } => None,
        });
        let check_ids = registration.ttl_check_ids();
        let heartbeats = check_ids
            .iter()
            .zip(ttls)
            .map(|(id, ttl)| discovery.spawn_heartbeat(id, heartbeat_period(ttl)))
            .collect();
        tracing::info!(
            cluster,
            service_id = registration.service_id(),
            ttl_checks = check_ids.len(),
            "registered"
        );
        Ok(Registered {
            discovery,
            service_id: registration.service_id().to_owned(),
            check_ids,
            heartbeats,
        })
    }

    /// Removes the instance `service_id` and its checks from the Consul agent of `cluster`
    /// (the agent it was registered with). Use [`Registered::deregister`] for instances
    /// registered by this process; this is for the others.
    ///
    /// # Errors
    /// `InvalidRequest` for an unknown or static cluster or an empty id;
    /// [`ErrorKind::Discovery`](crate::error::ErrorKind::Discovery), naming the cluster, when the
    /// agent fails or does not know `service_id` (a 404 status).
    pub async fn deregister(&self, cluster: &str, service_id: &str) -> Result<(), Error> {
        if service_id.trim().is_empty() {
            return Err(Error::invalid(format!(
                "deregistering from cluster `{cluster}` needs a service id"
            )));
        }
        let discovery = self.registry_of(cluster)?;
        discovery
            .deregister(service_id)
            .await
            .map_err(registry_error)
    }

    /// The discovery handle of `cluster`, or an `InvalidRequest` error naming the known ones.
    fn registry_of(&self, cluster: &str) -> Result<ClusterDiscovery, Error> {
        let inner = self.inner();
        inner
            .clusters
            .iter()
            .find(|c| &*c.name == cluster)
            .map(|c| c.discovery.clone())
            .ok_or_else(|| {
                Error::invalid(format!(
                    "unknown cluster `{cluster}` (configured: {})",
                    inner.cluster_names.join(", ")
                ))
            })
    }
}

/// A registered instance: owns the heartbeats of its TTL checks.
///
/// Dropping it stops the heartbeats but does **not** deregister (a crashed process behaves the
/// same way: its TTL checks lapse to critical and callers stop routing to it). Call
/// [`deregister`](Self::deregister) on a clean shutdown.
#[derive(Debug)]
#[must_use = "dropping the handle stops the TTL heartbeats"]
pub struct Registered {
    discovery: ClusterDiscovery,
    service_id: String,
    check_ids: Vec<String>,
    heartbeats: Vec<HeartbeatHandle>,
}

impl Registered {
    /// The cluster the instance is registered in.
    pub fn cluster(&self) -> &str {
        self.discovery.cluster()
    }

    /// The instance id as Consul knows it.
    pub fn service_id(&self) -> &str {
        &self.service_id
    }

    /// The ids of the TTL checks this handle heartbeats, in declaration order.
    pub fn ttl_check_ids(&self) -> &[String] {
        &self.check_ids
    }

    /// Whether every heartbeat task is still running (true when there are none).
    pub fn is_heartbeating(&self) -> bool {
        self.heartbeats.iter().all(HeartbeatHandle::is_running)
    }

    /// Stops the heartbeats, then removes the instance and its checks from the agent.
    ///
    /// # Errors
    /// [`ErrorKind::Discovery`](crate::error::ErrorKind::Discovery), naming the cluster, when the
    /// agent fails or no longer knows the instance (404, e.g. removed by
    /// `deregister_critical_after`). The heartbeats are stopped in every case.
    pub async fn deregister(mut self) -> Result<(), Error> {
        for heartbeat in self.heartbeats.drain(..) {
            heartbeat.stop();
        }
        self.discovery
            .deregister(&self.service_id)
            .await
            .map_err(registry_error)?;
        tracing::info!(
            cluster = self.discovery.cluster(),
            service_id = self.service_id,
            "deregistered"
        );
        Ok(())
    }
}

/// A third of the TTL, so two heartbeats can be lost before the check lapses.
fn heartbeat_period(ttl: Duration) -> Duration {
    (ttl / 3).max(MIN_HEARTBEAT)
}

/// Registry errors as client errors: the caller's mistakes (static cluster, invalid
/// registration) are `InvalidRequest`; the agent's failures stay `Discovery`.
fn registry_error(error: DiscoveryError) -> Error {
    match error.kind {
        DiscoveryErrorKind::Unsupported => Error::invalid(format!(
            "registration needs a Consul cluster; cluster `{}` has a static instance list",
            error.cluster
        )),
        DiscoveryErrorKind::Config => {
            Error::invalid(format!("cluster `{}`: {}", error.cluster, error.message))
        }
        _ => error.into(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn heartbeats_run_at_a_third_of_the_ttl() {
        assert_eq!(
            heartbeat_period(Duration::from_secs(15)),
            Duration::from_secs(5)
        );
        assert_eq!(heartbeat_period(Duration::from_millis(3)), MIN_HEARTBEAT);
    }
}
