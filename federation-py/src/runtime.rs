//! The one tokio runtime of the process, the fork check, and the exit protocol.
//!
//! **Failures prevented.** A runtime per client multiplies threads and connection pools; a
//! runtime used after `fork()` hangs forever (its worker threads do not exist in the child); and
//! a worker thread that attaches to the interpreter while it is finalizing kills the process
//! (segfault or abort at exit, seen in 10–17 of 60 runs with a naive binding).
//!
//! **Algorithm.** The runtime is created lazily on first use and remembered with the pid that
//! created it. Every [`RtHandle`] carries that pid and the fork generation (a counter that an
//! `os.register_at_fork(after_in_child=...)` hook bumps in every child); [`RtHandle::check`]
//! compares the generation (an atomic load: `getpid()` is a system call, and calls check on
//! every use) and, before work is handed to the runtime's threads, the pid too (so a fork that
//! bypassed Python's hooks is caught there). A client created before a fork thus gives a clear
//! error in the child (which may
//! create new clients: it gets a runtime of its own; the parent's is leaked, never dropped,
//! because dropping it would wait for threads that do not exist).
//!
//! Exit: an `atexit` hook ([`shutdown`]) sets a global flag, shuts the runtime down (dropping
//! every in-flight task, which cancels the calls) with a bounded wait, then waits until no
//! thread is between "decided to attach" and "attached". Every path that attaches from a
//! non-Python thread, or re-attaches after releasing the interpreter, goes through
//! [`enter_attach`], which refuses once the flag is set; a thread refused on its way back into
//! Python parks forever instead (the process is exiting; this is what Python 3.14 itself does).

use std::future::Future;
use std::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering};
use std::sync::{Mutex, PoisonError};
use std::time::{Duration, Instant};

use federation_core::bindings;
use pyo3::exceptions::PyRuntimeError;
use pyo3::prelude::*;
use tokio::runtime::{Builder, Handle, Runtime};

/// Bumped in the child after every `os.fork()` (see [`register_fork_hook`]).
static FORK_GENERATION: AtomicU64 = AtomicU64::new(0);
/// Set once by the `atexit` hook; never cleared.
static SHUTTING_DOWN: AtomicBool = AtomicBool::new(false);
/// Threads that passed [`enter_attach`] and have not called [`exit_attach`].
static ATTACHING: AtomicUsize = AtomicUsize::new(0);
/// The runtime and the pid that created it.
static RUNTIME: Mutex<Option<Owned>> = Mutex::new(None);

/// How long the exit hook waits for in-flight tasks, then for attaching threads.
const EXIT_WAIT: Duration = Duration::from_secs(2);

struct Owned {
    pid: u32,
    runtime: Runtime,
}

/// A handle on the process runtime, valid only in the process that created it.
#[derive(Clone, Debug)]
pub(crate) struct RtHandle {
    pid: u32,
    generation: u64,
    handle: Handle,
}

/// The handle of this process's runtime, creating the runtime on first use.
pub(crate) fn current() -> PyResult<RtHandle> {
    if is_shutting_down() {
        return Err(exiting_error());
    }
    let pid = std::process::id();
    let mut slot = RUNTIME.lock().unwrap_or_else(PoisonError::into_inner);
    if let Some(owned) = slot.as_ref()
        && owned.pid == pid
    {
        return Ok(RtHandle {
            pid,
            generation: FORK_GENERATION.load(Ordering::Relaxed),
            handle: owned.runtime.handle().clone(),
        });
    }
    if let Some(stale) = slot.take() {
        // Inherited through fork(): its threads are gone, dropping it would wait for them.
        std::mem::forget(stale);
    }
    let runtime = Builder::new_multi_thread()
        .enable_all()
        .thread_name("federation-rt")
        .build()
        .map_err(|e| PyRuntimeError::new_err(format!("cannot start the tokio runtime: {e}")))?;
    let handle = runtime.handle().clone();
    *slot = Some(Owned { pid, runtime });
    Ok(RtHandle {
        pid,
        generation: FORK_GENERATION.load(Ordering::Relaxed),
        handle,
    })
}

