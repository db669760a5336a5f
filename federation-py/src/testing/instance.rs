//! `ServiceInstance`: one programmable HTTP instance answering with its identity.

use federation_testkit::instance::{Behavior, Identity, Latency, Mode, ServiceInstance};
use pyo3::exceptions::PyValueError;
use pyo3::prelude::*;
use pyo3::types::PyType;

use super::{io_err, seconds};
use crate::runtime::{self, Pinned};

/// A programmable HTTP service instance on 127.0.0.1 that answers with its identity as JSON.
#[pyclass(frozen, name = "ServiceInstance", module = "federation._federation")]
pub(crate) struct PyServiceInstance {
    pub(super) inner: Pinned<ServiceInstance>,
}

#[pymethods]
impl PyServiceInstance {
    /// Starts an instance on an ephemeral port.
    #[classmethod]
    #[pyo3(signature = (cluster, service, instance))]
    fn start(
        _cls: &Bound<'_, PyType>,
        py: Python<'_>,
        cluster: &str,
        service: &str,
        instance: &str,
    ) -> PyResult<Self> {
        let rt = runtime::current()?;
        let identity = Identity::new(cluster, service, instance);
        let started = rt
            .block_on(py, ServiceInstance::start(identity))?
            .map_err(io_err)?;
        Ok(Self {
            inner: Pinned::new(started, rt),
        })
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
    /// `"malformed_headers"`, `"slow_drip"` (32-byte chunks every `chunk_delay` seconds, default
    /// 0.05) or `"oversized"` (a body of `body_size` bytes, required).
    #[pyo3(signature = (*, status=None, latency=None, error_rate=0.0, error_status=500, retry_after=None, mode="normal", body_size=None, chunk_delay=None))]
    #[allow(clippy::too_many_arguments, reason = "the Python keyword arguments")]
    fn set_behavior(
        &self,
        status: Option<u16>,
        latency: Option<&Bound<'_, PyAny>>,
        error_rate: f64,
        error_status: u16,
        retry_after: Option<String>,
        mode: &str,
        body_size: Option<usize>,
        chunk_delay: Option<f64>,
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
        let oversized = mode == "oversized";
        let mode = match mode {
            "normal" => Mode::Normal,
            "hang" => Mode::Hang,
            "reset_after_request" => Mode::ResetAfterRequest,
            "reset_mid_body" => Mode::ResetMidBody,
            "malformed_headers" => Mode::MalformedHeaders,
            "slow_drip" => Mode::SlowDrip {
                chunk_delay: seconds("chunk_delay", chunk_delay.unwrap_or(0.05))?,
            },
            "oversized" => Mode::Oversized {
                bytes: body_size
                    .ok_or_else(|| PyValueError::new_err("mode \"oversized\" needs `body_size`"))?,
            },
            other => return Err(PyValueError::new_err(format!("unknown mode {other:?}"))),
        };
        self.inner.get()?.set_behavior(Behavior {
            latency,
            error_rate,
            error_status,
            status,
            retry_after,
            mode,
            body_size: body_size.filter(|_| !oversized),
        });
        Ok(())
    }

    /// Stops listening and resets open connections.
    fn kill(&self, py: Python<'_>) -> PyResult<()> {
        let instance = self.inner.get()?.clone();
        self.inner
            .rt()
            .block_on(py, async move { instance.kill().await })
    }

    /// Listens again on the same port.
    fn restart(&self, py: Python<'_>) -> PyResult<()> {
        let instance = self.inner.get()?.clone();
        self.inner
            .rt()
            .block_on(py, async move { instance.restart().await })?
            .map_err(io_err)
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
