//! The one mapping from the core's error kinds to Python exception classes.
//!
//! **Failure prevented.** Bindings that raise one generic exception (or a different class per
//! call site) force callers to parse messages to decide whether to retry, back off or fix their
//! code. Here every [`ErrorKind`] has exactly one class, all rooted at `FederationError`, so
//! `except federation.TimeoutError` works, and so does the builtin `except TimeoutError`
//! (configuration and invalid-request errors are also `ValueError`s).
//!
//! **Algorithm.** The classes are created once per interpreter with `type(name, bases, ns)` (the
//! only way to give them two builtin bases) and kept in a table indexed by [`class_index`], the
//! single match over the kinds. Each raised exception carries `kind`, `service`,
//! `clusters_tried`, `attempts`, `status`, `may_have_reached_server` and, for configuration
//! errors, `problems` (field path, value, message).

use federation_core::config::ConfigError;
use federation_core::error::{Error, ErrorKind};
use pyo3::exceptions::{PyException, PyTimeoutError, PyValueError};
use pyo3::prelude::*;
use pyo3::sync::PyOnceLock;
use pyo3::types::{PyDict, PyList, PyTuple, PyType};

use crate::response::PyAttempt;

/// `(class name, extra builtin base, docstring)`, indexed by [`class_index`]; index 0 is the root.
const CLASSES: [(&str, Option<Builtin>, &str); 11] = [
    (
        "FederationError",
        None,
        "Root of every error raised by federation.",
    ),
    (
        "ConfigError",
        Some(Builtin::Value),
        "The configuration is unusable; fix it (see `problems`).",
    ),
    (
        "DiscoveryError",
        None,
        "A registry (Consul) could not be used; check the agent and its token.",
    ),
    (
        "NoHealthyInstanceError",
        None,
        "No instance of the service is available in any cluster; nothing was sent.",
    ),
    (
        "CircuitOpenError",
        None,
        "Every candidate instance has an open circuit breaker; retry later.",
    ),
    (
        "TimeoutError",
        Some(Builtin::Timeout),
        "The call's deadline passed; a non-idempotent request may still have been processed.",
    ),
    (
        "TransportError",
        None,
        "Connection failed or reset, unreadable response, or raise_for_status() saw a 4xx/5xx.",
    ),
    (
        "BudgetExhaustedError",
        None,
        "A retry was needed but the retry budget is spent; back off instead of retrying.",
    ),
    (
        "OverloadedError",
        None,
        "The service's concurrency or rate limit is reached; nothing was sent.",
    ),
    ("CancelledError", None, "The call was cancelled."),
    (
        "InvalidRequestError",
        Some(Builtin::Value),
        "The request is invalid (unknown service or cluster, bad path or header); nothing was sent.",
    ),
];

#[derive(Clone, Copy)]
enum Builtin {
    Value,
    Timeout,
}

/// The exception class of every kind. The core's `ErrorKind` is `#[non_exhaustive]`: a kind
/// added later maps to the root `FederationError` until it gets its own class here.
fn class_index(kind: ErrorKind) -> usize {
    match kind {
        ErrorKind::Config => 1,
        ErrorKind::Discovery => 2,
        ErrorKind::NoHealthyInstance => 3,
        ErrorKind::CircuitOpen => 4,
        ErrorKind::Timeout => 5,
        ErrorKind::Transport => 6,
        ErrorKind::BudgetExhausted => 7,
        ErrorKind::Overloaded => 8,
        ErrorKind::Cancelled => 9,
        ErrorKind::InvalidRequest => 10,
        _ => 0,
    }
}

static TYPES: PyOnceLock<Vec<Py<PyType>>> = PyOnceLock::new();

fn types(py: Python<'_>) -> PyResult<&Vec<Py<PyType>>> {
    TYPES.get_or_try_init(py, || {
        let make_type = py.import("builtins")?.getattr("type")?;
        let mut made: Vec<Py<PyType>> = Vec::with_capacity(CLASSES.len());
        for (name, extra, doc) in CLASSES {
            let root = match made.first() {
                Some(root) => root.bind(py).clone().into_any(),
                None => py.get_type::<PyException>().into_any(),
            };
            let bases = match extra {
                None => PyTuple::new(py, [root])?,
                Some(Builtin::Value) => {
                    PyTuple::new(py, [root, py.get_type::<PyValueError>().into_any()])?
                }
                Some(Builtin::Timeout) => {
                    PyTuple::new(py, [root, py.get_type::<PyTimeoutError>().into_any()])?
                }
            };
            let namespace = PyDict::new(py);
            namespace.set_item("__module__", "federation")?;
            namespace.set_item("__doc__", doc)?;
            let class = make_type
                .call1((name, bases, namespace))?
                .cast_into::<PyType>()?;
            made.push(class.unbind());
        }
        Ok(made)
    })
}

