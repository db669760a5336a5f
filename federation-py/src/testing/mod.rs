//! `federation.testing`: the testkit for Python users — the two-cluster sandbox, Consul doubles
//! and programmable service instances, all real servers on 127.0.0.1.
//!
//! A Looma service that depends on federation must be able to prove its own failover in pytest
//! without a real Consul or the other cluster. These classes drive the Rust testkit (the same
//! servers the Rust tests use) on the process runtime; every method blocks with the GIL
//! released, so test code stays synchronous and simple.

mod consul;
mod instance;
mod kafka;
mod sandbox;

use std::time::Duration;

use pyo3::exceptions::{PyOSError, PyValueError};
use pyo3::prelude::*;

pub(crate) fn seconds(name: &str, value: f64) -> PyResult<Duration> {
    Duration::try_from_secs_f64(value).map_err(|_| {
        PyValueError::new_err(format!(
            "`{name}` must be a non-negative number of seconds, got {value}"
        ))
    })
}

pub(crate) fn io_err(e: std::io::Error) -> PyErr {
    PyOSError::new_err(e.to_string())
}

/// Adds the testing classes to the module.
pub(crate) fn register(m: &Bound<'_, PyModule>) -> PyResult<()> {
    m.add_class::<sandbox::PySandbox>()?;
    m.add_class::<consul::PyConsulDouble>()?;
    m.add_class::<instance::PyServiceInstance>()?;
    m.add_class::<kafka::PyKafkaBroker>()?;
    Ok(())
}
