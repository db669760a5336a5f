//! Instance load balancing within one cluster.
//!
//! **Failure prevented:** uniform or plain round-robin spreading keeps sending a fair share of
//! calls to an instance that is slow (GC pause, noisy neighbour, overloaded), so tail latency
//! follows the worst instance. These balancers read per-instance load signals and steer away.
//!
//! **Algorithms** (chosen by [`LoadBalancing`](crate::config::LoadBalancing)):
//! - `peak_ewma` (default): power of two choices (P2C) — draw two instances by weight, keep the
//!   lower `ewma_rtt × (in_flight + 1) / weight`. The latency is a peak-sensitive EWMA
//!   (Finagle/Linkerd): slowdowns count at once, recoveries over ~10 s.
//! - `least_request`: P2C over `(in_flight + 1) / weight`.
//! - `round_robin`: smooth weighted round robin (exact proportions, interleaved).
//!
//! Picks allocate nothing and take no lock except round robin's short one; the random source is
//! a seedable atomic counter. The caller filters out unavailable instances first.
//!
//! How the engine uses it (crate-internal, so not compiled as a doctest):
//!
//! ```ignore
//! use std::sync::Arc;
//! use federation_core::balance::{Balancer, Candidate, InstanceStats};
//! use federation_core::config::LoadBalancing;
//! use tokio::time::Instant;
//!
//! let stats: Vec<Arc<InstanceStats>> = (0..3).map(|_| Arc::default()).collect();
//! let balancer = Balancer::new(LoadBalancing::PeakEwma, Some(42));
//! let candidates: Vec<Candidate<'_>> =
//!     stats.iter().map(|s| Candidate { weight: 1, stats: s }).collect();
//! let chosen = balancer.pick_at(&candidates, Instant::now()).expect("three candidates");
//! let in_flight = stats[chosen].start(); // count the request while it runs
//! // ... send it, then:
//! in_flight.stats().observe_at(std::time::Duration::from_millis(12), true, Instant::now());
//! ```

mod balancer;
mod p2c;
mod round_robin;
mod stats;

pub use balancer::Balancer;
pub use stats::{Candidate, InstanceStats};

#[cfg(test)]
mod tests;
