//! `DataSync` for Python: the cross-cluster data sync (`federation-sync`) of a service.
//!
//! **Failures prevented.** A Python service (looma) that re-implements the sync protocol drifts
//! from the Go and Rust sides: a different stamp order, a different conflict answer, a change
//! acknowledged before the broker holds it. So this module only converts arguments and results;
//! publishing, ordering, conflict decisions, retries, dead letters and status are the Rust
//! runtime's, identical in every language.
//!
//! **Shape.** Constructors read the same configuration as the client (its `sync:` section) and
//! build the runtime with the interpreter released (it creates topics, so it talks to the
//! broker). `publish`/`apply_local` are awaitables with `*_sync` twins, like the client's calls;
//! `subscribe` takes a `MemoryTarget` or a Python store ([`handler`]).

mod callback;
mod calls;
mod convert;
mod handler;
mod target;
mod values;

use std::path::PathBuf;
use std::sync::{Mutex, PoisonError};

use federation_core::config::{Config, ConfigError, ConfigFormat};
use federation_sync::FederatedDataSync;
use pyo3::prelude::*;
use pyo3::types::{PyDict, PyType};

use crate::bridge::{self, Deliver};
use crate::errors;
use crate::runtime::{self, Pinned, RtHandle};
use calls::{apply_local, change, decision_dict, publish, publish_deliver};
use convert::{sync_err, to_py};
use target::target_arg;
use values::{PyPublished, PySubscription, closed_error};

pub(crate) use target::PyMemoryTarget;

/// Adds the sync classes to the module.
pub(crate) fn register(m: &Bound<'_, PyModule>) -> PyResult<()> {
    m.add_class::<PyDataSync>()?;
    m.add_class::<PyMemoryTarget>()?;
    m.add_class::<PyPublished>()?;
    m.add_class::<PySubscription>()?;
    Ok(())
}

/// The data sync of one service process: publish changes of entities, apply the other
/// clusters' changes to a store, read their status.
#[pyclass(frozen, name = "DataSync", module = "federation._federation")]
pub(crate) struct PyDataSync {
    inner: Mutex<Option<Pinned<FederatedDataSync>>>,
}

impl PyDataSync {
    fn build(
        py: Python<'_>,
        config: Result<Config, ConfigError>,
        local_cluster: Option<String>,
        callbacks: Option<&Bound<'_, PyDict>>,
    ) -> PyResult<Self> {
        let config = config.map_err(|e| errors::config_to_pyerr(py, e))?;
        let rt = runtime::current()?;
        let mut builder = FederatedDataSync::builder(&config);
        if let Some(local) = local_cluster {
            builder = builder.local_cluster(local);
        }
        for (entity_type, f) in callback::callbacks(py, callbacks)? {
            builder = builder.callback(entity_type, f);
        }
        let sync = rt
            .block_on(py, builder.build())?
            .map_err(|e| sync_err(py, &e))?;
        Ok(Self {
            inner: Mutex::new(Some(Pinned::new(sync, rt))),
        })
    }

    fn sync(&self) -> PyResult<(FederatedDataSync, RtHandle)> {
        let guard = self.inner.lock().unwrap_or_else(PoisonError::into_inner);
        let pinned = guard.as_ref().ok_or_else(closed_error)?;
        Ok((pinned.get()?.clone(), pinned.rt().clone()))
    }
}

#[pymethods]
impl PyDataSync {
    /// The sync of the configuration file at `path` (YAML, TOML or JSON by extension).
    /// `local_cluster` overrides `sync.local_cluster`; `callbacks` maps each `policy: callback`
    /// entity type to `f(first, second)` returning `"first"`, `"second"` or a merged dict.
    #[classmethod]
    #[pyo3(signature = (path, *, local_cluster=None, callbacks=None))]
    fn from_file(
        _cls: &Bound<'_, PyType>,
        py: Python<'_>,
        path: PathBuf,
        local_cluster: Option<String>,
        callbacks: Option<&Bound<'_, PyDict>>,
    ) -> PyResult<Self> {
        Self::build(py, Config::from_file(path), local_cluster, callbacks)
    }

