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
//! and wakes nobody else.

use std::future::Future;
use std::pin::Pin;
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};
use std::task::{Context, Wake, Waker};

use tokio::runtime::Handle;

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
pub fn poll_then_spawn_boxed(handle: &Handle, mut call: Pin<Box<dyn Future<Output = ()> + Send>>) {
    let _context = handle.enter();
    let deferred = Arc::new(Deferred {
        handle: handle.clone(),
        state: Mutex::new(State::Polling { woken: false }),
    });
    let waker = Waker::from(Arc::clone(&deferred));
    if call
        .as_mut()
        .poll(&mut Context::from_waker(&waker))
        .is_ready()
    {
        return;
    }
    let mut state = deferred.lock();
    if matches!(*state, State::Polling { woken: true }) {
        *state = State::Spawned;
        drop(state);
        handle.spawn(call);
    } else {
        *state = State::Parked(call);
    }
}

enum State {
    /// The first poll is running on the calling thread; `woken` if a wake-up arrived meanwhile.
    Polling { woken: bool },
    /// Waiting for its first wake-up.
    Parked(Call),
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
}

impl Wake for Deferred {
    fn wake(self: Arc<Self>) {
        self.wake_by_ref();
    }

    fn wake_by_ref(self: &Arc<Self>) {
        let mut state = self.lock();
        match std::mem::replace(&mut *state, State::Spawned) {
            State::Polling { .. } => *state = State::Polling { woken: true },
            State::Parked(call) => {
                drop(state);
                self.handle.spawn(call);
            }
            State::Spawned => {}
        }
    }
}

impl Drop for Deferred {
    fn drop(&mut self) {
        let state = self.state.get_mut().unwrap_or_else(PoisonError::into_inner);
        if let State::Parked(call) = std::mem::replace(state, State::Spawned) {
            self.handle.spawn(call);
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
}
