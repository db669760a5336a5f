//! A Python store as a [`SyncTarget`]: `read(entity_type, entity_id)` and `write(change)`,
//! plain or `async def`.
//!
//! **Failures prevented.** Calling a Python handler on a runtime worker with the interpreter
//! attached stalls every connection that worker drives for as long as the handler runs; running
//! an `async def` handler on a private event loop breaks every handler that uses the service's
//! own loop-bound clients (its database pool); and an exception that escapes as a panic, or is
//! swallowed, loses the change. Here a plain handler runs on a blocking thread, a coroutine runs
//! on the loop that was running where `subscribe()` was called
//! (`asyncio.run_coroutine_threadsafe`), and every exception becomes a [`TargetError`]: the
//! subscriber retries it with backoff and then dead-letters the event, exactly as for a Rust
//! target.

use std::future::Future;
use std::pin::Pin;
use std::sync::{Arc, Mutex, PoisonError};

use federation_sync::model::EntityState;
use federation_sync::{AppliedChange, SyncTarget, TargetError};
use pyo3::prelude::*;
use pyo3::types::{PyCFunction, PyDict, PyTuple};
use tokio::sync::oneshot;

use super::convert::{from_py, to_py};
use crate::runtime;

type Boxed<'a, T> = Pin<Box<dyn Future<Output = Result<T, TargetError>> + Send + 'a>>;
/// Turns what a handler returned into the runtime's value (called attached).
type Convert<T> = fn(&Bound<'_, PyAny>) -> Result<T, TargetError>;

/// The arguments of one handler call.
enum Args {
    Read(String, String),
    Write(Box<AppliedChange>),
}

/// A Python `read`/`write` pair as a sync target.
pub(crate) struct PyHandler {
    read: Arc<Py<PyAny>>,
    write: Arc<Py<PyAny>>,
    /// The loop running where the handler was made, for coroutines.
    event_loop: Option<Arc<Py<PyAny>>>,
    /// Whether `read` or `write` is an `async def`.
    is_async: bool,
}

impl PyHandler {
    /// A handler over two callables; fails when either is not callable, or is an `async def`
    /// while no event loop is running here (its coroutines would have nowhere to run).
    pub(crate) fn new(read: &Bound<'_, PyAny>, write: &Bound<'_, PyAny>) -> PyResult<Self> {
        let py = read.py();
        for (name, f) in [("read", read), ("write", write)] {
            if !f.is_callable() {
                return Err(crate::errors::invalid_request(
                    py,
                    format!(
                        "the target's `{name}` is not callable (got {})",
                        f.get_type().name()?
                    ),
                ));
            }
        }
        let inspect = py.import("inspect")?;
        let is_async = inspect
            .call_method1("iscoroutinefunction", (read,))?
            .is_truthy()?
            || inspect
                .call_method1("iscoroutinefunction", (write,))?
                .is_truthy()?;
        let event_loop = py
            .import("asyncio")?
            .call_method0("get_running_loop")
            .ok()
            .map(|l| Arc::new(l.unbind()));
        if is_async && event_loop.is_none() {
            return Err(pyo3::exceptions::PyRuntimeError::new_err(
                "the target has `async def` methods, but no asyncio event loop is running here: \
                 call this from a coroutine (the coroutines run on that loop)",
            ));
        }
        Ok(Self {
            read: Arc::new(read.clone().unbind()),
            write: Arc::new(write.clone().unbind()),
            event_loop,
            is_async,
        })
    }

    /// Whether blocking on this thread until a handler call finished would deadlock: the
    /// handler is async and its loop is the one running on this thread.
    pub(crate) fn would_deadlock(&self, py: Python<'_>) -> bool {
        let Some(event_loop) = self.event_loop.as_ref().filter(|_| self.is_async) else {
            return false;
        };
        py.import("asyncio")
            .and_then(|a| a.call_method0("get_running_loop"))
            .is_ok_and(|running| running.is(event_loop.bind(py)))
    }

    async fn call<T: Send + 'static>(
        &self,
        callable: &Arc<Py<PyAny>>,
        args: Args,
        convert: Convert<T>,
    ) -> Result<T, TargetError> {
        let (done, outcome) = oneshot::channel();
        let (callable, event_loop) = (Arc::clone(callable), self.event_loop.clone());
        let started = tokio::task::spawn_blocking(move || {
            if !runtime::enter_attach() {
                return Err(TargetError::new("the Python interpreter is exiting"));
            }
            let started = Python::try_attach(|py| {
                start(py, &callable, args, convert, event_loop.as_deref(), done)
            });
            runtime::exit_attach();
            started.unwrap_or_else(|| Err(TargetError::new("the Python interpreter is exiting")))
        })
        .await
        .map_err(|e| TargetError::new(format!("the handler thread failed: {e}")))??;
        match started {
            Some(value) => Ok(value),
            None => outcome.await.map_err(|_| {
                TargetError::new(
                    "the handler's coroutine was dropped unfinished (was its event loop closed?)",
                )
            })?,
        }
    }
}

