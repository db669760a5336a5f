//! Starting a call from a thread outside the runtime (a C, Go or Python caller) with as few
//! thread hand-offs as possible.
//!
//! **Failure prevented.** Spawning a call on the runtime from a foreign thread queues it in the
//! runtime's shared inject queue and wakes a worker, only for that worker to poll the call once
//! and find it waiting for the response, which another worker (the connection's) has to produce
//! anyway: one extra cross-thread wake-up per call, tens of microseconds on a virtual machine.
//! [`poll_then_spawn`] polls the future on the calling thread instead; a future that finishes
//! there (a cache hit, a refused call) never touches the runtime, and a future that has to wait
//! is handed to the runtime only when something wakes it: the response, a timer or a
//! cancellation, which fire on a worker thread, where spawning goes to that worker's own queue
//! and wakes nobody else. A binding that wants the output of a call finished there, or to
//! cancel one that waits, uses the two halves: [`poll_here`], then [`Pending::then_spawn`].

use std::future::Future;
use std::pin::Pin;
use std::sync::{Arc, Mutex, MutexGuard, PoisonError, Weak};
use std::task::{Context, Wake, Waker};

use tokio::runtime::Handle;
use tokio::task::AbortHandle;

type Call = Pin<Box<dyn Future<Output = ()> + Send>>;

/// Polls `future` once on the calling thread (inside `handle`'s context) and gives it to the
/// runtime the first time it is woken. Nothing is lost if the wake-up arrives while the first
/// poll is still running (the future is spawned right after it), or if every waker is dropped
/// without waking (the future is spawned then, so it is polled again and registers the
/// runtime's wakers).
pub fn poll_then_spawn<F>(handle: &Handle, future: F)
where
    F: Future<Output = ()> + Send + 'static,
{
    poll_then_spawn_boxed(handle, Box::pin(future));
}

/// [`poll_then_spawn`] for a future already boxed (boxing a large future where it is made
/// copies it once, instead of once per function it is passed through).
pub fn poll_then_spawn_boxed(handle: &Handle, call: Call) {
    if let Err(pending) = poll_here(handle, call) {
        pending.deferred.park(pending.future, None);
    }
}

/// The first half of [`poll_then_spawn`] for a caller that wants the output: polls `future`
/// once on the calling thread (inside `handle`'s context) and returns its output if that
/// finished it (a cache hit never leaves the calling thread), or the still pending call, to be
/// handed over with [`Pending::then_spawn`]. Wake-ups arriving in between are kept.
pub fn poll_here<F>(handle: &Handle, mut future: Pin<Box<F>>) -> Result<F::Output, Pending<F>>
where
    F: Future + Send + ?Sized + 'static,
{
    let _context = handle.enter();
    let deferred = Arc::new(Deferred {
        handle: handle.clone(),
        state: Mutex::new(State::Polling { woken: false }),
    });
    let waker = Waker::from(Arc::clone(&deferred));
    match future.as_mut().poll(&mut Context::from_waker(&waker)) {
        std::task::Poll::Ready(output) => Ok(output),
        std::task::Poll::Pending => Err(Pending { deferred, future }),
    }
}

/// A call polled once by [`poll_here`] that has to wait. Dropping it drops the call.
pub struct Pending<F: ?Sized> {
    deferred: Arc<Deferred>,
    future: Pin<Box<F>>,
}

impl<F> Pending<F>
where
    F: Future + Send + ?Sized + 'static,
{
    /// Hands the call to the runtime at its first wake-up (at once if one already arrived);
    /// `done` receives its output on the runtime thread that finishes it. The returned
    /// [`Abort`] cancels it wherever it is by then.
    pub fn then_spawn<D>(self, done: D) -> Abort
    where
        D: FnOnce(F::Output) + Send + 'static,
    {
        let future = self.future;
        let cancel = Arc::new(Cancel::default());
        let abort = Abort {
            deferred: Arc::downgrade(&self.deferred),
            cancel: Arc::clone(&cancel),
        };
        let call: Call = Box::pin(async move { done(future.await) });
        self.deferred.park(call, Some(cancel));
        abort
    }
}

/// Cancels a call handed over by [`Pending::then_spawn`]: a call still waiting for its first
/// wake-up is dropped on the runtime without being polled again, a spawned one is aborted
/// like a tokio task; a finished call is left alone. Dropping an `Abort` cancels nothing.
pub struct Abort {
    /// Weak, so that an `Abort` kept alive does not keep every waker's target alive (the
    /// fallback that spawns a call whose wakers were all dropped must still fire).
    deferred: Weak<Deferred>,
    cancel: Arc<Cancel>,
}

