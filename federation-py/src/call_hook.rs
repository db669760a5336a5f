//! The per-call hook the Python package installs when OpenTelemetry is present.
//!
//! **Failure prevented.** A Python service that traces with OpenTelemetry would otherwise see
//! its trace end at the federation call: the core only continues a `traceparent` it is given, and
//! its own `federation.call`/`federation.attempt` spans live in Rust's `tracing`, which the Python
//! SDK never sees. So `federation/__init__.py` registers `federation._otel.begin` here when
//! `opentelemetry` is importable; without it no hook is set and a call costs one atomic load more.
//!
//! **Protocol.** Before a call, `hook(method, service, path, headers)` (the caller's `headers`
//! argument or `None`) returns `None` or `(extra_headers, finish)`: the headers (`traceparent`,
//! `tracestate`) are added to the request and `finish(response, error)` is called once with the
//! `Response` or the raised exception when the call ends (for an async call, when its future is
//! done: a call cancelled by asyncio reports `asyncio.CancelledError`). An exception raised by
//! the hook or by `finish` does not change the call's result: it is reported through
//! `sys.unraisablehook`.

use std::sync::OnceLock;

use federation_core::client::{FederatedServiceClient, RequestBuilder};
use http::Method;
use pyo3::prelude::*;

use crate::request::{self, CallOptions};

/// The hook, set at most once per process by `federation/__init__.py`.
static HOOK: OnceLock<Py<PyAny>> = OnceLock::new();

/// Registers `hook` (`federation._otel.begin`). A second registration is refused.
#[pyfunction]
pub(crate) fn _set_call_hook(hook: Py<PyAny>) -> PyResult<()> {
    HOOK.set(hook).map_err(|_| {
        pyo3::exceptions::PyRuntimeError::new_err("the federation call hook is already set")
    })
}

/// Whether a call hook is registered (`federation/__init__.py` sets it once; tests read it).
#[pyfunction]
pub(crate) fn _call_hook_set() -> bool {
    HOOK.get().is_some()
}

/// What a traced call must do when it ends.
pub(crate) struct Finish(Py<PyAny>);

/// The request builder of a call (see [`request::build`]), after the hook (if any) added its
/// headers, and the hook's `finish`.
pub(crate) fn build(
    py: Python<'_>,
    client: &FederatedServiceClient,
    method: Method,
    service: &str,
    path: &str,
    options: CallOptions<'_>,
) -> PyResult<(RequestBuilder, Option<Finish>)> {
    let headers = options.headers.clone();
    let builder = request::build(py, client, method.clone(), service, path, options)?;
    Ok(begin(py, &method, service, path, headers.as_ref(), builder))
}

/// Runs the hook for a call about to start: adds its headers to `builder` and returns the
/// `finish` callable, or `None` when no hook is set or it declined.
fn begin(
    py: Python<'_>,
    method: &Method,
    service: &str,
    path: &str,
    headers: Option<&Bound<'_, PyAny>>,
    builder: RequestBuilder,
) -> (RequestBuilder, Option<Finish>) {
    let Some(hook) = HOOK.get() else {
        return (builder, None);
    };
    let hook = hook.bind(py);
    match call_begin(hook, method, service, path, headers) {
        Ok(Some((extra, finish))) => {
            let builder = extra
                .into_iter()
                .fold(builder, |b, (name, value)| b.header(name, value));
            (builder, Some(Finish(finish)))
        }
        Ok(None) => (builder, None),
        Err(e) => {
            e.write_unraisable(py, Some(hook));
            (builder, None)
        }
    }
}

type Begun = Option<(Vec<(String, String)>, Py<PyAny>)>;

fn call_begin(
    hook: &Bound<'_, PyAny>,
    method: &Method,
    service: &str,
    path: &str,
    headers: Option<&Bound<'_, PyAny>>,
) -> PyResult<Begun> {
    let begun = hook.call1((method.as_str(), service, path, headers))?;
    begun.extract::<Begun>()
}

/// The done callback of an async call's future: reports its result, exception or cancellation
/// to `finish` once.
#[pyclass(frozen, module = "federation._federation")]
struct FinishOnDone(std::sync::Mutex<Option<Finish>>);

#[pymethods]
impl FinishOnDone {
    fn __call__(&self, future: &Bound<'_, PyAny>) -> PyResult<()> {
        let py = future.py();
        let taken = self
            .0
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .take();
        let Some(finish) = taken else {
            return Ok(());
        };
        if future.call_method0("cancelled")?.is_truthy()? {
            let cancelled = py.import("asyncio")?.getattr("CancelledError")?.call0()?;
            finish.call(py, None, Some(&PyErr::from_value(cancelled)));
            return Ok(());
        }
        let error = future.call_method0("exception")?;
        if error.is_none() {
            let response = future.call_method0("result")?;
            finish.call(py, Some(&response), None);
        } else {
            finish.call(py, None, Some(&PyErr::from_value(error)));
        }
        Ok(())
    }
}

impl Finish {
    /// Reports a blocking call's result.
    pub(crate) fn report<T>(self, py: Python<'_>, result: &PyResult<Bound<'_, T>>) {
        match result {
            Ok(response) => self.call(py, Some(response.as_any()), None),
            Err(e) => self.call(py, None, Some(e)),
        }
    }

    /// Calls `finish` when the asyncio `future` of the call is done (also when cancelled).
    pub(crate) fn when_done(self, future: &Bound<'_, PyAny>) -> PyResult<()> {
        let callback = Bound::new(future.py(), FinishOnDone(std::sync::Mutex::new(Some(self))))?;
        future.call_method1("add_done_callback", (callback,))?;
        Ok(())
    }

    /// Reports how the call ended: `response` or `error`.
    pub(crate) fn call(
        self,
        py: Python<'_>,
        response: Option<&Bound<'_, PyAny>>,
        error: Option<&PyErr>,
    ) {
        let error = error.map(|e| e.value(py).clone().into_any());
        if let Err(e) = self.0.bind(py).call1((response, error)) {
            e.write_unraisable(py, Some(self.0.bind(py)));
        }
    }
}
