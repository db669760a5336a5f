//! Retries without retry storms: a shared budget, jittered backoff and `Retry-After`.
//!
//! **Failure prevented:** a fixed "retry 3 times" multiplies load by up to 3× exactly when an
//! upstream is already failing, turning a partial outage into a full one. Here every retry and
//! every cluster failover of a service spends from one [`RetryBudget`] (Finagle/tower style: a
//! share of recent calls plus a small per-second reserve over a sliding window), so extra load is
//! bounded as a share of real traffic. Waits between attempts use [`Backoff`] (exponential with
//! equal jitter), and a server's `Retry-After` is read by [`parse_retry_after`].
//!
//! How the engine uses it (crate-internal, so not compiled as a doctest):
//!
//! ```ignore
//! use federation_core::config::RetryBudgetPolicy;
//! use federation_core::retry::RetryBudget;
//! use tokio::time::Instant;
//!
//! let budget = RetryBudget::new(&RetryBudgetPolicy { percent: 20, min_per_second: 0, ..Default::default() });
//! for _ in 0..10 {
//!     budget.deposit_at(Instant::now()); // one per call
//! }
//! assert!(budget.try_withdraw() && budget.try_withdraw()); // 20 % of 10 calls
//! assert!(!budget.try_withdraw());
//! ```

mod backoff;
mod budget;
mod retry_after;
pub(crate) mod window;

pub use backoff::Backoff;
pub use budget::RetryBudget;
pub use retry_after::parse_retry_after;
