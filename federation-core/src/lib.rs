//! # federation-core
//!
//! The engine behind `FederatedServiceClient`: one client that calls logical services living in
//! several independently run clusters (each with its own Consul datacenter) as if they were one
//! system. It discovers instances in every cluster, ranks clusters per service, balances over
//! instances, breaks circuits, retries within a budget, fails over to the other cluster, caches
//! results and reports what it did.
//!
//! Pure async Rust: no Python, C or Go knowledge lives here; the bindings are thin.
#![forbid(unsafe_code)]

mod attempt;
pub mod balance;
pub mod breaker;
pub mod cache;
pub mod client;
pub mod config;
pub mod discovery;
pub mod driven;
pub mod error;
pub mod handoff;
pub mod limit;
mod lock;
pub mod retry;
mod rng;
mod shared_bytes;
pub mod telemetry;
pub(crate) mod transport;
