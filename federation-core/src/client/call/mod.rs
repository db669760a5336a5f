//! One call, from its start to its answer: `start.rs` (cache and call telemetry), `admit.rs`
//! (validation, load limits, deadline), `pipeline.rs` (the attempt loop), `attempt.rs` (one
//! attempt), `outcome.rs` (how a call ends), `cached.rs` (the cached path), `propagate.rs`
//! (trace context and deadline headers sent upstream).
//!
//! **Failure prevented.** A call's steps spread over files that call back into each other
//! cannot be followed in one read; data flows one way here: start → (cached →) pipeline →
//! attempt → outcome.

mod admit;
mod attempt;
mod cached;
mod hedge;
mod outcome;
mod pipeline;
mod progress;
mod propagate;
mod race;
mod start;

pub(crate) use admit::unknown_service;
pub use propagate::DEADLINE_HEADER;
pub(crate) use start::{call, run};
