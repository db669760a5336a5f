//! Values crossing between Python and the sync runtime: JSON-shaped data both ways, the
//! operation names, and the sync errors as the package's exception classes.
//!
//! **Failure prevented.** A state dict that does not round-trip exactly (a stamp re-typed, a
//! field dropped) makes the next change look concurrent with its own base: a spurious conflict
//! on every write. Every value therefore crosses as its serde JSON form, the same bytes the
//! runtime writes to Kafka, and a value that does not parse is a clear error naming what was
//! expected, never a default.

use federation_core::error::ErrorKind;
use federation_sync::model::Operation;
use federation_sync::{SyncError, SyncErrorKind};
use pyo3::prelude::*;
use serde::Serialize;
use serde::de::DeserializeOwned;

use crate::errors;

/// A serde value as Python data (dicts, lists, str, int, float, bool, None).
pub(crate) fn to_py<'py, T: Serialize>(py: Python<'py>, value: &T) -> PyResult<Bound<'py, PyAny>> {
    let text = serde_json::to_string(value)
        .map_err(|e| pyo3::exceptions::PyRuntimeError::new_err(format!("encoding {e}")))?;
    py.import("json")?.call_method1("loads", (text,))
}

/// Python data as a serde value; `what` names the argument in the error.
pub(crate) fn from_py<T: DeserializeOwned>(value: &Bound<'_, PyAny>, what: &str) -> PyResult<T> {
    let py = value.py();
    let text: String = py
        .import("json")?
        .call_method1("dumps", (value,))
        .map_err(|e| {
            errors::invalid_request(py, format!("`{what}` is not JSON-serializable: {e}"))
        })?
        .extract()?;
    serde_json::from_str(&text)
        .map_err(|e| errors::invalid_request(py, format!("`{what}` has the wrong shape: {e}")))
}

/// `"create"`, `"update"` or `"delete"`.
pub(crate) fn operation(py: Python<'_>, name: &str) -> PyResult<Operation> {
    match name {
        "create" => Ok(Operation::Create),
        "update" => Ok(Operation::Update),
        "delete" => Ok(Operation::Delete),
        other => Err(errors::invalid_request(
            py,
            format!("`operation` is {other:?}; allowed: \"create\", \"update\", \"delete\""),
        )),
    }
}

/// A sync runtime error as the package's exception: `TimeoutError` (the broker did not
/// acknowledge in time), `TransportError` (Kafka failed), `ConfigError`, `InvalidRequestError`
/// (the change is invalid) or `FederationError` (the target failed); `sync_kind` says which.
pub(crate) fn sync_err(py: Python<'_>, error: &SyncError) -> PyErr {
    let (kind, sync_kind) = match error.kind() {
        SyncErrorKind::Timeout => (Some(ErrorKind::Timeout), "timeout"),
        SyncErrorKind::Kafka => (Some(ErrorKind::Transport), "kafka"),
        SyncErrorKind::Config => (Some(ErrorKind::Config), "config"),
        SyncErrorKind::InvalidChange => (Some(ErrorKind::InvalidRequest), "invalid_change"),
        SyncErrorKind::Target => (None, "target"),
        _ => (None, "other"),
    };
    errors::of_sync_kind(py, kind, sync_kind, &error.to_string())
}
