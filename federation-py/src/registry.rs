//! Self-registration for Python services: `client.register(...)` and the `Registration` handle.
//!
//! **Failures prevented.** A Python service that registers a TTL check must heartbeat it from
//! somewhere; doing it from an asyncio task dies with the loop and stalls whenever the loop is
//! busy, and a thread holding the GIL competes with the application. The heartbeats therefore
//! run in the core, on the process runtime, owned by the returned [`PyRegistration`]: they keep
//! going while the object lives, stop when it is garbage-collected (the instance then lapses to
//! critical, as for a crashed process) and stop before `deregister()` removes the instance.
//!
//! **Algorithm.** Keyword arguments become a core [`Registration`] with the interpreter attached
//! (seconds become `Duration`s, unknown `http_check` keys and bad values are
//! `InvalidRequestError`s, nothing is sent); the core registration then runs like any call, on
//! the async bridge or blocking with the interpreter released.

use std::collections::{BTreeMap, HashMap};
use std::sync::{Mutex, PoisonError};
use std::time::Duration;

use federation_core::client::{FederatedServiceClient, Registered};
use federation_core::discovery::{Registration, RegistrationCheck};
use pyo3::prelude::*;
use pyo3::types::PyDict;

use crate::bridge::{self, Deliver};
use crate::errors;
use crate::runtime::{Pinned, RtHandle};

/// A service instance registered by this process (returned by `client.register`).
///
/// Keeps the heartbeats of its TTL checks running while it lives. Dropping it stops them but
/// does not deregister; call `deregister()` (or `deregister_sync()`) on shutdown.
#[pyclass(frozen, name = "Registration", module = "federation._federation")]
pub(crate) struct PyRegistration {
    cluster: String,
    service_id: String,
    ttl_check_ids: Vec<String>,
    inner: Mutex<Option<Pinned<Registered>>>,
}

impl PyRegistration {
    fn new(registered: Registered, rt: RtHandle) -> Self {
        Self {
            cluster: registered.cluster().to_owned(),
            service_id: registered.service_id().to_owned(),
            ttl_check_ids: registered.ttl_check_ids().to_vec(),
            inner: Mutex::new(Some(Pinned::new(registered, rt))),
        }
    }

    /// The handle, taken out (the next `deregister` is then a no-op), with its runtime.
    fn take(&self) -> PyResult<Option<(Registered, RtHandle)>> {
        let Some(pinned) = self
            .inner
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .take()
        else {
            return Ok(None);
        };
        pinned.get()?;
        let rt = pinned.rt().clone();
        Ok(pinned.into_inner().map(|registered| (registered, rt)))
    }
}

#[pymethods]
impl PyRegistration {
    /// The cluster the instance is registered in.
    #[getter]
    fn cluster(&self) -> &str {
        &self.cluster
    }

    /// The instance id as Consul knows it.
    #[getter]
    fn service_id(&self) -> &str {
        &self.service_id
    }

    /// The ids of the TTL checks heartbeated by this handle.
    #[getter]
    fn ttl_check_ids(&self) -> Vec<String> {
        self.ttl_check_ids.clone()
    }

    /// True while the heartbeats run (until `deregister()`).
    #[getter]
    fn active(&self) -> bool {
        self.inner
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .as_ref()
            .and_then(|p| p.get().ok())
            .is_some_and(Registered::is_heartbeating)
    }

    /// Stops the heartbeats and removes the instance (awaitable). A second call does nothing.
    fn deregister<'py>(&self, py: Python<'py>) -> PyResult<Bound<'py, PyAny>> {
        match self.take()? {
            Some((registered, rt)) => bridge::spawn(py, &rt, deregister_deliver(registered)),
            None => crate::client::ready(py, py.None().into_bound(py)),
        }
    }

    /// Blocking `deregister`: releases the GIL while waiting.
    fn deregister_sync(&self, py: Python<'_>) -> PyResult<()> {
        let Some((registered, rt)) = self.take()? else {
            return Ok(());
        };
        rt.block_on(py, registered.deregister())?
            .map_err(|e| errors::to_pyerr(py, &e))
    }

    fn __repr__(&self) -> String {
        format!(
            "Registration(cluster={:?}, service_id={:?})",
            self.cluster, self.service_id
        )
    }
}

