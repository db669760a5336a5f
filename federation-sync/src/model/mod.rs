//! The data model of the sync, as pure functions: no I/O, no Kafka, no clock reads of its own.
//!
//! Convergence bugs hide in the interleavings nobody thinks to test, so everything that decides
//! an outcome lives here, where a property test can drive it through thousands of random
//! interleavings of concurrent creates, updates, deletes and redeliveries from both clusters
//! (`tests/convergence.rs`). The runtime only moves bytes and calls these functions.
//!
//! - [`hlc`]: hybrid logical clock.
//! - [`stamp`]: the sync stamp (event id, origin cluster, HLC) and its total order.
//! - [`clusters`]: the small per-cluster maps of the bookkeeping.
//! - [`envelope`]: the change event's JSON form and the poison checks.
//! - [`record`]: a record as checked, shared JSON text.
//! - [`state`]: what a target stores next to each record.
//! - [`resolve`]: duplicate detection, causal application and conflict resolution.

pub mod clusters;
pub mod envelope;
pub mod hlc;
pub mod record;
pub mod resolve;
pub mod stamp;
pub mod state;

pub use clusters::ClusterMap;
pub use envelope::{ChangeEvent, ENVELOPE_VERSION, Operation, Poison, decode, entity_key};
pub use hlc::{Hlc, HybridClock, PhysicalClock, system_clock};
pub use record::Record;
pub use resolve::{
    Conflict, ConflictCallback, Decision, Effect, Policy, Resolution, Version, Window, Winner,
    decide,
};
pub use stamp::{Stamp, new_event_id};
pub use state::EntityState;
