//! Calls polled by a thread of the caller's choosing: `federation_executor_t`.
//!
//! **Failure prevented.** With `federation_client_call`, a call that has to wait for its
//! response continues on the library's worker threads: the worker that reads the response
//! wakes the call, the runtime schedules it as a task, the worker polls it to the end and runs
//! the completion callback, which hands the outcome to the host's thread. Under load that is
//! a second task per call on threads that already do all the network I/O, while the host's own
//! threads (Go's, for instance) wait for outcomes. A call started with
//! `federation_client_call_on` is instead parked in an executor when it waits; its wake-up
//! queues it there and, when the queue was empty, calls the executor's notify function; the
//! host then runs `federation_executor_run` on a thread of its own, which polls the woken calls
//! (and so runs their callbacks on that thread). The workers keep only the connections' I/O.
//!
//! Every call still needs the library's runtime (timers, connections): the executor only
//! decides where the call's own future is polled.

use std::collections::VecDeque;
use std::ffi::c_void;
use std::sync::atomic::{AtomicU8, Ordering};
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};
use std::task::{Context, Wake, Waker};

use tokio::runtime::Handle;

use crate::error::{FEDERATION_ERROR_INVALID_REQUEST, federation_error_t};
use crate::guard::{catch, catch_or};
use crate::input::{Tagged, free_handle, handle, invalid, write_out};
use crate::runtime::runtime;

use crate::call::BoxedCall as Call;

/// Called (from any thread, possibly concurrently with `federation_executor_run`) when a call
/// was queued on an empty executor: the host should run the executor soon.
pub type federation_notify_t = Option<unsafe extern "C" fn(user_data: *mut c_void)>;

struct NotifyData(*mut c_void);

// SAFETY: `federation_executor_new` documents that `notify_user_data` is passed to `notify` on
// any thread; the caller guarantees that is sound for its data.
unsafe impl Send for NotifyData {}
// SAFETY: as above; the pointer is only passed on, never dereferenced here.
unsafe impl Sync for NotifyData {}

/// Task states: parked (waiting for a wake-up), queued, being polled, woken while being
/// polled (queue again afterwards), finished.
const PARKED: u8 = 0;
const QUEUED: u8 = 1;
const POLLING: u8 = 2;
const WOKEN: u8 = 3;
const DONE: u8 = 4;

struct Executor {
    queue: Mutex<VecDeque<Arc<Task>>>,
    notify: unsafe extern "C" fn(*mut c_void),
    notify_data: NotifyData,
    runtime: Handle,
}

struct Task {
    state: AtomicU8,
    call: Mutex<Option<Call>>,
    executor: Arc<Executor>,
}

fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(PoisonError::into_inner)
}

impl Executor {
    fn push(&self, task: Arc<Task>) {
        let was_empty = {
            let mut queue = lock(&self.queue);
            let was_empty = queue.is_empty();
            queue.push_back(task);
            was_empty
        };
        if was_empty {
            // SAFETY: the function and data given to `federation_executor_new`, which may be
            // called from any thread.
            unsafe { (self.notify)(self.notify_data.0) };
        }
    }

    fn pop(&self) -> Option<Arc<Task>> {
        lock(&self.queue).pop_front()
    }
}

impl Task {
    /// Polls the call once (the task is in POLLING), then parks it, queues it again if it was
    /// woken meanwhile, or drops it once finished. A panic drops the call (its callback has then
    /// run or never will: the call future catches panics of the call itself, so only this
    /// crate's own code could panic here).
    fn poll(self: &Arc<Self>) {
        let waker = Waker::from(Arc::clone(self));
        let finished = {
            let mut slot = lock(&self.call);
            let Some(call) = slot.as_mut() else {
                self.state.store(DONE, Ordering::Release);
                return;
            };
            let _runtime = self.executor.runtime.enter();
            let finished = catch_or(true, || {
                call.as_mut()
                    .poll(&mut Context::from_waker(&waker))
                    .is_ready()
            });
            if finished {
                *slot = None;
            }
            finished
        };
        if finished {
            self.state.store(DONE, Ordering::Release);
        } else if self
            .state
            .compare_exchange(POLLING, PARKED, Ordering::AcqRel, Ordering::Acquire)
            .is_err()
        {
            // Woken while it was polled: queue it again.
            self.state.store(QUEUED, Ordering::Release);
            self.executor.push(Arc::clone(self));
        }
    }
}

impl Wake for Task {
    fn wake(self: Arc<Self>) {
        self.wake_by_ref();
    }

    fn wake_by_ref(self: &Arc<Self>) {
        let mut state = self.state.load(Ordering::Acquire);
        loop {
            let next = match state {
                PARKED => QUEUED,
                POLLING => WOKEN,
                _ => return, // already queued or woken, or finished
            };
            match self
                .state
                .compare_exchange(state, next, Ordering::AcqRel, Ordering::Acquire)
            {
                Ok(_) if next == QUEUED => return self.executor.push(Arc::clone(self)),
                Ok(_) => return,
                Err(now) => state = now,
            }
        }
    }
}

const TAG: u64 = 0x6665_642d_6578_6531; // "fed-exe1"

/// An executor of calls (see `federation_client_call_on`).
pub struct federation_executor_t {
    tag: u64,
    executor: Arc<Executor>,
}

