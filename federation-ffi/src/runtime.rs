//! The one process-global tokio runtime behind every C call.
//!
//! A runtime per client (or a thread per call) multiplies OS threads with load and with the
//! number of clients; a Go program with 1000 goroutines in calls would pin 1000 threads. So one
//! multi-threaded runtime is created lazily on first use, with a fixed number of worker threads
//! (`FEDERATION_WORKER_THREADS`, 1–64; default: the CPU count clamped to 2–4) and a blocking
//! pool capped at [`MAX_BLOCKING`]; it lives until the process exits.

use std::sync::OnceLock;

use tokio::runtime::{Builder, Runtime};

use crate::error::{FEDERATION_ERROR_INTERNAL, federation_error_t};
use crate::guard::catch_or;

/// Most threads of the runtime's blocking pool.
pub(crate) const MAX_BLOCKING: usize = 2;

static RUNTIME: OnceLock<Result<(Runtime, usize), String>> = OnceLock::new();

fn worker_count() -> Result<usize, String> {
    match std::env::var("FEDERATION_WORKER_THREADS") {
        Ok(raw) => match raw.trim().parse::<usize>() {
            Ok(n) if (1..=64).contains(&n) => Ok(n),
            _ => Err(format!(
                "FEDERATION_WORKER_THREADS={raw:?} is not allowed: use a whole number from 1 to 64, \
                 or unset it for the default (the CPU count clamped to 2-4)"
            )),
        },
        Err(std::env::VarError::NotUnicode(_)) => Err(
            "FEDERATION_WORKER_THREADS is not valid UTF-8: use a whole number from 1 to 64".into(),
        ),
        Err(std::env::VarError::NotPresent) => Ok(std::thread::available_parallelism()
            .map(usize::from)
            .unwrap_or(2)
            .clamp(2, 4)),
    }
}

/// Blocks SIGPIPE on the calling thread (each runtime thread calls it when it starts).
///
/// A write to a socket the peer already closed raises SIGPIPE on Linux unless the write uses
/// `MSG_NOSIGNAL`, and tokio's socket writes do not. Rust binaries ignore SIGPIPE at start-up,
/// but a library linked into a Go program gets Go's handler, and Go terminates the process when
/// the signal arrives on a thread Go did not create ("Go programs that use cgo or SWIG" in the
/// os/signal docs). With the signal blocked on our own threads the write fails with `EPIPE`,
/// which the pipeline already treats as a connection error.
pub(crate) fn block_sigpipe_on_this_thread() {
    // SAFETY: `set` is a local, initialised by sigemptyset before use; pthread_sigmask changes
    // only the calling thread's signal mask and accepts a null pointer for the old mask.
    unsafe {
        let mut set: libc::sigset_t = std::mem::zeroed();
        libc::sigemptyset(&mut set);
        libc::sigaddset(&mut set, libc::SIGPIPE);
        libc::pthread_sigmask(libc::SIG_BLOCK, &set, std::ptr::null_mut());
    }
}

fn build() -> Result<(Runtime, usize), String> {
    let workers = worker_count()?;
    Builder::new_multi_thread()
        .worker_threads(workers)
        .max_blocking_threads(MAX_BLOCKING)
        .thread_name("federation-worker")
        .on_thread_start(block_sigpipe_on_this_thread)
        .enable_all()
        .build()
        .map(|rt| (rt, workers))
        .map_err(|e| format!("cannot start the federation runtime: {e}"))
}

/// The runtime, started on first use.
pub(crate) fn runtime() -> Result<&'static Runtime, Box<federation_error_t>> {
    match RUNTIME.get_or_init(build) {
        Ok((rt, _)) => Ok(rt),
        Err(message) => Err(federation_error_t::boxed(
            FEDERATION_ERROR_INTERNAL,
            message.clone(),
        )),
    }
}

/// The most OS threads the library's runtime uses (worker threads plus the blocking pool),
/// starting the runtime if needed; 0 if it cannot start. Callers use it to size thread budgets.
///
/// # Safety
/// Always safe to call, from any thread.
#[unsafe(no_mangle)]
pub extern "C" fn federation_runtime_threads() -> u32 {
    catch_or(0, || match RUNTIME.get_or_init(build) {
        Ok((_, workers)) => u32::try_from(workers + MAX_BLOCKING).unwrap_or(u32::MAX),
        Err(_) => 0,
    })
}