/// Calls the handler; a plain result is converted here (`Some`), a coroutine is scheduled on
/// `event_loop` and its result sent on `done` (`None`).
fn start<T: Send + 'static>(
    py: Python<'_>,
    callable: &Py<PyAny>,
    args: Args,
    convert: Convert<T>,
    event_loop: Option<&Py<PyAny>>,
    done: oneshot::Sender<Result<T, TargetError>>,
) -> Result<Option<T>, TargetError> {
    let args = match args {
        Args::Read(entity_type, entity_id) => PyTuple::new(py, [entity_type, entity_id]),
        Args::Write(change) => change_dict(py, &change).and_then(|d| PyTuple::new(py, [d])),
    }
    .map_err(|e| TargetError::new(format!("building the handler's arguments: {e}")))?;
    let result = callable.bind(py).call1(args).map_err(raised)?;
    let asyncio = py.import("asyncio").map_err(raised)?;
    if !asyncio
        .call_method1("iscoroutine", (&result,))
        .and_then(|b| b.is_truthy())
        .map_err(raised)?
    {
        return convert(&result).map(Some);
    }
    let Some(event_loop) = event_loop else {
        let _ = result.call_method0("close");
        return Err(TargetError::new(
            "the handler returned a coroutine, but no event loop was running where the target \
             was given: give it from a coroutine",
        ));
    };
    let future = match asyncio.call_method1(
        "run_coroutine_threadsafe",
        (result.clone(), event_loop.bind(py)),
    ) {
        Ok(future) => future,
        Err(error) => {
            // The loop is closed: the coroutine will never run (closing it avoids a
            // "never awaited" warning); the change fails as a handler error.
            let _ = result.call_method0("close");
            return Err(raised(error));
        }
    };
    let done = Mutex::new(Some(done));
    let on_done = PyCFunction::new_closure(py, None, None, move |args, _kwargs| {
        let outcome = args
            .get_item(0)
            .and_then(|f| f.call_method0("result"))
            .map_err(raised)
            .and_then(|value| convert(&value));
        if let Some(done) = done.lock().unwrap_or_else(PoisonError::into_inner).take() {
            // The receiver is gone only if the subscriber was aborted: nobody to tell.
            let _ = done.send(outcome);
        }
    })
    .map_err(raised)?;
    future
        .call_method1("add_done_callback", (on_done,))
        .map_err(raised)?;
    Ok(None)
}

/// A handler exception as a target error (retried, then dead-lettered with this message).
fn raised(error: PyErr) -> TargetError {
    TargetError::new(format!("the Python handler raised {error}"))
}

/// What `write` receives: the entity, the event and its effect, and the state to store.
fn change_dict<'py>(py: Python<'py>, change: &AppliedChange) -> PyResult<Bound<'py, PyDict>> {
    let dict = PyDict::new(py);
    let event = &change.event;
    dict.set_item("entity_type", &event.entity_type)?;
    dict.set_item("entity_id", &event.entity_id)?;
    dict.set_item("operation", event.operation.name())?;
    dict.set_item("effect", change.effect.name())?;
    dict.set_item("event_id", &*event.stamp.event_id)?;
    dict.set_item("origin", &*event.stamp.origin)?;
    dict.set_item("record", to_py(py, &change.state.data)?)?;
    dict.set_item("state", to_py(py, &change.state)?)?;
    dict.set_item("previous", to_py(py, &change.previous)?)?;
    Ok(dict)
}

fn read_state(value: &Bound<'_, PyAny>) -> Result<Option<EntityState>, TargetError> {
    if value.is_none() {
        return Ok(None);
    }
    from_py(value, "the value read() returned")
        .map(Some)
        .map_err(|e| TargetError::new(e.to_string()))
}

fn wrote(_value: &Bound<'_, PyAny>) -> Result<(), TargetError> {
    Ok(())
}

impl SyncTarget for PyHandler {
    fn read<'a>(
        &'a self,
        entity_type: &'a str,
        entity_id: &'a str,
    ) -> Boxed<'a, Option<EntityState>> {
        let args = Args::Read(entity_type.to_owned(), entity_id.to_owned());
        Box::pin(self.call(&self.read, args, read_state))
    }

    fn write<'a>(&'a self, change: &'a AppliedChange) -> Boxed<'a, ()> {
        let args = Args::Write(Box::new(change.clone()));
        Box::pin(self.call(&self.write, args, wrote))
    }
}
