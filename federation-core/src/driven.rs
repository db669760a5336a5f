//! Calls driven by the calling thread: the thread that waits for a call does its I/O itself.
//!
//! **Failure prevented.** A foreign caller that blocks until its call completes (a Go goroutine
//! inside cgo, a C program) pays for every thread hand-off on the way: its thread hands the call
//! to a runtime worker, the worker that owns the pooled connection writes the request, the
//! response wakes that worker, and the worker wakes the waiting thread. On a virtual machine each
//! hop is a futex wake-up of a sleeping vCPU, tens of microseconds, and at low concurrency they
//! add up to more than the whole exchange (measured for the Go binding: ≈ 10 context switches
//! per call against ≈ 3 for Go's own `net/http`). [`run_here`] runs the call on the calling
//! thread instead, inside a small single-threaded runtime of that thread, with that thread's own
//! connection pools: the thread writes the request, sleeps in its own `epoll_wait` on the socket
//! and reads the response when it arrives, like a blocking HTTP client, while the call keeps the
//! whole pipeline (balancing, breakers, retries, failover, cache, telemetry) shared with every
//! other call of the client.
//!
//! What stays on the client's main runtime: background work a call starts that must outlive it
//! (a stale-while-revalidate refresh, a cache fill other callers wait for, a prober, the timer
//! anchor) is spawned on the `home` handle, never on the thread's runtime, which runs only while
//! its thread is inside [`run_here`].
//!
//! Between calls the thread's runtime does not run, so its connections are not watched: a call
//! first lets the runtime process pending socket events, so a connection the server closed
//! meanwhile is dropped from the pool before the call picks one, and afterwards lets the
//! connection tasks close a connection whose request the call abandoned (see [`run_here`]).

use std::cell::{Cell, OnceCell, RefCell};
use std::fmt;
use std::future::Future;

use tokio::runtime::{Builder, Handle, Runtime};

/// Why a call cannot be driven on this thread.
#[derive(Debug)]
pub enum DrivenError {
    /// The calling thread is inside a tokio runtime (for example a completion callback running
    /// on a library worker); blocking it would stall that runtime.
    InsideRuntime,
    /// The thread's runtime could not be built (the OS refused an epoll or eventfd descriptor).
    Runtime(String),
}

impl fmt::Display for DrivenError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::InsideRuntime => f.write_str(
                "a blocking call was made from a thread that runs async tasks (a library worker, \
                 e.g. inside a completion callback); start the call asynchronously instead",
            ),
            Self::Runtime(e) => write!(f, "cannot start this thread's call runtime: {e}"),
        }
    }
}

impl std::error::Error for DrivenError {}

/// The per-thread state: the runtime (the connection pools of every transport used here are
/// in `crate::transport`, per thread as well).
struct Local {
    runtime: Runtime,
}

thread_local! {
    static LOCAL: OnceCell<Local> = const { OnceCell::new() };
    /// The main runtime while this thread drives a call; `None` otherwise.
    static HOME: RefCell<Option<Handle>> = const { RefCell::new(None) };
    /// Fast check of `HOME.is_some()`.
    static DRIVING: Cell<bool> = const { Cell::new(false) };
}

fn build_local() -> Result<Local, DrivenError> {
    let runtime = Builder::new_current_thread()
        .enable_all()
        // Only name resolution uses the blocking pool; keep it to one short-lived thread.
        .max_blocking_threads(1)
        .thread_keep_alive(std::time::Duration::from_secs(1))
        .thread_name("federation-resolve")
        .build()
        .map_err(|e| DrivenError::Runtime(e.to_string()))?;
    Ok(Local { runtime })
}

/// Clears the driving state when a driven call ends, also by unwinding.
struct Driving;

impl Driving {
    fn enter(home: &Handle) -> Self {
        HOME.with(|h| *h.borrow_mut() = Some(home.clone()));
        DRIVING.with(|d| d.set(true));
        Self
    }
}

