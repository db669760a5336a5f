//! # federation-py
//!
//! The native module `federation._federation` behind the Python package `federation`: the
//! federated service client with asyncio and blocking calls, one exception class per error kind,
//! and the testkit (`federation.testing`). Every behaviour lives in `federation-core`; this crate
//! only converts arguments and results, and owns the three things a Python binding must get
//! right itself: one runtime per process ([`runtime`]), an async bridge that is fast and safe at
//! interpreter exit ([`bridge`]), and the error mapping ([`errors`]).

mod bridge;
mod call_hook;
mod calls;
mod client;
mod client_agent;
mod errors;
mod ops;
mod registry;
mod request;
mod response;
mod runtime;
mod sync;
mod testing;

use pyo3::prelude::*;

/// The native module. Import `federation` instead: this module is private.
#[pymodule]
fn _federation(m: &Bound<'_, PyModule>) -> PyResult<()> {
    m.add("__version__", env!("CARGO_PKG_VERSION"))?;
    errors::register(m)?;
    m.add_class::<client::PyClient>()?;
    m.add_class::<response::PyResponse>()?;
    m.add_class::<response::PyAttempt>()?;
    m.add_class::<response::PySplit>()?;
    m.add_class::<registry::PyRegistration>()?;
    sync::register(m)?;
    testing::register(m)?;
    // OpenTelemetry: federation/__init__.py sets the hook when `opentelemetry` is importable.
    m.add_function(wrap_pyfunction!(call_hook::_set_call_hook, m)?)?;
    m.add_function(wrap_pyfunction!(call_hook::_call_hook_set, m)?)?;
    bridge::register_exit_hook(m)?;
    runtime::register_fork_hook(m)?;
    Ok(())
}