/// Converts the keyword arguments of `client.register` into a core registration.
#[allow(clippy::too_many_arguments, reason = "the Python keyword arguments")]
pub(crate) fn registration(
    py: Python<'_>,
    name: String,
    id: Option<String>,
    address: String,
    port: i64,
    tags: Vec<String>,
    meta: Option<HashMap<String, String>>,
    http_check: Option<&Bound<'_, PyDict>>,
    ttl: Option<f64>,
) -> PyResult<Registration> {
    let port = u16::try_from(port).ok().filter(|p| *p > 0).ok_or_else(|| {
        errors::invalid_request(py, format!("`port` must be 1-65535, got {port}"))
    })?;
    let mut reg = Registration::new(id.unwrap_or_default(), name, address, port);
    reg.tags = tags;
    reg.meta = meta
        .unwrap_or_default()
        .into_iter()
        .collect::<BTreeMap<_, _>>();
    if let Some(check) = http_check {
        reg.checks.push(http(py, check)?);
    }
    if let Some(ttl) = ttl {
        reg.checks.push(RegistrationCheck::Ttl {
            check_id: None,
            ttl: seconds(py, "ttl", ttl)?,
            deregister_critical_after: None,
        });
    }
    Ok(reg)
}

/// `{"url": str, "interval": float = 10.0, "timeout": float = 0 (Consul's default)}`.
fn http(py: Python<'_>, check: &Bound<'_, PyDict>) -> PyResult<RegistrationCheck> {
    let mut url = None;
    let mut interval = Duration::from_secs(10);
    let mut timeout = Duration::ZERO;
    for (key, value) in check.iter() {
        let key: String = key
            .extract()
            .map_err(|_| errors::invalid_request(py, "`http_check` keys must be strings"))?;
        let as_secs = |what: &str| -> PyResult<Duration> {
            let secs: f64 = value.extract().map_err(|_| {
                errors::invalid_request(py, format!("`http_check[{what:?}]` must be seconds"))
            })?;
            seconds(py, &format!("http_check[{what:?}]"), secs)
        };
        match key.as_str() {
            "url" => {
                url = Some(value.extract::<String>().map_err(|_| {
                    errors::invalid_request(py, "`http_check[\"url\"]` must be a string")
                })?);
            }
            "interval" => interval = as_secs("interval")?,
            "timeout" => timeout = as_secs("timeout")?,
            other => {
                return Err(errors::invalid_request(
                    py,
                    format!("unknown `http_check` key {other:?} (allowed: url, interval, timeout)"),
                ));
            }
        }
    }
    let url = url.ok_or_else(|| errors::invalid_request(py, "`http_check` needs a \"url\""))?;
    Ok(RegistrationCheck::Http {
        url,
        interval,
        timeout,
        deregister_critical_after: None,
    })
}

/// A non-negative, finite number of seconds.
fn seconds(py: Python<'_>, what: &str, secs: f64) -> PyResult<Duration> {
    if secs.is_finite() && secs >= 0.0 {
        Duration::try_from_secs_f64(secs)
            .map_err(|_| errors::invalid_request(py, format!("`{what}` out of range")))
    } else {
        Err(errors::invalid_request(
            py,
            format!("`{what}` must be >= 0 seconds, got {secs}"),
        ))
    }
}

/// Registers and builds the Python handle on the loop thread.
pub(crate) async fn register_deliver(
    client: FederatedServiceClient,
    rt: RtHandle,
    cluster: String,
    reg: Registration,
) -> Deliver {
    let outcome = client.register(&cluster, &reg).await;
    Box::new(move |py| match outcome {
        Ok(registered) => Ok(Py::new(py, PyRegistration::new(registered, rt))?.into_any()),
        Err(e) => Err(errors::to_pyerr(py, &e)),
    })
}

/// Blocking registration.
pub(crate) fn register_sync(
    py: Python<'_>,
    client: FederatedServiceClient,
    rt: RtHandle,
    cluster: String,
    reg: Registration,
) -> PyResult<PyRegistration> {
    let outcome = rt.block_on(py, async move { client.register(&cluster, &reg).await })?;
    match outcome {
        Ok(registered) => Ok(PyRegistration::new(registered, rt)),
        Err(e) => Err(errors::to_pyerr(py, &e)),
    }
}

/// Deregisters by id, for the async bridge.
pub(crate) async fn deregister_id_deliver(
    client: FederatedServiceClient,
    cluster: String,
    service_id: String,
) -> Deliver {
    let outcome = client.deregister(&cluster, &service_id).await;
    Box::new(move |py| match outcome {
        Ok(()) => Ok(py.None()),
        Err(e) => Err(errors::to_pyerr(py, &e)),
    })
}

async fn deregister_deliver(registered: Registered) -> Deliver {
    let outcome = registered.deregister().await;
    Box::new(move |py| match outcome {
        Ok(()) => Ok(py.None()),
        Err(e) => Err(errors::to_pyerr(py, &e)),
    })
}
