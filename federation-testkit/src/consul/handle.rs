//! The public handle: start, inspect, mutate and break a Consul double.

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Instant;

use super::checks::Probes;
use super::error::ConsulDoubleError;
use super::faults;
use super::options::{CheckStatus, ConsulOptions, Fault};
use super::registration::ServiceRegistration;
use super::server::{self, ServerControl};
use super::shared::Shared;

/// A running Consul double on `127.0.0.1`.
///
/// A cheap `Clone` handle; the server (listener, connections, check runners) stops when the
/// last handle is dropped or on [`shutdown`](Self::shutdown). In-process changes
/// ([`register`](Self::register), …) have the same effects as the HTTP agent endpoints: they
/// bump the service's index and wake blocked queries.
#[derive(Clone)]
pub struct ConsulDouble {
    owner: Arc<Owner>,
}

/// Stops everything when the last handle goes away.
struct Owner {
    shared: Arc<Shared>,
}

impl Drop for Owner {
    fn drop(&mut self) {
        self.shared.stop_all();
    }
}

impl std::fmt::Debug for ConsulDouble {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ConsulDouble")
            .field("datacenter", &self.datacenter())
            .field("addr", &self.addr())
            .finish_non_exhaustive()
    }
}

impl ConsulDouble {
    /// Binds `127.0.0.1:0` and starts serving. Must be called inside a tokio runtime.
    ///
    /// # Errors
    /// The socket could not be bound, or the probe HTTP client could not be built.
    pub async fn start(opts: ConsulOptions) -> std::io::Result<ConsulDouble> {
        let listener = server::bind(SocketAddr::from(([127, 0, 0, 1], 0)))?;
        let addr = listener.local_addr()?;
        let shared = Shared::new(opts, ServerControl::new(addr), Probes::new()?);
        server::serve(&shared, listener);
        shared.start_reaper();
        Ok(ConsulDouble {
            owner: Arc::new(Owner { shared }),
        })
    }

    fn shared(&self) -> &Arc<Shared> {
        &self.owner.shared
    }

    /// Base URL, e.g. `http://127.0.0.1:41234` (no trailing slash).
    #[must_use]
    pub fn url(&self) -> String {
        format!("http://{}", self.addr())
    }

    /// The bound address; stays the same across [`Fault::Down`] cycles.
    #[must_use]
    pub fn addr(&self) -> SocketAddr {
        self.shared().server.addr()
    }

    /// The datacenter this double serves.
    #[must_use]
    pub fn datacenter(&self) -> &str {
        &self.shared().opts.datacenter
    }

    /// Registers (or replaces) a service, as `PUT /v1/agent/service/register` does.
    ///
    /// # Errors
    /// [`ConsulDoubleError::Invalid`] with Consul's 400 text for an invalid registration.
    pub fn register(&self, reg: ServiceRegistration) -> Result<(), ConsulDoubleError> {
        self.shared().register(&reg, false)
    }

    /// Removes a service and its checks.
    ///
    /// # Errors
    /// [`ConsulDoubleError::NotFound`] for an unknown service id.
    pub fn deregister(&self, service_id: &str) -> Result<(), ConsulDoubleError> {
        self.shared().deregister(service_id)
    }

    /// Sets a TTL check's status and output and restarts its TTL, as
    /// `PUT /v1/agent/check/{pass,warn,fail}/:id` does.
    ///
    /// # Errors
    /// [`ConsulDoubleError::NotFound`] for an unknown check, [`ConsulDoubleError::NoTtl`] for a
    /// check that is not a TTL check (HTTP/TCP checks are driven by their probes).
    pub fn set_check_status(
        &self,
        check_id: &str,
        status: CheckStatus,
        output: &str,
    ) -> Result<(), ConsulDoubleError> {
        self.shared().update_ttl(check_id, status, output)
    }

    /// Turns service maintenance on (a critical `_service_maintenance:<id>` check) or off.
    ///
    /// # Errors
    /// [`ConsulDoubleError::NotFound`] for an unknown service id.
    pub fn set_maintenance(
        &self,
        service_id: &str,
        enable: bool,
        reason: Option<&str>,
    ) -> Result<(), ConsulDoubleError> {
        self.shared().set_maintenance(service_id, enable, reason)
    }

    /// The current `X-Consul-Index` of `/v1/health/service/<name>` (case-insensitive, ≥ 1).
    #[must_use]
    pub fn service_index(&self, name: &str) -> u64 {
        self.shared().read(|catalog| catalog.service_index(name))
    }

    /// When the index of `name` last moved (`None` if it never did).
    #[must_use]
    pub fn last_change(&self, name: &str) -> Option<Instant> {
        self.shared().read(|catalog| catalog.last_change(name))
    }

    /// How many `GET /v1/health/service/<name>` requests arrived (case-insensitive name).
    #[must_use]
    pub fn health_requests(&self, name: &str) -> u64 {
        self.shared().health_requests(name)
    }

    /// Switches a fault on, replacing any previous one. [`Fault::IndexReset`] acts once.
    pub fn set_fault(&self, fault: Fault) {
        faults::set(self.shared(), fault);
    }

    /// Switches faults off; after [`Fault::Down`] the same port is listened on again.
    pub fn clear_fault(&self) {
        faults::clear(self.shared());
    }

    /// Makes blocked queries on `name` return now, with unchanged data and index.
    pub fn spurious_wakeup(&self, name: &str) {
        self.shared().waiters.wake(name, true);
    }

    /// Stops the listener, open connections and check runners. Idempotent.
    pub async fn shutdown(&self) {
        self.shared().stop_all();
        tokio::task::yield_now().await;
    }
}
