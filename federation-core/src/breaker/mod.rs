//! Per-instance circuit breaking (outlier ejection).
//!
//! **Failure prevented:** without a breaker every caller keeps sending a share of its traffic to
//! an instance that is dead or failing, paying a connect timeout or a 503 (and a retry) each
//! time. A breaker takes the instance out of rotation after it misbehaves and lets exactly one
//! probe test it again later, so a dead instance costs a handful of attempts, not a steady
//! fraction of all calls.
//!
//! **Algorithm:** closed → open after `consecutive_failures` failures in a row, or when the
//! failure share over a bucketed sliding `window` reaches `threshold` with at least
//! `minimum_requests` calls. Open lasts `open_for`; when it has elapsed exactly one caller gets
//! the probe (half-open, a compare-and-swap on the state word). Probe success → closed and the
//! period resets to `open_for`; probe failure → open again for twice the previous period, capped
//! at `max_open_for`. A cancelled call (permit dropped unrecorded) counts for nothing. All time
//! is `tokio::time::Instant`, so paused-clock tests drive it. Why this is not `failsafe`:
//! docs/design/resilience.md.
//!
//! **Fast recovery:** each ejection carries an [`EjectionCause`]. For an instance ejected
//! because it could not be reached, a successful background TCP connect
//! ([`Breaker::probe_connect_succeeded`]) ends the open period at once, so a restarted instance
//! returns within one probe interval instead of waiting out the doubled period; an instance that
//! accepts connections but fails calls keeps the doubling (see `recover.rs`).
//!
//! **Panic routing** (`panic.rs`): when the breakers of a service hold out (nearly) every
//! instance, calls go to held-out instances that still accept connections rather than failing
//! with `no_healthy_instance`; instances known to be unreachable stay out.
//!
//! How the engine uses it (crate-internal, so not compiled as a doctest):
//!
//! ```ignore
//! use federation_core::breaker::{Breaker, BreakerState};
//! use federation_core::config::BreakerPolicy;
//! use tokio::time::Instant;
//!
//! let breaker = Breaker::new(&BreakerPolicy { consecutive_failures: 2, ..Default::default() });
//! for _ in 0..2 {
//!     let permit = breaker.try_acquire().expect("closed breakers admit calls");
//!     permit.failure_at(Instant::now());
//! }
//! assert!(matches!(breaker.state(), BreakerState::Open { .. }));
//! assert!(breaker.try_acquire().is_none());
//! ```

mod panic;
pub(crate) mod probe;
mod recover;
mod state;
mod transition;

pub use panic::panic_engaged;
pub use recover::{EjectionCause, WeakBreaker};
pub use state::{Breaker, BreakerPermit, BreakerState};
pub use transition::Transition;

#[cfg(test)]
mod tests;