impl Abort {
    /// Cancels the call (idempotent).
    pub fn abort(&self) {
        if self.cancel.request() {
            return;
        }
        let Some(deferred) = self.deferred.upgrade() else {
            // Already spawned by the drop fallback, which aborts it when it registers.
            return;
        };
        let mut state = deferred.lock();
        if matches!(*state, State::Parked(..))
            && let State::Parked(call, cancel) = std::mem::replace(&mut *state, State::Spawned)
        {
            drop(state);
            launch(&deferred.handle, call, cancel);
        }
    }
}

/// Where the abort of a call and the spawn of its task meet, whichever comes first.
#[derive(Default)]
struct Cancel(Mutex<CancelState>);

#[derive(Default)]
struct CancelState {
    requested: bool,
    task: Option<AbortHandle>,
}

impl Cancel {
    /// Records the request; true if the task was already spawned (and is now aborted).
    fn request(&self) -> bool {
        let mut state = crate::lock::lock(&self.0);
        state.requested = true;
        match &state.task {
            Some(task) => {
                task.abort();
                true
            }
            None => false,
        }
    }

    /// Records the spawned task, aborting it if cancellation was already requested.
    fn spawned(&self, task: AbortHandle) {
        let mut state = crate::lock::lock(&self.0);
        if state.requested {
            task.abort();
        }
        state.task = Some(task);
    }
}

/// Spawns `call` on `handle`, telling `cancel` about the task.
fn launch(handle: &Handle, call: Call, cancel: Option<Arc<Cancel>>) {
    let task = handle.spawn(call);
    if let Some(cancel) = cancel {
        cancel.spawned(task.abort_handle());
    }
}

enum State {
    /// The first poll is running on the calling thread; `woken` if a wake-up arrived meanwhile.
    Polling { woken: bool },
    /// Waiting for its first wake-up.
    Parked(Call, Option<Arc<Cancel>>),
    /// Handed to the runtime (its task registers its own wakers from now on).
    Spawned,
}

struct Deferred {
    handle: Handle,
    state: Mutex<State>,
}

impl Deferred {
    fn lock(&self) -> MutexGuard<'_, State> {
        crate::lock::lock(&self.state)
    }

    /// After a pending first poll: spawns `call` if a wake-up already arrived, parks it
    /// otherwise.
    fn park(&self, call: Call, cancel: Option<Arc<Cancel>>) {
        let mut state = self.lock();
        if matches!(*state, State::Polling { woken: true }) {
            *state = State::Spawned;
            drop(state);
            launch(&self.handle, call, cancel);
        } else {
            *state = State::Parked(call, cancel);
        }
    }
}

impl Wake for Deferred {
    fn wake(self: Arc<Self>) {
        self.wake_by_ref();
    }

    fn wake_by_ref(self: &Arc<Self>) {
        let mut state = self.lock();
        match std::mem::replace(&mut *state, State::Spawned) {
            State::Polling { .. } => *state = State::Polling { woken: true },
            State::Parked(call, cancel) => {
                drop(state);
                launch(&self.handle, call, cancel);
            }
            State::Spawned => {}
        }
    }
}

impl Drop for Deferred {
    fn drop(&mut self) {
        let state = self.state.get_mut().unwrap_or_else(PoisonError::into_inner);
        if let State::Parked(call, cancel) = std::mem::replace(state, State::Spawned) {
            launch(&self.handle, call, cancel);
        }
    }
}

#[cfg(test)]
mod tests {
    use std::sync::atomic::{AtomicUsize, Ordering};
    use std::time::Duration;

    use super::*;

    fn runtime() -> tokio::runtime::Runtime {
        tokio::runtime::Builder::new_multi_thread()
            .worker_threads(2)
            .enable_all()
            .build()
            .expect("runtime")
    }

    #[test]
    fn a_ready_future_completes_on_the_calling_thread() {
        let rt = runtime();
        let caller = std::thread::current().id();
        let (tx, rx) = std::sync::mpsc::channel();
        poll_then_spawn(rt.handle(), async move {
            let _ = tx.send(std::thread::current().id());
        });
        assert_eq!(rx.try_recv().ok(), Some(caller));
    }

    #[test]
    fn a_waiting_future_finishes_on_the_runtime_after_its_wake_up() {
        let rt = runtime();
        let (tx, rx) = std::sync::mpsc::channel();
        let (wake_tx, wake_rx) = tokio::sync::oneshot::channel::<u32>();
        poll_then_spawn(rt.handle(), async move {
            let value = wake_rx.await.unwrap_or(0);
            let _ = tx.send(value);
        });
        assert!(rx.try_recv().is_err(), "still waiting");
        let _ = wake_tx.send(7);
        assert_eq!(rx.recv_timeout(Duration::from_secs(5)).ok(), Some(7));
    }