    /// The sync of a configuration given as a dict (the same schema as the files).
    #[classmethod]
    #[pyo3(signature = (config, *, local_cluster=None, callbacks=None))]
    fn from_dict(
        _cls: &Bound<'_, PyType>,
        py: Python<'_>,
        config: &Bound<'_, PyAny>,
        local_cluster: Option<String>,
        callbacks: Option<&Bound<'_, PyDict>>,
    ) -> PyResult<Self> {
        let config = crate::client::config_from_dict(config)?;
        Self::build(py, config, local_cluster, callbacks)
    }

    /// The sync of a YAML configuration text.
    #[classmethod]
    #[pyo3(signature = (text, *, local_cluster=None, callbacks=None))]
    fn from_yaml(
        _cls: &Bound<'_, PyType>,
        py: Python<'_>,
        text: &str,
        local_cluster: Option<String>,
        callbacks: Option<&Bound<'_, PyDict>>,
    ) -> PyResult<Self> {
        let config = Config::parse(text, ConfigFormat::Yaml);
        Self::build(py, config, local_cluster, callbacks)
    }

    /// The sync of a JSON configuration text.
    #[classmethod]
    #[pyo3(signature = (text, *, local_cluster=None, callbacks=None))]
    fn from_json(
        _cls: &Bound<'_, PyType>,
        py: Python<'_>,
        text: &str,
        local_cluster: Option<String>,
        callbacks: Option<&Bound<'_, PyDict>>,
    ) -> PyResult<Self> {
        let config = Config::parse(text, ConfigFormat::Json);
        Self::build(py, config, local_cluster, callbacks)
    }

    /// The sync of a TOML configuration text.
    #[classmethod]
    #[pyo3(signature = (text, *, local_cluster=None, callbacks=None))]
    fn from_toml(
        _cls: &Bound<'_, PyType>,
        py: Python<'_>,
        text: &str,
        local_cluster: Option<String>,
        callbacks: Option<&Bound<'_, PyDict>>,
    ) -> PyResult<Self> {
        let config = Config::parse(text, ConfigFormat::Toml);
        Self::build(py, config, local_cluster, callbacks)
    }

    /// The cluster this process publishes as.
    #[getter]
    fn local_cluster(&self) -> PyResult<String> {
        Ok(self.sync()?.0.local_cluster().to_owned())
    }

