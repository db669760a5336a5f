//! The arguments and results of `DataSync`'s calls: the change to publish from Python values,
//! the publish itself with the caller's deadline, and a local apply's decision as a dict.
//!
//! **Failure prevented.** A change built partly before an invalid argument is found would be
//! half-sent; here every argument is converted and checked before anything reaches the runtime.

use std::time::Duration;

use federation_sync::model::Decision;
use federation_sync::{Change, FederatedDataSync, Published, SyncError};
use pyo3::prelude::*;
use pyo3::types::PyDict;

use super::convert::{from_py, operation, sync_err, to_py};
use super::target::Target;
use super::values::PyPublished;
use crate::bridge::Deliver;
use crate::{errors, ops};

/// The change to publish, from the Python arguments (nothing is sent when one is invalid).
pub(super) fn change(
    py: Python<'_>,
    entity_type: String,
    entity_id: String,
    op: &str,
    data: Option<&Bound<'_, PyAny>>,
    base: Option<&Bound<'_, PyAny>>,
) -> PyResult<Change> {
    let mut change = Change::new(entity_type, entity_id, operation(py, op)?);
    if let Some(data) = data.filter(|d| !d.is_none()) {
        if !data.is_instance_of::<PyDict>() {
            return Err(errors::invalid_request(
                py,
                format!(
                    "`data` must be a dict (a JSON object) or None, got {}",
                    data.get_type().name()?
                ),
            ));
        }
        change = change.data(from_py(data, "data")?);
    }
    if let Some(base) = base.filter(|b| !b.is_none()) {
        change = change.base(Some(from_py(base, "base")?));
    }
    Ok(change)
}

pub(super) fn timeout(py: Python<'_>, seconds: Option<f64>) -> PyResult<Option<Duration>> {
    seconds.map(|s| ops::timeout_arg(py, s)).transpose()
}

pub(super) async fn publish(
    sync: FederatedDataSync,
    change: Change,
    deadline: Option<Duration>,
) -> Result<Published, SyncError> {
    match deadline {
        Some(deadline) => sync.publish_within(change, deadline).await,
        None => sync.publish(change).await,
    }
}

pub(super) async fn publish_deliver(
    sync: FederatedDataSync,
    change: Change,
    deadline: Option<Duration>,
) -> Deliver {
    let outcome = publish(sync, change, deadline).await;
    Box::new(move |py| match outcome {
        Ok(inner) => Ok(Py::new(py, PyPublished { inner })?.into_any()),
        Err(e) => Err(sync_err(py, &e)),
    })
}

pub(super) async fn apply_local(
    sync: FederatedDataSync,
    target: Target,
    published: Published,
) -> Result<Decision, SyncError> {
    sync.apply_local(target.target.as_ref(), &published.event)
        .await
}

/// A decision as a dict: `effect`, and `conflict` (both versions, winner, resolved) or None.
pub(super) fn decision_dict<'py>(
    py: Python<'py>,
    decision: &Decision,
) -> PyResult<Bound<'py, PyAny>> {
    let dict = PyDict::new(py);
    dict.set_item("effect", decision.effect.name())?;
    dict.set_item("state", to_py(py, &decision.next)?)?;
    dict.set_item("conflict", to_py(py, &decision.conflict)?)?;
    Ok(dict.into_any())
}