    #[test]
    fn timers_and_many_concurrent_starts_all_complete() {
        let rt = runtime();
        let done = Arc::new(AtomicUsize::new(0));
        for i in 0..200u64 {
            let done = Arc::clone(&done);
            poll_then_spawn(rt.handle(), async move {
                tokio::time::sleep(Duration::from_millis(i % 7)).await;
                tokio::task::yield_now().await;
                done.fetch_add(1, Ordering::SeqCst);
            });
        }
        let deadline = std::time::Instant::now() + Duration::from_secs(10);
        while done.load(Ordering::SeqCst) < 200 && std::time::Instant::now() < deadline {
            std::thread::sleep(Duration::from_millis(5));
        }
        assert_eq!(done.load(Ordering::SeqCst), 200);
    }

    #[test]
    fn a_future_whose_wakers_are_all_dropped_still_runs() {
        let rt = runtime();
        let (tx, rx) = std::sync::mpsc::channel();
        let mut first = true;
        // Pending once without keeping the waker anywhere: only the drop fallback revives it.
        let future = std::future::poll_fn(move |_cx| {
            if std::mem::take(&mut first) {
                std::task::Poll::Pending
            } else {
                std::task::Poll::Ready(())
            }
        });
        poll_then_spawn(rt.handle(), async move {
            future.await;
            let _ = tx.send(());
        });
        assert!(rx.recv_timeout(Duration::from_secs(5)).is_ok());
    }

    /// A call that waits for `wake_rx`, reporting its drop on `dropped`.
    fn waiting_call(
        wake_rx: tokio::sync::oneshot::Receiver<u32>,
        dropped: std::sync::mpsc::Sender<()>,
    ) -> Pin<Box<impl Future<Output = u32> + Send>> {
        struct OnDrop(std::sync::mpsc::Sender<()>);
        impl Drop for OnDrop {
            fn drop(&mut self) {
                let _ = self.0.send(());
            }
        }
        Box::pin(async move {
            let _guard = OnDrop(dropped);
            wake_rx.await.unwrap_or(0)
        })
    }

    #[test]
    fn poll_here_returns_a_ready_output_on_the_calling_thread() {
        let rt = runtime();
        let caller = std::thread::current().id();
        let output = poll_here(rt.handle(), Box::pin(async { std::thread::current().id() }));
        assert_eq!(output.ok(), Some(caller));
    }

    #[test]
    fn a_pending_call_hands_its_output_to_done_after_its_wake_up() {
        let rt = runtime();
        let (wake_tx, wake_rx) = tokio::sync::oneshot::channel();
        let (dropped_tx, _dropped) = std::sync::mpsc::channel();
        let Err(pending) = poll_here(rt.handle(), waiting_call(wake_rx, dropped_tx)) else {
            panic!("the call waits for wake_tx");
        };
        let (tx, rx) = std::sync::mpsc::channel();
        let _abort = pending.then_spawn(move |value| {
            let _ = tx.send(value);
        });
        assert!(rx.try_recv().is_err(), "still waiting");
        let _ = wake_tx.send(9);
        assert_eq!(rx.recv_timeout(Duration::from_secs(5)).ok(), Some(9));
    }

    #[test]
    fn abort_drops_a_parked_call_without_finishing_it() {
        let rt = runtime();
        let (wake_tx, wake_rx) = tokio::sync::oneshot::channel();
        let (dropped_tx, dropped) = std::sync::mpsc::channel();
        let Err(pending) = poll_here(rt.handle(), waiting_call(wake_rx, dropped_tx)) else {
            panic!("the call waits for wake_tx");
        };
        let (tx, rx) = std::sync::mpsc::channel();
        let abort = pending.then_spawn(move |value| {
            let _ = tx.send(value);
        });
        abort.abort();
        assert!(
            dropped.recv_timeout(Duration::from_secs(5)).is_ok(),
            "call dropped"
        );
        assert!(wake_tx.is_closed(), "the call's receiver is gone");
        assert!(rx.try_recv().is_err(), "done never ran");
    }

    #[test]
    fn abort_cancels_a_call_already_running_on_the_runtime() {
        let rt = runtime();
        let (first_tx, first_rx) = tokio::sync::oneshot::channel::<()>();
        let (started_tx, started) = std::sync::mpsc::channel();
        let (second_tx, second_rx) = tokio::sync::oneshot::channel::<u32>();
        let (dropped_tx, dropped) = std::sync::mpsc::channel();
        let call = Box::pin(async move {
            let _ = first_rx.await;
            let _ = started_tx.send(());
            waiting_call(second_rx, dropped_tx).await
        });
        let Err(pending) = poll_here(rt.handle(), call) else {
            panic!("the call waits for first_tx");
        };
        let (tx, rx) = std::sync::mpsc::channel();
        let abort = pending.then_spawn(move |value| {
            let _ = tx.send(value);
        });
        let _ = first_tx.send(());
        assert!(
            started.recv_timeout(Duration::from_secs(5)).is_ok(),
            "spawned"
        );
        abort.abort();
        assert!(
            dropped.recv_timeout(Duration::from_secs(5)).is_ok(),
            "call dropped"
        );
        assert!(second_tx.is_closed());
        assert!(rx.try_recv().is_err(), "done never ran");
    }
}
