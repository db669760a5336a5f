//! The async bridge: Rust calls as asyncio awaitables, fast and safe at interpreter exit.
//!
//! **Failures prevented.** Handing each finished Rust future to asyncio through a generic
//! adapter costs 56–283 µs per await (a GIL round trip and a loop wake-up per call), and
//! completing futures from a worker thread while the interpreter finalizes crashes the process.
//! An awaiting task cancelled in asyncio must also stop the Rust work, or cancelled calls keep
//! running and keep their connections.
//!
//! **Algorithm.** On the loop thread, [`spawn`] creates the asyncio future itself
//! (`loop.create_future()`), spawns the Rust work on the process runtime, and adds a done
//! callback that aborts the Rust task (a no-op when the task already finished; when asyncio
//! cancelled the future, dropping the Rust future cancels the call). A finished task pushes its
//! outcome, still as Rust data, onto its loop's queue; only the push that finds the queue empty
//! attaches to the interpreter and calls `loop.call_soon_threadsafe(drain)`, so a burst of
//! completions costs one wake-up and one attach. The drain runs on the loop thread, converts each
//! outcome to Python objects and resolves the futures that are not already cancelled. Attaching
//! from a worker goes through [`crate::runtime::enter_attach`], so nothing attaches after the
//! exit hook ran; a queue whose loop is closed is simply dropped.

use std::cell::RefCell;
use std::future::Future;
use std::sync::{Arc, Mutex, PoisonError};

use pyo3::prelude::*;
use pyo3::sync::PyOnceLock;
use pyo3::types::PyCFunction;
use pyo3::{intern, wrap_pyfunction};
use tokio::task::AbortHandle;

use crate::runtime::{self, RtHandle};

/// Converts a finished call's outcome into a Python value or exception, on the loop thread.
pub(crate) type Deliver = Box<dyn FnOnce(Python<'_>) -> PyResult<Py<PyAny>> + Send>;

/// One finished call waiting for its loop.
struct Done {
    future: Py<PyAny>,
    deliver: Deliver,
}

/// The completion queue of one event loop.
struct LoopQueue {
    /// The event loop, to compare with the running one.
    event_loop: Py<PyAny>,
    /// `event_loop.call_soon_threadsafe`.
    call_soon_threadsafe: Py<PyAny>,
    /// Finished calls; non-empty means a drain is scheduled.
    pending: Mutex<Vec<Done>>,
}

thread_local! {
    /// The queue of the loop last seen on this thread (almost always the only one).
    static QUEUE: RefCell<Option<Arc<LoopQueue>>> = const { RefCell::new(None) };
}

static GET_RUNNING_LOOP: PyOnceLock<Py<PyAny>> = PyOnceLock::new();

/// Returns an awaitable resolving to what `deliver` builds from `work`'s output. Must be called
/// from a coroutine running on an asyncio loop (a `RuntimeError` otherwise).
pub(crate) fn spawn<'py, F>(py: Python<'py>, rt: &RtHandle, work: F) -> PyResult<Bound<'py, PyAny>>
where
    F: Future<Output = Deliver> + Send + 'static,
{
    rt.check()?;
    if runtime::is_shutting_down() {
        return Err(pyo3::exceptions::PyRuntimeError::new_err(
            "the Python interpreter is exiting; federation calls are refused",
        ));
    }
    let queue = loop_queue(py)?;
    let future = queue
        .event_loop
        .bind(py)
        .call_method0(intern!(py, "create_future"))?;
    let for_task = future.clone().unbind();
    let task_queue = Arc::clone(&queue);
    let task = rt.tokio().spawn(async move {
        let deliver = work.await;
        task_queue.complete(Done {
            future: for_task,
            deliver,
        });
    });
    let abort = Bound::new(py, AbortOnDone(task.abort_handle()))?;
    future.call_method1(intern!(py, "add_done_callback"), (abort,))?;
    Ok(future)
}

/// The queue of the running loop, from the thread-local cache or new.
fn loop_queue(py: Python<'_>) -> PyResult<Arc<LoopQueue>> {
    let get = GET_RUNNING_LOOP.get_or_try_init(py, || {
        Ok::<_, PyErr>(py.import("asyncio")?.getattr("get_running_loop")?.unbind())
    })?;
    let running = get.bind(py).call0()?;
    let cached = QUEUE.with_borrow(|slot| {
        slot.as_ref()
            .filter(|q| q.event_loop.bind(py).is(&running))
            .cloned()
    });
    if let Some(queue) = cached {
        return Ok(queue);
    }
    let queue = Arc::new(LoopQueue {
        call_soon_threadsafe: running
            .getattr(intern!(py, "call_soon_threadsafe"))?
            .unbind(),
        event_loop: running.unbind(),
        pending: Mutex::new(Vec::new()),
    });
    QUEUE.with_borrow_mut(|slot| *slot = Some(Arc::clone(&queue)));
    Ok(queue)
}

impl LoopQueue {
    /// Called on a runtime thread when a call finished.
    fn complete(self: &Arc<Self>, done: Done) {
        let first = {
            let mut pending = self.pending.lock().unwrap_or_else(PoisonError::into_inner);
            pending.push(done);
            pending.len() == 1
        };
        if first {
            self.schedule_drain();
        }
    }

    /// Asks the loop to run the drain soon. Never attaches once the interpreter is exiting; a
    /// closed loop refuses the callback and its queue is dropped with it.
    fn schedule_drain(self: &Arc<Self>) {
        if !runtime::enter_attach() {
            return;
        }
        Python::try_attach(|py| {
            let queue = Arc::clone(self);
            let drain = PyCFunction::new_closure(py, None, None, move |args, _kwargs| {
                queue.drain(args.py());
            });
            if let Ok(drain) = drain {
                // Fails only when the loop is closed: nobody awaits these futures any more.
                let _ = self.call_soon_threadsafe.bind(py).call1((drain,));
            }
        });
        runtime::exit_attach();
    }

    /// On the loop thread: resolve every finished call's future.
    fn drain(&self, py: Python<'_>) {
        let batch =
            std::mem::take(&mut *self.pending.lock().unwrap_or_else(PoisonError::into_inner));
        for done in batch {
            let future = done.future.bind(py);
            // A future cancelled by asyncio stays cancelled; the outcome is dropped.
            if future
                .call_method0(intern!(py, "done"))
                .and_then(|d| d.is_truthy())
                .unwrap_or(true)
            {
                continue;
            }
            let outcome = match (done.deliver)(py) {
                Ok(value) => future.call_method1(intern!(py, "set_result"), (value,)),
                Err(error) => {
                    future.call_method1(intern!(py, "set_exception"), (error.into_value(py),))
                }
            };
            // Only possible if the future was resolved meanwhile; nothing to report to.
            drop(outcome);
        }
    }
}

/// Done callback of a call's future: aborts the Rust task (cancelling the call when asyncio
/// cancelled the future; a no-op when the task already finished).
#[pyclass(frozen, module = "federation._federation")]
struct AbortOnDone(AbortHandle);

#[pymethods]
impl AbortOnDone {
    fn __call__(&self, _future: &Bound<'_, PyAny>) {
        self.0.abort();
    }
}

/// Registers the exit hook with `atexit` (module initialisation).
pub(crate) fn register_exit_hook(m: &Bound<'_, PyModule>) -> PyResult<()> {
    let py = m.py();
    let hook = wrap_pyfunction!(runtime::_shutdown, m)?;
    m.add_function(hook.clone())?;
    py.import("atexit")?.call_method1("register", (hook,))?;
    Ok(())
}
