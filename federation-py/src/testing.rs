//! `federation.testing`: the testkit for Python users — the two-cluster sandbox, Consul doubles
//! and programmable service instances, all real servers on 127.0.0.1.
//!
//! A Looma service that depends on federation must be able to prove its own failover in pytest
//! without a real Consul or the other cluster. These classes drive the Rust testkit (the same
//! servers the Rust tests use) on the process runtime; every method blocks with the GIL
//! released, so test code stays synchronous and simple.

use std::sync::Arc;
use std::time::Duration;

use federation_testkit::consul::{CheckStatus, ConsulDouble, ConsulOptions, Fault, ServiceRegistration};
use federation_testkit::instance::{Behavior, Identity, Latency, Mode, ServiceInstance};
use federation_testkit::sandbox::{Sandbox, SandboxOptions};
use pyo3::exceptions::{PyKeyError, PyOSError, PyValueError};
use pyo3::prelude::*;
use pyo3::types::PyType;

use crate::runtime::{self, Pinned};

fn seconds(name: &str, value: f64) -> PyResult<Duration> {
    Duration::try_from_secs_f64(value)
        .map_err(|_| PyValueError::new_err(format!("`{name}` must be a non-negative number of seconds, got {value}")))
}

fn io_err(e: std::io::Error) -> PyErr {
    PyOSError::new_err(e.to_string())
}

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
        _cls: &Bound<'_, PyType>, py: Python<'_>, instances_per_service: usize, check_interval: f64, seed: u64,
        consul_wait: Option<f64>, ready_timeout: f64, record_requests: bool,
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
        Ok(self.sandbox()?.0.clusters().into_iter().map(str::to_owned).collect())
    }

    /// Consul service names of `cluster`.
    fn services(&self, cluster: &str) -> PyResult<Vec<String>> {
        Ok(self.sandbox()?.0.services(cluster).into_iter().map(str::to_owned).collect())
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
        py.import("json")?.call_method1("loads", (value.to_string(),))
    }

    /// The Consul double of `cluster`.
    fn consul(&self, cluster: &str) -> PyResult<PyConsulDouble> {
        let (sandbox, rt) = self.sandbox()?;
        let consul = sandbox
            .try_consul(cluster)
            .ok_or_else(|| PyKeyError::new_err(format!("no cluster {cluster:?}; clusters: zervigo, looma")))?;
        Ok(PyConsulDouble { inner: Pinned::new(consul.clone(), rt) })
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
            .map(|i| PyServiceInstance { inner: Pinned::new(i.clone(), rt.clone()) })
            .collect())
    }

    /// Kills every instance of a service in a cluster.
    fn kill_all(&self, py: Python<'_>, cluster: String, service: String) -> PyResult<()> {
        let (sandbox, rt) = self.sandbox()?;
        rt.block_on(py, async move { sandbox.kill_all(&cluster, &service).await })
    }

    /// Restarts every instance of a service in a cluster on its old port.
    fn revive_all(&self, py: Python<'_>, cluster: String, service: String) -> PyResult<()> {
        let (sandbox, rt) = self.sandbox()?;
        rt.block_on(py, async move { sandbox.revive_all(&cluster, &service).await })?
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
    fn wait_for_passing(&self, py: Python<'_>, cluster: String, service: String, expected: usize, timeout: f64) -> PyResult<()> {
        let (sandbox, rt) = self.sandbox()?;
        let timeout = seconds("timeout", timeout)?;
        rt.block_on(py, async move { sandbox.wait_for_passing(&cluster, &service, expected, timeout).await })?
            .map_err(|e| match e.kind() {
                std::io::ErrorKind::TimedOut => pyo3::exceptions::PyTimeoutError::new_err(e.to_string()),
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

/// A Consul-compatible registry double on 127.0.0.1 with fault injection.
#[pyclass(frozen, name = "ConsulDouble", module = "federation._federation")]
pub(crate) struct PyConsulDouble {
    inner: Pinned<ConsulDouble>,
}

#[pymethods]
impl PyConsulDouble {
    /// Starts a double serving datacenter `datacenter`.
    #[classmethod]
    #[pyo3(signature = (datacenter="dc1"))]
    fn start(_cls: &Bound<'_, PyType>, py: Python<'_>, datacenter: &str) -> PyResult<Self> {
        let rt = runtime::current()?;
        let options = ConsulOptions::new(datacenter);
        let consul = rt.block_on(py, ConsulDouble::start(options))?.map_err(io_err)?;
        Ok(Self { inner: Pinned::new(consul, rt) })
    }

    /// Base URL, e.g. `http://127.0.0.1:41234`.
    #[getter]
    fn url(&self) -> PyResult<String> {
        Ok(self.inner.get()?.url())
    }

    /// The datacenter served.
    #[getter]
    fn datacenter(&self) -> PyResult<String> {
        Ok(self.inner.get()?.datacenter().to_owned())
    }

    /// Registers a service from a Consul agent registration dict (`{"ID", "Name", "Address",
    /// "Port", "Tags", "Check": {...}}`; lower-case `id`/`name` accepted).
    fn register(&self, py: Python<'_>, registration: &Bound<'_, PyAny>) -> PyResult<()> {
        let text: String = py.import("json")?.call_method1("dumps", (registration,))?.extract()?;
        let registration: ServiceRegistration = serde_json::from_str(&text)
            .map_err(|e| PyValueError::new_err(format!("invalid registration: {e}")))?;
        self.inner.get()?.register(registration).map_err(|e| PyValueError::new_err(e.to_string()))
    }

    /// Removes a service instance and its checks.
    fn deregister(&self, service_id: &str) -> PyResult<()> {
        self.inner.get()?.deregister(service_id).map_err(|e| PyKeyError::new_err(e.to_string()))
    }

    /// Sets a TTL check's status: `"passing"`, `"warning"` or `"critical"`.
    #[pyo3(signature = (check_id, status, output=""))]
    fn set_check_status(&self, check_id: &str, status: &str, output: &str) -> PyResult<()> {
        let status = CheckStatus::parse(status)
            .ok_or_else(|| PyValueError::new_err(format!("unknown check status {status:?}")))?;
        self.inner
            .get()?
            .set_check_status(check_id, status, output)
            .map_err(|e| PyValueError::new_err(e.to_string()))
    }

    /// Switches a fault on: `"down"`, `"hang"`, `"no_leader"`, `"slow"` (with `delay`),
    /// `"garbled"`, `"status"` (with `status` and `body`), `"index_reset"`, `"acl_not_found"`.
    #[pyo3(signature = (fault, *, delay=None, status=None, body=None))]
    fn set_fault(&self, fault: &str, delay: Option<f64>, status: Option<u16>, body: Option<String>) -> PyResult<()> {
        let fault = match fault {
            "down" => Fault::Down,
            "hang" => Fault::Hang,
            "no_leader" => Fault::NoLeader,
            "slow" => Fault::Slow(seconds("delay", delay.unwrap_or(1.0))?),
            "garbled" => Fault::Garbled,
            "status" => Fault::Status(status.unwrap_or(500), body.unwrap_or_default()),
            "index_reset" => Fault::IndexReset,
            "acl_not_found" => Fault::AclNotFound,
            other => return Err(PyValueError::new_err(format!("unknown fault {other:?}"))),
        };
        let consul = self.inner.get()?;
        let _context = self.inner.rt().tokio().enter();
        consul.set_fault(fault);
        Ok(())
    }

    /// Switches faults off (after `"down"`, the same port is listened on again).
    fn clear_fault(&self) -> PyResult<()> {
        let consul = self.inner.get()?;
        let _context = self.inner.rt().tokio().enter();
        consul.clear_fault();
        Ok(())
    }

    /// How many health reads of `service` arrived.
    fn health_requests(&self, service: &str) -> PyResult<u64> {
        Ok(self.inner.get()?.health_requests(service))
    }

    /// Stops the double. Idempotent.
    fn shutdown(&self, py: Python<'_>) -> PyResult<()> {
        let consul = self.inner.get()?.clone();
        self.inner.rt().block_on(py, async move { consul.shutdown().await })
    }
}

/// A programmable HTTP service instance on 127.0.0.1 that answers with its identity as JSON.
#[pyclass(frozen, name = "ServiceInstance", module = "federation._federation")]
pub(crate) struct PyServiceInstance {
    inner: Pinned<ServiceInstance>,
}

#[pymethods]
impl PyServiceInstance {
    /// Starts an instance on an ephemeral port.
    #[classmethod]
    #[pyo3(signature = (cluster, service, instance))]
    fn start(_cls: &Bound<'_, PyType>, py: Python<'_>, cluster: &str, service: &str, instance: &str) -> PyResult<Self> {
        let rt = runtime::current()?;
        let identity = Identity::new(cluster, service, instance);
        let started = rt.block_on(py, ServiceInstance::start(identity))?.map_err(io_err)?;
        Ok(Self { inner: Pinned::new(started, rt) })
    }

    /// `http://127.0.0.1:<port>`.
    #[getter]
    fn url(&self) -> PyResult<String> {
        Ok(self.inner.get()?.url())
    }

    /// The listening port (kept across kill and restart).
    #[getter]
    fn port(&self) -> PyResult<u16> {
        Ok(self.inner.get()?.port())
    }

    /// The instance id.
    #[getter]
    fn id(&self) -> PyResult<String> {
        Ok(self.inner.get()?.identity().instance.clone())
    }

    /// True unless killed.
    #[getter]
    fn running(&self) -> PyResult<bool> {
        Ok(self.inner.get()?.is_running())
    }

    /// Sets how every following request is answered. `latency`: seconds, or `(low, high)` for a
    /// uniform draw; `mode`: `"normal"`, `"hang"`, `"reset_after_request"`, `"reset_mid_body"`,
    /// `"malformed_headers"`.
    #[pyo3(signature = (*, status=None, latency=None, error_rate=0.0, error_status=500, retry_after=None, mode="normal", body_size=None))]
    #[allow(clippy::too_many_arguments, reason = "the Python keyword arguments")]
    fn set_behavior(
        &self, status: Option<u16>, latency: Option<&Bound<'_, PyAny>>, error_rate: f64, error_status: u16,
        retry_after: Option<String>, mode: &str, body_size: Option<usize>,
    ) -> PyResult<()> {
        let latency = match latency {
            None => Latency::None,
            Some(value) => {
                if let Ok((low, high)) = value.extract::<(f64, f64)>() {
                    Latency::Uniform(seconds("latency", low)?, seconds("latency", high)?)
                } else {
                    Latency::Fixed(seconds("latency", value.extract()?)?)
                }
            }
        };
        let mode = match mode {
            "normal" => Mode::Normal,
            "hang" => Mode::Hang,
            "reset_after_request" => Mode::ResetAfterRequest,
            "reset_mid_body" => Mode::ResetMidBody,
            "malformed_headers" => Mode::MalformedHeaders,
            other => return Err(PyValueError::new_err(format!("unknown mode {other:?}"))),
        };
        self.inner.get()?.set_behavior(Behavior {
            latency,
            error_rate,
            error_status,
            status,
            retry_after,
            mode,
            body_size,
        });
        Ok(())
    }

    /// Stops listening and resets open connections.
    fn kill(&self, py: Python<'_>) -> PyResult<()> {
        let instance = self.inner.get()?.clone();
        self.inner.rt().block_on(py, async move { instance.kill().await })
    }

    /// Listens again on the same port.
    fn restart(&self, py: Python<'_>) -> PyResult<()> {
        let instance = self.inner.get()?.clone();
        self.inner.rt().block_on(py, async move { instance.restart().await })?.map_err(io_err)
    }

    /// Requests received (all paths, or only `path`).
    #[pyo3(signature = (path=None))]
    fn requests(&self, path: Option<&str>) -> PyResult<u64> {
        let instance = self.inner.get()?;
        Ok(match path {
            Some(path) => instance.requests_for(path),
            None => instance.requests(),
        })
    }

    /// Resets the request counters.
    fn reset_counters(&self) -> PyResult<()> {
        self.inner.get()?.reset_counters();
        Ok(())
    }

    /// Status answered on `GET /health` (the Consul check), e.g. 503 to fail the check.
    fn set_health_status(&self, status: u16) -> PyResult<()> {
        self.inner.get()?.set_health_status(status);
        Ok(())
    }
}

/// Adds the testing classes to the module.
pub(crate) fn register(m: &Bound<'_, PyModule>) -> PyResult<()> {
    m.add_class::<PySandbox>()?;
    m.add_class::<PyConsulDouble>()?;
    m.add_class::<PyServiceInstance>()?;
    Ok(())
}
