//! The Consul agent methods of `FederatedServiceClient` for Python: registering and
//! deregistering an instance of the calling service, async and blocking (`*_sync`, the GIL
//! released while waiting). The argument parsing and the heartbeat live in [`crate::registry`];
//! this block only binds them to the class (a second `#[pymethods]` block, PyO3's
//! `multiple-pymethods` feature).

use std::collections::HashMap;

use pyo3::prelude::*;
use pyo3::types::PyDict;

use crate::bridge;
use crate::client::PyClient;
use crate::errors;
use crate::registry::{self, PyRegistration};

#[pymethods]
impl PyClient {
    /// Registers a service instance with the Consul agent of `cluster`; returns an
    /// `asyncio.Future[Registration]`. `http_check` is `{"url", "interval", "timeout"}` (seconds;
    /// the agent probes it); `ttl` (seconds) adds a TTL check that the returned `Registration`
    /// heartbeats every third of the TTL while it lives.
    #[pyo3(signature = (cluster, *, name, id=None, address, port, tags=Vec::new(), meta=None, http_check=None, ttl=None))]
    #[allow(clippy::too_many_arguments, reason = "the Python keyword arguments")]
    fn register<'py>(
        &self,
        py: Python<'py>,
        cluster: String,
        name: String,
        id: Option<String>,
        address: String,
        port: i64,
        tags: Vec<String>,
        meta: Option<HashMap<String, String>>,
        http_check: Option<Bound<'py, PyDict>>,
        ttl: Option<f64>,
    ) -> PyResult<Bound<'py, PyAny>> {
        let (client, rt) = self.client()?;
        let reg = registry::registration(
            py,
            name,
            id,
            address,
            port,
            tags,
            meta,
            http_check.as_ref(),
            ttl,
        )?;
        let work = registry::register_deliver(client, rt.clone(), cluster, reg);
        bridge::spawn(py, &rt, work)
    }

    /// Blocking `register`: releases the GIL while waiting.
    #[pyo3(signature = (cluster, *, name, id=None, address, port, tags=Vec::new(), meta=None, http_check=None, ttl=None))]
    #[allow(clippy::too_many_arguments, reason = "the Python keyword arguments")]
    fn register_sync<'py>(
        &self,
        py: Python<'py>,
        cluster: String,
        name: String,
        id: Option<String>,
        address: String,
        port: i64,
        tags: Vec<String>,
        meta: Option<HashMap<String, String>>,
        http_check: Option<Bound<'py, PyDict>>,
        ttl: Option<f64>,
    ) -> PyResult<PyRegistration> {
        let (client, rt) = self.client()?;
        let reg = registry::registration(
            py,
            name,
            id,
            address,
            port,
            tags,
            meta,
            http_check.as_ref(),
            ttl,
        )?;
        registry::register_sync(py, client, rt, cluster, reg)
    }

    /// Removes the instance `service_id` (and its checks) from the Consul agent of `cluster`;
    /// returns an `asyncio.Future[None]`.
    fn deregister<'py>(
        &self,
        py: Python<'py>,
        cluster: String,
        service_id: String,
    ) -> PyResult<Bound<'py, PyAny>> {
        let (client, rt) = self.client()?;
        bridge::spawn(
            py,
            &rt,
            registry::deregister_id_deliver(client, cluster, service_id),
        )
    }

    /// Blocking `deregister`: releases the GIL while waiting.
    fn deregister_sync(&self, py: Python<'_>, cluster: String, service_id: String) -> PyResult<()> {
        let (client, rt) = self.client()?;
        rt.block_on(
            py,
            async move { client.deregister(&cluster, &service_id).await },
        )?
        .map_err(|e| errors::to_pyerr(py, &e))
    }
}
