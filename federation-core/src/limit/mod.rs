//! Load protection for one service: a concurrency limit and a rate limit that fail fast.
//!
//! **Failure prevented:** a caller that queues without bound when an upstream slows down runs
//! out of memory, sockets or threads and takes the application down with it; a hot loop can
//! flood a shared upstream. [`Bulkhead`] caps calls in flight (an atomic counter, no queue) and
//! [`RateLimiter`] caps the call rate (a token bucket as a lock-free GCRA on tokio's clock).
//! Both refuse at once instead of waiting; the client turns a refusal into an `overloaded` error.
//!
//! How the engine uses it (crate-internal, so not compiled as a doctest):
//!
//! ```ignore
//! use federation_core::limit::Bulkhead;
//!
//! let bulkhead = Bulkhead::new(1);
//! let permit = bulkhead.try_acquire().expect("a free slot");
//! assert!(bulkhead.try_acquire().is_none()); // fail fast: overloaded
//! drop(permit);
//! assert_eq!(bulkhead.in_use(), 0);
//! ```

mod bulkhead;
mod rate;

pub use bulkhead::{Bulkhead, BulkheadPermit};
pub use rate::RateLimiter;
