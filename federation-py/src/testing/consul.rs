//! `ConsulDouble`: one Consul-compatible registry with fault injection.

use federation_testkit::consul::{
    CheckStatus, ConsulDouble, ConsulOptions, Fault, ServiceRegistration,
};
use pyo3::exceptions::{PyKeyError, PyValueError};
use pyo3::prelude::*;
use pyo3::types::PyType;

use super::{io_err, seconds};
use crate::runtime::{self, Pinned};

/// A Consul-compatible registry double on 127.0.0.1 with fault injection.
#[pyclass(frozen, name = "ConsulDouble", module = "federation._federation")]
pub(crate) struct PyConsulDouble {
    pub(super) inner: Pinned<ConsulDouble>,
}

#[pymethods]
impl PyConsulDouble {
    /// Starts a double serving datacenter `datacenter`; `initial_index` sets where its
    /// `X-Consul-Index` starts (to keep several doubles' index spaces apart).
    #[classmethod]
    #[pyo3(signature = (datacenter="dc1", *, initial_index=None))]
    fn start(
        _cls: &Bound<'_, PyType>,
        py: Python<'_>,
        datacenter: &str,
        initial_index: Option<u64>,
    ) -> PyResult<Self> {
        let rt = runtime::current()?;
        let mut options = ConsulOptions::new(datacenter);
        if let Some(index) = initial_index {
            options.initial_index = index;
        }
        let consul = rt
            .block_on(py, ConsulDouble::start(options))?
            .map_err(io_err)?;
        Ok(Self {
            inner: Pinned::new(consul, rt),
        })
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
    /// "Port", "Tags", "Check": {...}}`), decoded as Consul's agent decodes it (any key case,
    /// snake_case spellings and `None`s accepted).
    fn register(&self, py: Python<'_>, registration: &Bound<'_, PyAny>) -> PyResult<()> {
        let text: String = py
            .import("json")?
            .call_method1("dumps", (registration,))?
            .extract()?;
        let registration = ServiceRegistration::from_json(text.as_bytes())
            .map_err(|e| PyValueError::new_err(format!("invalid registration: {e}")))?;
        self.inner
            .get()?
            .register(registration)
            .map_err(|e| PyValueError::new_err(e.to_string()))
    }

    /// Removes a service instance and its checks.
    fn deregister(&self, service_id: &str) -> PyResult<()> {
        self.inner
            .get()?
            .deregister(service_id)
            .map_err(|e| PyKeyError::new_err(e.to_string()))
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
    fn set_fault(
        &self,
        fault: &str,
        delay: Option<f64>,
        status: Option<u16>,
        body: Option<String>,
    ) -> PyResult<()> {
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
        self.inner
            .rt()
            .block_on(py, async move { consul.shutdown().await })
    }
}
