//! `Sandbox`: both clusters with their Consul doubles and instances, and a ready configuration.

use std::sync::Arc;

use federation_testkit::sandbox::{Sandbox, SandboxOptions};
use pyo3::exceptions::{PyKeyError, PyValueError};
use pyo3::prelude::*;
use pyo3::types::PyType;

use super::{io_err, seconds};
use crate::runtime::{self, Pinned};

use super::consul::PyConsulDouble;
use super::instance::PyServiceInstance;

/// Both clusters (zervigo and looma) with their Consul doubles and service instances.
#[pyclass(frozen, name = "Sandbox", module = "federation._federation")]
pub(crate) struct PySandbox {
    inner: Pinned<Arc<Sandbox>>,
}

impl PySandbox {
    fn sandbox(&self) -> PyResult<(Arc<Sandbox>, runtime::RtHandle)> {
        Ok((Arc::clone(self.inner.get()?), self.inner.rt().clone()))
    }
}

#[pymethods]
impl PySandbox {
    /// Starts both clusters and waits until every instance's check passes.
    #[classmethod]
    #[pyo3(signature = (*, instances_per_service=3, check_interval=0.2, seed=0, consul_wait=None, ready_timeout=20.0, record_requests=false))]
    #[allow(clippy::too_many_arguments, reason = "the Python keyword arguments")]
    fn start(
        _cls: &Bound<'_, PyType>,
        py: Python<'_>,
        instances_per_service: usize,
        check_interval: f64,
        seed: u64,
        consul_wait: Option<f64>,
        ready_timeout: f64,
        record_requests: bool,
    ) -> PyResult<Self> {
        let mut options = SandboxOptions::new()
            .instances_per_service(instances_per_service)
            .check_interval(seconds("check_interval", check_interval)?)
            .seed(seed)
            .ready_timeout(seconds("ready_timeout", ready_timeout)?)
            .record_requests(record_requests);
        if let Some(wait) = consul_wait {
            options = options.consul_wait(seconds("consul_wait", wait)?);
        }
        let rt = runtime::current()?;
        let sandbox = rt.block_on(py, Sandbox::start(options))?.map_err(io_err)?;
        Ok(Self {
            inner: Pinned::new(Arc::new(sandbox), rt),
        })
    }

    /// Cluster names in declaration order.
    fn clusters(&self) -> PyResult<Vec<String>> {
        Ok(self
            .sandbox()?
            .0
            .clusters()
            .into_iter()
            .map(str::to_owned)
            .collect())
    }

    /// Consul service names of `cluster`.
    fn services(&self, cluster: &str) -> PyResult<Vec<String>> {
        Ok(self
            .sandbox()?
            .0
            .services(cluster)
            .into_iter()
            .map(str::to_owned)
            .collect())
    }

    /// The client configuration as YAML text.
    fn config_yaml(&self) -> PyResult<String> {
        Ok(self.sandbox()?.0.config_yaml())
    }

    /// The client configuration as a dict (for `FederatedServiceClient.from_dict`).
    fn config<'py>(&self, py: Python<'py>) -> PyResult<Bound<'py, PyAny>> {
        let yaml = self.sandbox()?.0.config_yaml();
        let value: serde_json::Value = serde_norway::from_str(&yaml)
            .map_err(|e| PyValueError::new_err(format!("sandbox configuration: {e}")))?;
        py.import("json")?
            .call_method1("loads", (value.to_string(),))
    }

    /// The Consul double of `cluster`.
    fn consul(&self, cluster: &str) -> PyResult<PyConsulDouble> {
        let (sandbox, rt) = self.sandbox()?;
        let consul = sandbox.try_consul(cluster).ok_or_else(|| {
            PyKeyError::new_err(format!("no cluster {cluster:?}; clusters: zervigo, looma"))
        })?;
        Ok(PyConsulDouble {
            inner: Pinned::new(consul.clone(), rt),
        })
    }

    /// The instances of a Consul service (its Consul name) in a cluster.
    fn instances(&self, cluster: &str, service: &str) -> PyResult<Vec<PyServiceInstance>> {
        let (sandbox, rt) = self.sandbox()?;
        let instances = sandbox.try_instances(cluster, service).ok_or_else(|| {
            PyKeyError::new_err(format!(
                "no service {service:?} in cluster {cluster:?}; services there: {:?}",
                sandbox.services(cluster)
            ))
        })?;
        Ok(instances
            .iter()
            .map(|i| PyServiceInstance {
                inner: Pinned::new(i.clone(), rt.clone()),
            })
            .collect())
    }

    /// Kills every instance of a service in a cluster.
    fn kill_all(&self, py: Python<'_>, cluster: String, service: String) -> PyResult<()> {
        let (sandbox, rt) = self.sandbox()?;
        rt.block_on(
            py,
            async move { sandbox.kill_all(&cluster, &service).await },
        )
    }

    /// Restarts every instance of a service in a cluster on its old port.
    fn revive_all(&self, py: Python<'_>, cluster: String, service: String) -> PyResult<()> {
        let (sandbox, rt) = self.sandbox()?;
        rt.block_on(
            py,
            async move { sandbox.revive_all(&cluster, &service).await },
        )?
        .map_err(io_err)
    }

    /// How many instances of a service the cluster's Consul lists as passing.
    fn passing(&self, py: Python<'_>, cluster: String, service: String) -> PyResult<usize> {
        let (sandbox, rt) = self.sandbox()?;
        rt.block_on(py, async move { sandbox.passing(&cluster, &service).await })?
            .map_err(io_err)
    }

    /// Waits until exactly `expected` instances are passing; `TimeoutError` after `timeout` s.
    #[pyo3(signature = (cluster, service, expected, timeout=20.0))]
    fn wait_for_passing(
        &self,
        py: Python<'_>,
        cluster: String,
        service: String,
        expected: usize,
        timeout: f64,
    ) -> PyResult<()> {
        let (sandbox, rt) = self.sandbox()?;
        let timeout = seconds("timeout", timeout)?;
        rt.block_on(py, async move {
            sandbox
                .wait_for_passing(&cluster, &service, expected, timeout)
                .await
        })?
        .map_err(|e| match e.kind() {
            std::io::ErrorKind::TimedOut => {
                pyo3::exceptions::PyTimeoutError::new_err(e.to_string())
            }
            _ => io_err(e),
        })
    }

    /// Stops every server. Idempotent.
    fn shutdown(&self, py: Python<'_>) -> PyResult<()> {
        let (sandbox, rt) = self.sandbox()?;
        rt.block_on(py, async move { sandbox.shutdown().await })
    }

    fn __enter__(slf: Py<Self>) -> Py<Self> {
        slf
    }

    #[pyo3(signature = (*_exc))]
    fn __exit__(&self, py: Python<'_>, _exc: &Bound<'_, pyo3::types::PyTuple>) -> PyResult<bool> {
        self.shutdown(py)?;
        Ok(false)
    }
}
