//! The objects a `DataSync` hands back: `Published` (a durably published change) and
//! `Subscription` (running consumers, stoppable from asyncio or blocking code).

use std::sync::{Mutex, PoisonError};

use federation_sync::{Published, Subscription};
use pyo3::exceptions::PyRuntimeError;
use pyo3::prelude::*;
use pyo3::types::{PyBool, PyTuple};

use super::convert::to_py;
use super::target::Target;
use crate::bridge::{self, Deliver};
use crate::client::ready;
use crate::runtime::Pinned;

/// A change the broker acknowledged durably: its stamp, where it was written, and the entity's
/// state after it (store it with the record; pass it as `base` of the next change).
#[pyclass(frozen, name = "Published", module = "federation._federation")]
pub(crate) struct PyPublished {
    pub(crate) inner: Published,
}

#[pymethods]
impl PyPublished {
    /// The change's unique id (32 hex digits).
    #[getter]
    fn event_id(&self) -> &str {
        &self.inner.stamp.event_id
    }

    /// The cluster that published it.
    #[getter]
    fn origin(&self) -> &str {
        &self.inner.stamp.origin
    }

    /// Its hybrid logical clock timestamp: `(wall_ms, logical)`.
    #[getter]
    fn hlc(&self) -> (u64, u32) {
        (self.inner.stamp.hlc.wall_ms, self.inner.stamp.hlc.logical)
    }

    /// The partition of the change topic it was written to.
    #[getter]
    fn partition(&self) -> i32 {
        self.inner.partition
    }

    /// Its offset in that partition.
    #[getter]
    fn offset(&self) -> i64 {
        self.inner.offset
    }

    /// The entity type.
    #[getter]
    fn entity_type(&self) -> &str {
        &self.inner.event.entity_type
    }

    /// The entity id.
    #[getter]
    fn entity_id(&self) -> &str {
        &self.inner.event.entity_id
    }

    /// `create`, `update` or `delete`.
    #[getter]
    fn operation(&self) -> &'static str {
        self.inner.event.operation.name()
    }

    /// The entity's sync state after the change (a dict).
    #[getter]
    fn state<'py>(&self, py: Python<'py>) -> PyResult<Bound<'py, PyAny>> {
        to_py(py, &self.inner.state)
    }

    /// The change event as published (the JSON envelope, as a dict).
    #[getter]
    fn event<'py>(&self, py: Python<'py>) -> PyResult<Bound<'py, PyAny>> {
        to_py(py, &self.inner.event)
    }

    fn __repr__(&self) -> String {
        format!(
            "Published({}/{} {} {} partition={} offset={})",
            self.inner.event.entity_type,
            self.inner.event.entity_id,
            self.inner.event.operation.name(),
            self.inner.stamp,
            self.inner.partition,
            self.inner.offset
        )
    }
}

/// Consumers of every other cluster's changes, writing to one target. `stop()` finishes the
/// messages in hand and commits; dropping it without a stop aborts them (they are delivered
/// again to the next subscriber, and recognised there as already applied when they were).
#[pyclass(frozen, name = "Subscription", module = "federation._federation")]
pub(crate) struct PySubscription {
    inner: Mutex<Option<Pinned<Subscription>>>,
    target: Target,
}

impl PySubscription {
    pub(crate) fn new(subscription: Pinned<Subscription>, target: Target) -> Self {
        Self {
            inner: Mutex::new(Some(subscription)),
            target,
        }
    }

    fn take(&self) -> PyResult<Option<(Subscription, crate::runtime::RtHandle)>> {
        let taken = self
            .inner
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .take();
        let Some(pinned) = taken else {
            return Ok(None);
        };
        pinned.get()?;
        let rt = pinned.rt().clone();
        Ok(pinned.into_inner().map(|s| (s, rt)))
    }
}

async fn stopped(subscription: Subscription) -> Deliver {
    subscription.stop().await;
    Box::new(|py| Ok(py.None()))
}

#[pymethods]
impl PySubscription {
    /// Stops after the messages in hand are finished and committed (awaitable). Idempotent.
    fn stop<'py>(&self, py: Python<'py>) -> PyResult<Bound<'py, PyAny>> {
        match self.take()? {
            Some((subscription, rt)) => bridge::spawn(py, &rt, stopped(subscription)),
            None => ready(py, py.None().into_bound(py)),
        }
    }

    /// Blocking `stop`: releases the GIL while waiting. Refused (RuntimeError) on the thread of
    /// the event loop an async target runs on, where it would wait forever.
    fn stop_sync(&self, py: Python<'_>) -> PyResult<()> {
        self.target.refuse_blocking(py, "stop_sync()")?;
        if let Some((subscription, rt)) = self.take()? {
            rt.block_on(py, subscription.stop())?;
        }
        Ok(())
    }

    /// Stops at once, as a crash would: messages in hand are neither finished nor committed.
    fn abort(&self) -> PyResult<()> {
        if let Some((subscription, _rt)) = self.take()? {
            subscription.abort();
        }
        Ok(())
    }

    /// True until stopped or aborted.
    #[getter]
    fn running(&self) -> bool {
        self.inner
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .is_some()
    }

    fn __enter__(slf: Py<Self>) -> Py<Self> {
        slf
    }

    #[pyo3(signature = (*_exc))]
    fn __exit__(&self, py: Python<'_>, _exc: &Bound<'_, PyTuple>) -> PyResult<bool> {
        self.stop_sync(py)?;
        Ok(false)
    }

    fn __aenter__<'py>(slf: &Bound<'py, Self>) -> PyResult<Bound<'py, PyAny>> {
        ready(slf.py(), slf.clone().into_any())
    }

    #[pyo3(signature = (*_exc))]
    fn __aexit__<'py>(
        &self,
        py: Python<'py>,
        _exc: &Bound<'py, PyTuple>,
    ) -> PyResult<Bound<'py, PyAny>> {
        let Some((subscription, rt)) = self.take()? else {
            return ready(py, PyBool::new(py, false).to_owned().into_any());
        };
        bridge::spawn(py, &rt, async move {
            subscription.stop().await;
            Box::new(|py: Python<'_>| Ok(PyBool::new(py, false).to_owned().into_any().unbind()))
                as Deliver
        })
    }
}

/// A closed `DataSync`.
pub(crate) fn closed_error() -> PyErr {
    PyRuntimeError::new_err("the DataSync is closed")
}