impl Drop for Driving {
    fn drop(&mut self) {
        DRIVING.with(|d| d.set(false));
        HOME.with(|h| h.borrow_mut().take());
    }
}

/// Runs `future` to completion on the calling thread, which does the call's I/O itself (see the
/// module docs). Background work the future starts goes to `home`, the client's main runtime.
///
/// Fails without running the future when the thread is inside a tokio runtime or its own
/// runtime cannot be built. Blocks the thread until the future completes: use it for a bounded
/// number of concurrent callers, and the runtime (`home`) for the rest.
pub fn run_here<F: Future>(home: &Handle, future: F) -> Result<F::Output, DrivenError> {
    if Handle::try_current().is_ok() || DRIVING.with(Cell::get) {
        return Err(DrivenError::InsideRuntime);
    }
    LOCAL.with(|cell| {
        let local = match cell.get() {
            Some(local) => local,
            None => {
                let built = build_local()?;
                cell.get_or_init(|| built)
            }
        };
        let _driving = Driving::enter(home);
        Ok(local.runtime.block_on(async {
            let_connection_tasks_run().await;
            let output = future.await;
            // A call abandoned mid-exchange (cancelled, or its last attempt timed out) leaves
            // its connection's task to notice and close the connection, abandoning the request
            // upstream: let it run now, as this runtime sleeps until the thread's next call.
            let_connection_tasks_run().await;
            output
        }))
    })
}

/// Lets the thread's runtime take in the socket events that arrived meanwhile and lets the
/// connection tasks act on them and on dropped requests. Before a call, a connection the server
/// closed while the thread was away leaves the pool before the call picks one; after it, a
/// connection whose request was abandoned is closed. The first yield makes the runtime poll
/// its I/O driver without blocking; the second lets the woken connection tasks run.
async fn let_connection_tasks_run() {
    tokio::task::yield_now().await;
    tokio::task::yield_now().await;
}

/// True while the calling thread drives a call through [`run_here`].
pub(crate) fn active() -> bool {
    DRIVING.with(Cell::get)
}

/// Where background work started now must run: the main runtime of a driven call, else the
/// current runtime (if any).
pub(crate) fn spawn_handle() -> Option<Handle> {
    if active() {
        return HOME.with(|h| h.borrow().clone());
    }
    Handle::try_current().ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn runs_the_future_on_the_calling_thread_and_spawns_background_work_at_home() {
        let home = Builder::new_multi_thread()
            .worker_threads(1)
            .enable_all()
            .build()
            .expect("runtime");
        let caller = std::thread::current().id();
        let (ran_on, background_on) = run_here(home.handle(), async {
            let handle = spawn_handle().expect("a home handle while driving");
            let background = handle.spawn(async { std::thread::current().id() });
            (
                std::thread::current().id(),
                background.await.expect("background task"),
            )
        })
        .expect("driven");
        assert_eq!(ran_on, caller);
        assert_ne!(background_on, caller);
        assert!(!active(), "the driving state is cleared after the call");
    }

    #[test]
    fn refuses_to_block_a_runtime_thread() {
        let home = Builder::new_current_thread()
            .enable_all()
            .build()
            .expect("runtime");
        let nested = home.block_on(async { run_here(&Handle::current(), async { 1 }) });
        assert!(matches!(nested, Err(DrivenError::InsideRuntime)));
        let inner = run_here(home.handle(), async {
            run_here(home.handle(), async { 1 })
        })
        .expect("outer call runs");
        assert!(matches!(inner, Err(DrivenError::InsideRuntime)));
    }

    #[test]
    fn a_thread_that_drove_calls_can_exit() {
        let home = Builder::new_current_thread()
            .enable_all()
            .build()
            .expect("runtime");
        let handle = home.handle().clone();
        let worker = std::thread::spawn(move || {
            run_here(&handle, async {
                tokio::time::sleep(std::time::Duration::from_millis(1)).await;
                7
            })
            .expect("driven")
        });
        assert_eq!(worker.join().expect("thread exits cleanly"), 7);
    }
}
