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
mod balance;
mod breaker;
pub mod cache;
pub mod client;
pub mod config;
pub mod discovery;
mod driven;
pub mod error;
mod handoff;
mod limit;
mod lock;
mod retry;
mod rng;
mod shared_bytes;
pub mod telemetry;
mod transport;

pub use client::{
    Attempt, AttemptOutcome, CacheStatus, ClientBuilder, FederatedServiceClient, Registered,
    Request, RequestBuilder, Response, ServedBy, SplitOutcome,
};
pub use config::Config;
pub use error::{Error, ErrorKind};

/// The client under a shorter name (as in `reqwest::Client`).
pub type Client = FederatedServiceClient;

/// What the language bindings (C ABI, Python) need to start calls from foreign threads; not
/// part of the supported Rust API.
#[doc(hidden)]
pub mod bindings {
    pub use crate::driven::{DrivenError, run_here};
    pub use crate::handoff::{Abort, Pending, poll_here, poll_then_spawn, poll_then_spawn_boxed};
}
