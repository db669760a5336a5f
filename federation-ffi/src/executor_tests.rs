//! Tests of the caller-polled executor: wake-ups, notify, re-queueing, bad arguments.

use std::sync::atomic::AtomicUsize;
use std::task::Poll;

use super::*;

unsafe extern "C" fn count(user_data: *mut c_void) {
    // SAFETY: the tests pass a pointer to an AtomicUsize that outlives the executor.
    unsafe { &*user_data.cast::<AtomicUsize>() }.fetch_add(1, Ordering::SeqCst);
}

fn executor(notified: &AtomicUsize) -> Box<federation_executor_t> {
    let mut out = std::ptr::null_mut();
    let data = std::ptr::from_ref(notified).cast_mut().cast();
    // SAFETY: `out` is valid for a write; `count` accepts `data` on any thread.
    let err = unsafe { federation_executor_new(Some(count), data, &raw mut out) };
    assert!(err.is_null(), "executor created");
    // SAFETY: a live executor just created by this library.
    unsafe { Box::from_raw(out) }
}

fn run(executor: &federation_executor_t, max: usize) -> usize {
    // SAFETY: a live executor.
    unsafe { federation_executor_run(executor, max) }
}

#[test]
fn a_call_that_does_not_wait_completes_while_it_starts() {
    let notified = AtomicUsize::new(0);
    let executor = executor(&notified);
    let (tx, rx) = std::sync::mpsc::channel();
    executor.start(Box::pin(async move {
        let _ = tx.send(std::thread::current().id());
    }));
    assert_eq!(rx.try_recv().ok(), Some(std::thread::current().id()));
    assert_eq!(run(&executor, 8), 0, "nothing queued");
    assert_eq!(notified.load(Ordering::SeqCst), 0);
}

#[test]
fn a_woken_call_is_queued_notified_and_finished_by_the_runner() {
    let notified = AtomicUsize::new(0);
    let executor = executor(&notified);
    let (wake_tx, wake_rx) = tokio::sync::oneshot::channel::<u32>();
    let (done_tx, done_rx) = std::sync::mpsc::channel();
    executor.start(Box::pin(async move {
        let value = wake_rx.await.unwrap_or(0);
        let _ = done_tx.send((value, std::thread::current().id()));
    }));
    assert_eq!(run(&executor, 8), 0, "parked, not queued");
    let waker = std::thread::spawn(move || {
        let _ = wake_tx.send(7);
    });
    waker.join().expect("waker thread");
    assert_eq!(
        notified.load(Ordering::SeqCst),
        1,
        "one notify for the empty queue"
    );
    assert!(done_rx.try_recv().is_err(), "not polled until run");
    assert_eq!(run(&executor, 8), 1);
    assert_eq!(
        done_rx.try_recv().ok(),
        Some((7, std::thread::current().id()))
    );
    assert_eq!(run(&executor, 8), 0);
}

#[test]
fn a_call_woken_while_polled_is_queued_again() {
    let notified = AtomicUsize::new(0);
    let executor = executor(&notified);
    let polls = Arc::new(AtomicUsize::new(0));
    let seen = Arc::clone(&polls);
    executor.start(Box::pin(std::future::poll_fn(move |cx| {
        if seen.fetch_add(1, Ordering::SeqCst) < 3 {
            cx.waker().wake_by_ref();
            Poll::Pending
        } else {
            Poll::Ready(())
        }
    })));
    assert_eq!(polls.load(Ordering::SeqCst), 1, "first poll while starting");
    assert_eq!(run(&executor, 1), 1);
    assert_eq!(run(&executor, 8), 2, "requeued behind itself until ready");
    assert_eq!(polls.load(Ordering::SeqCst), 4);
    assert_eq!(run(&executor, 8), 0);
}

#[test]
fn bad_arguments_are_errors_not_crashes() {
    let mut out = std::ptr::null_mut();
    // SAFETY: `out` is valid for a write.
    let err = unsafe { federation_executor_new(None, std::ptr::null_mut(), &raw mut out) };
    assert!(!err.is_null() && out.is_null(), "NULL notify refused");
    // SAFETY: an error returned by this library.
    unsafe { crate::error::federation_error_free(err) };
    // SAFETY: NULL out-parameter is checked.
    let err =
        unsafe { federation_executor_new(Some(count), std::ptr::null_mut(), std::ptr::null_mut()) };
    assert!(!err.is_null(), "NULL out_executor refused");
    // SAFETY: as above.
    unsafe { crate::error::federation_error_free(err) };
    // SAFETY: NULL is accepted.
    assert_eq!(unsafe { federation_executor_run(std::ptr::null(), 8) }, 0);
}