    /// Publishes a change; resolves to a `Published` once the broker holds it durably, or raises
    /// `TimeoutError` after `timeout` seconds (default `sync.publish_timeout`).
    #[pyo3(signature = (entity_type, entity_id, operation, data=None, base=None, *, timeout=None))]
    #[allow(clippy::too_many_arguments, reason = "the Python arguments")]
    fn publish<'py>(
        &self,
        py: Python<'py>,
        entity_type: String,
        entity_id: String,
        operation: &str,
        data: Option<&Bound<'py, PyAny>>,
        base: Option<&Bound<'py, PyAny>>,
        timeout: Option<f64>,
    ) -> PyResult<Bound<'py, PyAny>> {
        let (sync, rt) = self.sync()?;
        let change = change(py, entity_type, entity_id, operation, data, base)?;
        let deadline = calls::timeout(py, timeout)?;
        bridge::spawn(py, &rt, publish_deliver(sync, change, deadline))
    }

    /// Blocking `publish`: releases the GIL while waiting.
    #[pyo3(signature = (entity_type, entity_id, operation, data=None, base=None, *, timeout=None))]
    #[allow(clippy::too_many_arguments, reason = "the Python arguments")]
    fn publish_sync(
        &self,
        py: Python<'_>,
        entity_type: String,
        entity_id: String,
        operation: &str,
        data: Option<&Bound<'_, PyAny>>,
        base: Option<&Bound<'_, PyAny>>,
        timeout: Option<f64>,
    ) -> PyResult<PyPublished> {
        let (sync, rt) = self.sync()?;
        let change = change(py, entity_type, entity_id, operation, data, base)?;
        let deadline = calls::timeout(py, timeout)?;
        match rt.block_on(py, publish(sync, change, deadline))? {
            Ok(inner) => Ok(PyPublished { inner }),
            Err(e) => Err(sync_err(py, &e)),
        }
    }

    /// Records a change published here in the local store `target` the way the subscriber
    /// applies remote ones (read, decide, write); resolves to `{"effect", "state", "conflict"}`.
    fn apply_local<'py>(
        &self,
        py: Python<'py>,
        target: &Bound<'py, PyAny>,
        published: PyRef<'py, PyPublished>,
    ) -> PyResult<Bound<'py, PyAny>> {
        let (sync, rt) = self.sync()?;
        let target = target_arg(py, Some(target), None, None)?;
        let published = published.inner.clone();
        bridge::spawn(py, &rt, async move {
            let outcome = apply_local(sync, target, published).await;
            Box::new(move |py: Python<'_>| match outcome {
                Ok(decision) => Ok(decision_dict(py, &decision)?.unbind()),
                Err(e) => Err(sync_err(py, &e)),
            }) as Deliver
        })
    }

    /// Blocking `apply_local`: releases the GIL while waiting.
    fn apply_local_sync<'py>(
        &self,
        py: Python<'py>,
        target: &Bound<'py, PyAny>,
        published: PyRef<'py, PyPublished>,
    ) -> PyResult<Bound<'py, PyAny>> {
        let (sync, rt) = self.sync()?;
        let target = target_arg(py, Some(target), None, None)?;
        target.refuse_blocking(py, "apply_local_sync()")?;
        let published = published.inner.clone();
        match rt.block_on(py, apply_local(sync, target, published))? {
            Ok(decision) => decision_dict(py, &decision),
            Err(e) => Err(sync_err(py, &e)),
        }
    }

    /// Starts consuming every other cluster's changes into a target: a `MemoryTarget`, an
    /// object with `read(entity_type, entity_id)` and `write(change)`, or `read=` and `write=`
    /// callables (plain or `async def`; coroutines run on the loop running here).
    #[pyo3(signature = (target=None, *, read=None, write=None))]
    fn subscribe(
        &self,
        py: Python<'_>,
        target: Option<&Bound<'_, PyAny>>,
        read: Option<&Bound<'_, PyAny>>,
        write: Option<&Bound<'_, PyAny>>,
    ) -> PyResult<PySubscription> {
        let (sync, rt) = self.sync()?;
        let target = target_arg(py, target, read, write)?;
        rt.check_pid()?;
        let subscription = {
            let _context = rt.tokio().enter();
            sync.subscribe(std::sync::Arc::clone(&target.target))
                .map_err(|e| sync_err(py, &e))?
        };
        Ok(PySubscription::new(Pinned::new(subscription, rt), target))
    }

    /// The status of the latest change of an entity published from this cluster: a dict with
    /// `event_id`, `hlc`, `overall` (`pending`, `completed`, `failed`) and per target cluster
    /// `{"state": ..., "effect" | "reason": ...}`; None when unknown here.
    fn status<'py>(
        &self,
        py: Python<'py>,
        entity_type: &str,
        entity_id: &str,
    ) -> PyResult<Bound<'py, PyAny>> {
        let Some(status) = self.sync()?.0.status(entity_type, entity_id) else {
            return Ok(py.None().into_bound(py));
        };
        let dict = to_py(py, &status)?;
        dict.set_item("overall", to_py(py, &status.overall())?)?;
        Ok(dict)
    }

    /// The health entry: `local_cluster`, `healthy`, `pending`, and per origin cluster
    /// `consumed`, `last_consumed_ms`, `lag`, `last_error`.
    fn health<'py>(&self, py: Python<'py>) -> PyResult<Bound<'py, PyAny>> {
        let health = self.sync()?.0.health();
        let dict = to_py(py, &health)?;
        dict.set_item("healthy", health.is_healthy())?;
        Ok(dict)
    }

    /// The sync metrics (`federation_sync_*`) in the Prometheus text format.
    fn metrics_text(&self) -> PyResult<String> {
        Ok(self.sync()?.0.metrics_text())
    }

    /// Releases the producers and the status reader; later calls raise `RuntimeError`.
    /// Subscriptions keep running until stopped. Idempotent.
    fn close(&self, py: Python<'_>) {
        let taken = self
            .inner
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .take();
        py.detach(move || drop(taken));
    }

    /// True once `close()` was called.
    #[getter]
    fn closed(&self) -> bool {
        self.inner
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .is_none()
    }

    fn __enter__(slf: Py<Self>) -> Py<Self> {
        slf
    }

    #[pyo3(signature = (*_exc))]
    fn __exit__(&self, py: Python<'_>, _exc: &Bound<'_, pyo3::types::PyTuple>) -> bool {
        self.close(py);
        false
    }
}
