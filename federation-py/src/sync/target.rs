//! `MemoryTarget` for Python tests, and turning whatever the user passed as a target (a
//! `MemoryTarget`, an object with `read`/`write`, or the two callables) into one [`SyncTarget`].
//!
//! **Failure prevented.** A test that checks "applied once" against its own dict cannot see a
//! write that the runtime made twice or in the wrong order; the Rust `MemoryTarget` records every
//! write with its effect, so the Python class wraps it instead of re-implementing it.

use std::sync::Arc;

use federation_sync::model::{Effect, EntityState};
use federation_sync::{MemoryTarget, SyncTarget};
use pyo3::prelude::*;
use pyo3::types::PyDict;

use super::convert::{from_py, to_py};
use super::handler::PyHandler;
use crate::errors;

/// An in-memory sync target: states per entity, and every write with its effect.
#[pyclass(frozen, name = "MemoryTarget", module = "federation._federation")]
pub(crate) struct PyMemoryTarget {
    pub(crate) inner: MemoryTarget,
}

const EFFECTS: [Effect; 5] = [
    Effect::Applied,
    Effect::Merged,
    Effect::Superseded,
    Effect::Duplicate,
    Effect::TooOld,
];

#[pymethods]
impl PyMemoryTarget {
    #[new]
    fn new() -> Self {
        Self {
            inner: MemoryTarget::new(),
        }
    }

    /// The stored sync state of an entity (pass it as `base` of the next change), or None.
    fn get<'py>(
        &self,
        py: Python<'py>,
        entity_type: &str,
        entity_id: &str,
    ) -> PyResult<Bound<'py, PyAny>> {
        to_py(py, &self.inner.get(entity_type, entity_id))
    }

    /// The stored record of an entity; None when absent or deleted.
    fn record<'py>(
        &self,
        py: Python<'py>,
        entity_type: &str,
        entity_id: &str,
    ) -> PyResult<Bound<'py, PyAny>> {
        to_py(
            py,
            &self.inner.get(entity_type, entity_id).and_then(|s| s.data),
        )
    }

    /// Stores a state directly, unconditionally.
    fn put(&self, entity_type: &str, entity_id: &str, state: &Bound<'_, PyAny>) -> PyResult<()> {
        let state: EntityState = from_py(state, "state")?;
        self.inner.put(entity_type, entity_id, state);
        Ok(())
    }

    /// Every stored state, keyed by `(entity_type, entity_id)`.
    fn snapshot<'py>(&self, py: Python<'py>) -> PyResult<Bound<'py, PyDict>> {
        let out = PyDict::new(py);
        for ((entity_type, entity_id), state) in self.inner.snapshot() {
            out.set_item((entity_type, entity_id), to_py(py, &state)?)?;
        }
        Ok(out)
    }

    /// Every write so far, in order: `(event_id, effect)`.
    fn writes(&self) -> Vec<(String, &'static str)> {
        self.inner
            .writes()
            .into_iter()
            .map(|(id, effect)| (id, effect.name()))
            .collect()
    }

    /// How many times the event `event_id` was written with `effect` (default `"applied"`).
    #[pyo3(signature = (event_id, effect="applied"))]
    fn writes_of(&self, py: Python<'_>, event_id: &str, effect: &str) -> PyResult<usize> {
        let effect = EFFECTS
            .into_iter()
            .find(|e| e.name() == effect)
            .ok_or_else(|| {
                let names: Vec<&str> = EFFECTS.iter().map(|e| e.name()).collect();
                errors::invalid_request(
                    py,
                    format!("`effect` is {effect:?}; allowed: {}", names.join(", ")),
                )
            })?;
        Ok(self.inner.writes_of(event_id, effect))
    }

    /// Fails the next `n` writes (each failure is a handler error: retried, then dead letter).
    fn fail_next_writes(&self, n: u32) {
        self.inner.fail_next_writes(n);
    }

    fn __len__(&self) -> usize {
        self.inner.snapshot().len()
    }
}

/// The sync target a user passed, and the Python handler behind it (None for a `MemoryTarget`).
pub(crate) struct Target {
    pub(crate) target: Arc<dyn SyncTarget>,
    pub(crate) handler: Option<Arc<PyHandler>>,
}

impl Target {
    /// Blocking on this thread for a call of this target would deadlock (async handler whose
    /// loop runs here): the error to raise instead.
    pub(crate) fn refuse_blocking(&self, py: Python<'_>, what: &str) -> PyResult<()> {
        if self.handler.as_ref().is_some_and(|h| h.would_deadlock(py)) {
            return Err(pyo3::exceptions::PyRuntimeError::new_err(format!(
                "{what} would block the event loop its async handler runs on: await the async form instead"
            )));
        }
        Ok(())
    }
}

/// `target` (a `MemoryTarget` or an object with `read` and `write`), or the callables
/// `read` and `write`.
pub(crate) fn target_arg(
    py: Python<'_>,
    target: Option<&Bound<'_, PyAny>>,
    read: Option<&Bound<'_, PyAny>>,
    write: Option<&Bound<'_, PyAny>>,
) -> PyResult<Target> {
    let handler =
        match (target, read, write) {
            (Some(target), None, None) => {
                if let Ok(memory) = target.cast::<PyMemoryTarget>() {
                    return Ok(Target {
                        target: Arc::new(memory.get().inner.clone()),
                        handler: None,
                    });
                }
                let method =
                    |name: &str| {
                        target.getattr(name).map_err(|_| {
                    errors::invalid_request(
                        py,
                        format!(
                            "the target ({}) has no `{name}` method; give a MemoryTarget or an \
                             object with read(entity_type, entity_id) and write(change)",
                            target.get_type().name().map_or_else(|_| "?".into(), |n| n.to_string())
                        ),
                    )
                })
                    };
                PyHandler::new(&method("read")?, &method("write")?)?
            }
            (None, Some(read), Some(write)) => PyHandler::new(read, write)?,
            _ => {
                return Err(errors::invalid_request(
                    py,
                    "give either a target object, or both `read=` and `write=` callables",
                ));
            }
        };
    let handler = Arc::new(handler);
    Ok(Target {
        target: Arc::clone(&handler) as Arc<dyn SyncTarget>,
        handler: Some(handler),
    })
}