impl Tagged for federation_executor_t {
    const TAG: u64 = TAG;
    const NAME: &'static str = "federation_executor_t";
    fn tag(&self) -> u64 {
        self.tag
    }
}

impl federation_executor_t {
    /// Polls `call` once on this thread; if it has to wait, parks it here until woken.
    pub(crate) fn start(&self, call: Call) {
        let task = Arc::new(Task {
            state: AtomicU8::new(POLLING),
            call: Mutex::new(Some(call)),
            executor: Arc::clone(&self.executor),
        });
        task.poll();
    }
}

/// Creates an executor whose queued calls are polled by `federation_executor_run`. `notify`
/// (required) is called with `notify_user_data` whenever a call is queued on an empty executor,
/// on whichever thread woke it (a library worker, or a thread in `federation_executor_run`); it
/// must return quickly and must not call into this library (write an eventfd, signal a
/// condition variable). On success writes the executor to `*out_executor` and returns NULL.
///
/// # Safety
/// `out_executor` is valid for a write; `notify_user_data` may be passed to `notify` on any
/// thread. Thread-safe.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn federation_executor_new(
    notify: federation_notify_t,
    notify_user_data: *mut c_void,
    out_executor: *mut *mut federation_executor_t,
) -> *mut federation_error_t {
    catch(|| {
        let notify = notify.ok_or_else(|| {
            invalid(
                FEDERATION_ERROR_INVALID_REQUEST,
                "`notify` is NULL".to_owned(),
            )
        })?;
        if out_executor.is_null() {
            return Err(invalid(
                FEDERATION_ERROR_INVALID_REQUEST,
                "`out_executor` is NULL".to_owned(),
            ));
        }
        let runtime = runtime()?.handle().clone();
        let executor = Box::new(federation_executor_t {
            tag: TAG,
            executor: Arc::new(Executor {
                queue: Mutex::new(VecDeque::new()),
                notify,
                notify_data: NotifyData(notify_user_data),
                runtime,
            }),
        });
        // SAFETY: checked non-NULL above; valid for a write per the caller.
        unsafe { write_out(out_executor, Box::into_raw(executor), "out_executor") }
    })
}

/// Polls up to `max` queued calls, oldest first, on this thread (their callbacks run here) and
/// returns how many it polled: 0 when none was queued. A call woken while this runs is queued
/// behind the others (and `notify` is called if the queue was empty). Returns 0 for NULL or an
/// invalid handle.
///
/// # Safety
/// `executor` is NULL or a live executor. Any number of threads may run one executor
/// concurrently; each queued call is polled by one of them.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn federation_executor_run(
    executor: *const federation_executor_t,
    max: usize,
) -> usize {
    catch_or(0, || {
        // SAFETY: forwarded from the caller.
        let Ok(executor) = (unsafe { handle(executor, "executor") }) else {
            return 0;
        };
        let mut polled = 0;
        while polled < max {
            let Some(task) = executor.executor.pop() else {
                break;
            };
            if task
                .state
                .compare_exchange(QUEUED, POLLING, Ordering::AcqRel, Ordering::Acquire)
                .is_ok()
            {
                task.poll();
            }
            polled += 1;
        }
        polled
    })
}

/// Frees the executor handle. Calls started on it and still in flight keep what they need, but
/// nothing polls them any more: free it only when every call started on it has completed (or
/// never, for an executor that lives as long as the process). NULL is a no-op.
///
/// # Safety
/// `executor` is NULL or a live executor, not used afterwards (nor concurrently).
#[unsafe(no_mangle)]
pub unsafe extern "C" fn federation_executor_free(executor: *mut federation_executor_t) {
    catch_or((), || {
        // SAFETY: forwarded from the caller.
        unsafe { free_handle(executor, |e| e.tag = 0) }
    });
}

/// `federation_client_call` whose call, when it has to wait, is polled by
/// `federation_executor_run` on `executor` instead of by a library worker thread: its callback
/// runs on the thread that starts it (a call that completes without waiting) or on a thread
/// running the executor. Everything else (inputs, errors, the callback's contract, the cancel
/// token) is as for `federation_client_call`.
///
/// # Safety
/// As for `federation_client_call`; `executor` is a live executor.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn federation_client_call_on(
    executor: *const federation_executor_t,
    client: *const crate::client::federation_client_t,
    service: *const std::ffi::c_char,
    method: *const std::ffi::c_char,
    path: *const std::ffi::c_char,
    headers: *const crate::call::federation_header_t,
    headers_len: usize,
    body: *const u8,
    body_len: usize,
    options: *const crate::call::federation_call_options_t,
    callback: crate::call::federation_callback_t,
    user_data: *mut c_void,
    out_cancel: *mut *mut crate::cancel::federation_cancel_t,
) -> *mut federation_error_t {
    catch(|| {
        // SAFETY (both): forwarded from the caller's guarantees.
        let executor = unsafe { handle(executor, "executor") }?;
        let (call, cancel) = unsafe {
            crate::call::prepare(
                client,
                service,
                method,
                path,
                headers,
                headers_len,
                body,
                body_len,
                options,
                callback,
                user_data,
            )
        }?;
        executor.start(call);
        // SAFETY: forwarded from the caller.
        unsafe { crate::call::give_cancel(out_cancel, cancel) };
        Ok(())
    })
}

#[cfg(test)]
#[path = "executor_tests.rs"]
mod tests;
