//! Where a cache fill runs when the caller's thread may move on before others stop waiting.
//!
//! The failure prevented: a fill started on a driven call's thread (see `crate::driven`) whose
//! timers and sockets belong to that thread's runtime, which stops running once the call
//! returns, leaving every other caller waiting for the fill forever.

use futures_util::FutureExt;
use futures_util::future::BoxFuture;

/// Runs `work` where other callers can still drive it after this thread moved on: on a driven
/// call's thread, on the main runtime (see `crate::driven`).
pub(crate) fn on_home<T: Send + 'static>(
    work: impl std::future::Future<Output = T> + Send + 'static,
) -> BoxFuture<'static, T> {
    if !crate::driven::active() {
        return work.boxed();
    }
    match crate::driven::spawn_handle() {
        Some(home) => {
            let task = home.spawn(work);
            async move {
                match task.await {
                    Ok(output) => output,
                    Err(e) if e.is_panic() => std::panic::resume_unwind(e.into_panic()),
                    Err(_) => panic!("the runtime shut down during a cache fill"),
                }
            }
            .boxed()
        }
        None => work.boxed(),
    }
}