/// Installs the `os.register_at_fork` hook that bumps the fork generation in children
/// (module initialisation).
pub(crate) fn register_fork_hook(m: &Bound<'_, PyModule>) -> PyResult<()> {
    let py = m.py();
    let hook = pyo3::wrap_pyfunction!(_after_fork_in_child, m)?;
    let kwargs = pyo3::types::PyDict::new(py);
    kwargs.set_item("after_in_child", hook)?;
    py.import("os")?
        .call_method("register_at_fork", (), Some(&kwargs))?;
    Ok(())
}

/// `os.register_at_fork(after_in_child=...)`: every handle made before the fork is now stale.
#[pyfunction]
fn _after_fork_in_child() {
    FORK_GENERATION.fetch_add(1, Ordering::SeqCst);
}

impl RtHandle {
    /// Fails when used in a process forked (through Python) after this handle was made. Cheap:
    /// no system call.
    pub(crate) fn check(&self) -> PyResult<()> {
        if FORK_GENERATION.load(Ordering::Relaxed) == self.generation {
            Ok(())
        } else {
            Err(self.forked_error())
        }
    }

    /// [`Self::check`], and the pid too: for work about to be handed to the runtime's threads,
    /// which do not exist in a child, however it was forked.
    pub(crate) fn check_pid(&self) -> PyResult<()> {
        self.check()?;
        if std::process::id() == self.pid {
            Ok(())
        } else {
            Err(self.forked_error())
        }
    }

    fn forked_error(&self) -> PyErr {
        let now = std::process::id();
        PyRuntimeError::new_err(format!(
            "this federation object was created in process {} and cannot be used after \
             fork() (this is process {now}): its background threads do not exist here; create \
             a new client in the child process",
            self.pid
        ))
    }

    /// The tokio handle (spawn, enter).
    pub(crate) fn tokio(&self) -> &Handle {
        &self.handle
    }