/// Adds every exception class to the module.
pub(crate) fn register(m: &Bound<'_, PyModule>) -> PyResult<()> {
    for class in types(m.py())? {
        let class = class.bind(m.py());
        m.add(class.name()?, class)?;
    }
    Ok(())
}

/// The Python exception for a core error.
pub(crate) fn to_pyerr(py: Python<'_>, error: &Error) -> PyErr {
    let made = (|| {
        let attempts: Vec<PyAttempt> = error.attempts().iter().map(PyAttempt::from).collect();
        let instance = instantiate(py, error.kind(), &error.to_string())?;
        instance.setattr("service", error.service())?;
        instance.setattr("clusters_tried", PyList::new(py, error.clusters_tried())?)?;
        instance.setattr("attempts", PyList::new(py, attempts)?)?;
        instance.setattr("status", error.status().map(|s| s.as_u16()))?;
        instance.setattr("may_have_reached_server", error.may_have_reached_server())?;
        instance.setattr("problems", problems(py, error.config_error())?)?;
        Ok(PyErr::from_value(instance))
    })();
    made.unwrap_or_else(|e| e)
}

/// An exception of `kind`'s class with `message` and empty call details, for failures the
/// binding itself detects (bad arguments, discovery not ready).
pub(crate) fn of_kind(py: Python<'_>, kind: ErrorKind, message: impl Into<String>) -> PyErr {
    let message = message.into();
    instantiate(py, kind, &message)
        .map(PyErr::from_value)
        .unwrap_or_else(|e| e)
}

/// An `InvalidRequestError` with `message`.
pub(crate) fn invalid_request(py: Python<'_>, message: impl Into<String>) -> PyErr {
    of_kind(py, ErrorKind::InvalidRequest, message)
}

/// An exception for a data-sync error: the class of the closest core kind (`None`: the root
/// `FederationError`), `kind` naming that kind (`"sync"` for the root) and `sync_kind` the sync
/// runtime's own kind (`timeout`, `kafka`, `config`, `invalid_change`, `target`).
pub(crate) fn of_sync_kind(
    py: Python<'_>,
    kind: Option<ErrorKind>,
    sync_kind: &str,
    message: &str,
) -> PyErr {
    let made = (|| {
        let (index, name) = kind.map_or((0, "sync"), |k| (class_index(k), k.as_str()));
        let instance = instantiate_at(py, index, name, message)?;
        instance.setattr("sync_kind", sync_kind)?;
        Ok(PyErr::from_value(instance))
    })();
    made.unwrap_or_else(|e| e)
}

/// An instance of `kind`'s class with every attribute at its empty value.
fn instantiate<'py>(
    py: Python<'py>,
    kind: ErrorKind,
    message: &str,
) -> PyResult<Bound<'py, PyAny>> {
    instantiate_at(py, class_index(kind), kind.as_str(), message)
}

/// An instance of the class at `index` of [`CLASSES`] with every attribute at its empty value.
fn instantiate_at<'py>(
    py: Python<'py>,
    index: usize,
    kind: &str,
    message: &str,
) -> PyResult<Bound<'py, PyAny>> {
    let instance = types(py)?[index].bind(py).call1((message,))?;
    instance.setattr("kind", kind)?;
    instance.setattr("service", py.None())?;
    instance.setattr("clusters_tried", PyList::empty(py))?;
    instance.setattr("attempts", PyList::empty(py))?;
    instance.setattr("status", py.None())?;
    instance.setattr("may_have_reached_server", false)?;
    instance.setattr("problems", PyList::empty(py))?;
    instance.setattr("sync_kind", py.None())?;
    Ok(instance)
}

fn problems<'py>(py: Python<'py>, error: Option<&ConfigError>) -> PyResult<Bound<'py, PyList>> {
    let list = PyList::empty(py);
    for p in error.map(ConfigError::problems).unwrap_or_default() {
        let item = PyDict::new(py);
        item.set_item("path", p.path())?;
        item.set_item("value", p.value())?;
        item.set_item("message", p.message())?;
        list.append(item)?;
    }
    Ok(list)
}

/// A configuration error (`ConfigError`) as a Python exception.
pub(crate) fn config_to_pyerr(py: Python<'_>, error: ConfigError) -> PyErr {
    to_pyerr(py, &Error::from(error))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_kind_has_its_own_class() {
        let kinds = [
            ErrorKind::Config,
            ErrorKind::Discovery,
            ErrorKind::NoHealthyInstance,
            ErrorKind::CircuitOpen,
            ErrorKind::Timeout,
            ErrorKind::Transport,
            ErrorKind::BudgetExhausted,
            ErrorKind::Overloaded,
            ErrorKind::Cancelled,
            ErrorKind::InvalidRequest,
        ];
        let mut seen: Vec<usize> = kinds.iter().map(|k| class_index(*k)).collect();
        seen.sort_unstable();
        seen.dedup();
        assert_eq!(seen, (1..CLASSES.len()).collect::<Vec<_>>());
    }
}
