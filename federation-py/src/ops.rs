//! The operational side of a client, as plain functions: waiting for discovery, the health
//! snapshot as Python data.
//!
//! A client starts routing as soon as it is built, but its first calls fail with
//! `NoHealthyInstanceError` ("discovery has not answered yet") until each cluster's registry
//! answered once. Services and tests that must not drop their first requests wait for that:
//! [`wait_discovered`] is the core's `wait_ready`: every (service, cluster) route has had a
//! successful discovery update, otherwise the error names the routes still waiting and their
//! last registry error.

use std::time::Duration;

use federation_core::client::FederatedServiceClient;
use federation_core::error::ErrorKind;
use pyo3::prelude::*;

use crate::bridge::Deliver;
use crate::errors;

/// Waits until discovery answered for every route (the core's
/// [`FederatedServiceClient::wait_ready`]); `Err` names the routes still waiting.
pub(crate) async fn wait_discovered(
    client: FederatedServiceClient,
    timeout: Duration,
) -> Result<(), String> {
    client.wait_ready(timeout).await.map_err(|e| e.to_string())
}

/// The outcome of [`wait_discovered`] for the async bridge: `None`, or a `DiscoveryError`.
pub(crate) async fn wait_deliver(client: FederatedServiceClient, timeout: Duration) -> Deliver {
    let outcome = wait_discovered(client, timeout).await;
    Box::new(move |py| match outcome {
        Ok(()) => Ok(py.None()),
        Err(message) => Err(errors::of_kind(py, ErrorKind::Discovery, message)),
    })
}

/// A `DiscoveryError` for a failed wait.
pub(crate) fn wait_error(py: Python<'_>, message: String) -> PyErr {
    errors::of_kind(py, ErrorKind::Discovery, message)
}

/// The health snapshot as Python dicts and lists (via its JSON form).
pub(crate) fn health<'py>(
    py: Python<'py>,
    client: &FederatedServiceClient,
) -> PyResult<Bound<'py, PyAny>> {
    let text = serde_json::to_string(&client.health())
        .map_err(|e| pyo3::exceptions::PyRuntimeError::new_err(format!("health snapshot: {e}")))?;
    py.import("json")?.call_method1("loads", (text,))
}

/// A timeout in seconds, for the binding's own waits.
pub(crate) fn timeout_arg(py: Python<'_>, seconds: f64) -> PyResult<Duration> {
    if seconds.is_finite() && seconds >= 0.0 {
        Duration::try_from_secs_f64(seconds)
            .map_err(|_| errors::invalid_request(py, "`timeout` out of range"))
    } else {
        Err(errors::invalid_request(
            py,
            format!("`timeout` must be >= 0 seconds, got {seconds}"),
        ))
    }
}