    /// Runs `future` to completion: first one poll on the calling thread
    /// ([`federation_core::bindings::poll_here`]), so a cache hit never leaves the calling
    /// thread; whatever is still pending goes to the runtime at its first wake-up while this
    /// thread waits with the interpreter released ([`Self::wait`]).
    ///
    /// The poll runs with the interpreter attached, so the exit hook (which runs attached and
    /// sets the shutdown flag before it stops the runtime) cannot stop the runtime mid-poll.
    pub(crate) fn run<F>(&self, py: Python<'_>, future: F) -> PyResult<F::Output>
    where
        F: Future + Send + 'static,
        F::Output: Send + 'static,
    {
        self.check()?;
        if is_shutting_down() {
            return Err(refuse_blocking(py));
        }
        let pending = match bindings::poll_here(&self.handle, Box::pin(future)) {
            Ok(output) => return Ok(output),
            Err(pending) => pending,
        };
        self.check_pid()?;
        let (done, outcome) = std::sync::mpsc::sync_channel(1);
        // Cancelled only by the runtime's shutdown at exit (the waiting thread then parks).
        let _abort = pending.then_spawn(move |output| {
            // The receiver is gone only if the waiting thread is; nobody to tell.
            let _ = done.send(output);
        });
        Self::wait(py, outcome)
    }

    /// Runs `future` to completion on the runtime with the interpreter released, so other
    /// Python threads run meanwhile. The future runs on a worker thread, not on the caller's:
    /// at exit the runtime drops it and the waiting thread parks, instead of the future
    /// failing inside a runtime that is shutting down on a thread that is about to re-attach.
    pub(crate) fn block_on<F>(&self, py: Python<'_>, future: F) -> PyResult<F::Output>
    where
        F: Future + Send + 'static,
        F::Output: Send + 'static,
    {
        self.check_pid()?;
        if is_shutting_down() {
            return Err(refuse_blocking(py));
        }
        let (done, outcome) = std::sync::mpsc::sync_channel(1);
        self.handle.spawn(async move {
            // The receiver is gone only if the waiting thread is; nobody to tell.
            let _ = done.send(future.await);
        });
        Self::wait(py, outcome)
    }

    /// Waits with the interpreter released for what a runtime thread sends on `outcome`; at
    /// exit (the runtime dropped the work) the thread parks instead of re-attaching.
    fn wait<T: Send>(py: Python<'_>, outcome: std::sync::mpsc::Receiver<T>) -> PyResult<T> {
        let outcome = py.detach(move || {
            let outcome = outcome.recv();
            if !enter_attach() {
                park_forever();
            }
            outcome
        });
        exit_attach();
        outcome.map_err(|_| {
            PyRuntimeError::new_err("the federation runtime stopped before the call finished")
        })
    }
}

/// True once the interpreter started exiting.
pub(crate) fn is_shutting_down() -> bool {
    SHUTTING_DOWN.load(Ordering::SeqCst)
}

/// Announces that this thread is about to attach to the interpreter. Returns false (and
/// announces nothing) once the exit hook ran; then the thread must not attach.
pub(crate) fn enter_attach() -> bool {
    ATTACHING.fetch_add(1, Ordering::SeqCst);
    if SHUTTING_DOWN.load(Ordering::SeqCst) {
        ATTACHING.fetch_sub(1, Ordering::SeqCst);
        return false;
    }
    true
}

/// Ends what a successful [`enter_attach`] started.
pub(crate) fn exit_attach() {
    ATTACHING.fetch_sub(1, Ordering::SeqCst);
}

fn park_forever() -> ! {
    loop {
        std::thread::park();
    }
}

/// The answer to a blocking call made after the exit hook ran. A daemon thread still calling in
/// is parked with the interpreter released, as Python itself does with daemon threads at exit
/// (an error would only print a traceback from a dying thread); the main thread, which may be
/// running a later `atexit` hook, gets the error.
fn refuse_blocking(py: Python<'_>) -> PyErr {
    let is_main = py
        .import("threading")
        .and_then(|t| {
            Ok(t.call_method0("main_thread")?
                .is(&t.call_method0("current_thread")?))
        })
        .unwrap_or(true);
    if !is_main {
        py.detach(|| -> () { park_forever() });
    }
    exiting_error()
}

fn exiting_error() -> PyErr {
    PyRuntimeError::new_err("the Python interpreter is exiting; federation calls are refused")
}

/// The `atexit` hook: refuse new work, cancel in-flight tasks, drain attaching threads.
#[pyfunction]
pub(crate) fn _shutdown(py: Python<'_>) {
    if SHUTTING_DOWN.swap(true, Ordering::SeqCst) {
        return;
    }
    let owned = RUNTIME
        .lock()
        .unwrap_or_else(PoisonError::into_inner)
        .take();
    py.detach(move || {
        if let Some(owned) = owned {
            if owned.pid == std::process::id() {
                owned.runtime.shutdown_timeout(EXIT_WAIT);
            } else {
                std::mem::forget(owned);
            }
        }
        let deadline = Instant::now() + EXIT_WAIT;
        while ATTACHING.load(Ordering::SeqCst) > 0 && Instant::now() < deadline {
            std::thread::sleep(Duration::from_millis(1));
        }
    });
}

/// A value owning runtime resources (tasks, sockets), dropped safely: inside the runtime
/// context normally, and leaked when the interpreter is exiting or after a fork (its runtime is
/// gone; dropping could panic or wait forever).
pub(crate) struct Pinned<T> {
    value: Option<T>,
    rt: RtHandle,
}

impl<T> Pinned<T> {
    /// Wraps `value`, which belongs to `rt`.
    pub(crate) fn new(value: T, rt: RtHandle) -> Self {
        Self {
            value: Some(value),
            rt,
        }
    }

    /// The value, after checking this is still the process that made it.
    pub(crate) fn get(&self) -> PyResult<&T> {
        self.rt.check()?;
        self.value
            .as_ref()
            .ok_or_else(|| PyRuntimeError::new_err("the object was already released"))
    }

    /// The runtime the value belongs to.
    pub(crate) fn rt(&self) -> &RtHandle {
        &self.rt
    }

    /// The value, moved out (for work that consumes it on the runtime).
    pub(crate) fn into_inner(mut self) -> Option<T> {
        self.value.take()
    }
}

impl<T> Drop for Pinned<T> {
    fn drop(&mut self) {
        let value = self.value.take();
        if is_shutting_down() || self.rt.pid != std::process::id() {
            std::mem::forget(value);
            return;
        }
        let _context = self.rt.handle.enter();
        drop(value);
    }
}
