//! # federation-sync
//!
//! Cross-cluster data sync over Kafka: a change to an entity in one cluster reaches the other
//! cluster in order, takes effect once, and conflicts resolve the same way on both sides.
//!
//! Without it, two systems that each keep their own copy of users, resumes and companies drift
//! apart silently: a change lost in transit, applied twice after a redelivery, or resolved
//! differently on each side of a concurrent edit. This crate stamps every change (event id,
//! origin cluster, hybrid logical clock), keys it by entity so Kafka keeps its order, detects
//! redeliveries and conflicts from the version stored with the data, and resolves conflicts with
//! a per-type policy that gives both sides the same answer.
//!
//! Layout: [`model`] holds every decision as pure functions (property-tested for convergence);
//! the Kafka runtime moves bytes and calls them. It lives in its own crate so the core and its
//! test binaries do not link librdkafka.
#![forbid(unsafe_code)]

pub mod model;

// sync4p: the ack wire format and its borrowed view.
mod ack_compact;
mod ack_wire;
mod acks;
mod coherence;
pub mod commits;
mod error;
mod health;
pub mod kafka;
pub mod kafka_stats;
mod lanes;
mod metrics;
mod process;
mod publisher;
mod purge;
mod redis_target;
mod replay;
mod runtime;
mod status;
mod subscriber;
mod target;

pub use coherence::CoherentTarget;
pub use error::{SyncError, SyncErrorKind, TargetError};
pub use health::{OriginHealth, SyncHealth};
pub use metrics::SyncMetrics;
pub use publisher::{Change, Published};
pub use purge::{PurgeTombstones, TombstoneCutoff};
pub use redis_target::RedisTarget;
pub use replay::ReplayReport;
pub use runtime::{FederatedDataSync, SyncBuilder};
pub use status::{Ack, Overall, SyncStatus, TargetStatus};
pub use subscriber::Subscription;
pub use target::{AppliedChange, MemoryTarget, SyncTarget};
