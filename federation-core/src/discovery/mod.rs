//! Discovery: instance sets per (cluster, Consul service), from Consul blocking queries or a
//! static list, plus self-registration.
//!
//! # Why
//!
//! A call must never fail because the registry hiccupped, and must never wait for a poll. So
//! discovery runs beside the call pipeline: one watcher per (cluster, Consul service), started
//! on first use and shared, keeps an [`InstanceSet`] current in a `tokio::sync::watch` channel
//! the pipeline reads without blocking. When Consul fails, the last known instances stay (marked
//! `stale`, with the error and the time of the last success) and are **never emptied because
//! Consul failed**.
//!
//! # How
//!
//! `GET /v1/health/service/<name>` with blocking queries: `index` from the previous answer and
//! `wait` from the cluster's [`ConsulSource`](crate::config::ConsulSource). An idle watcher
//! sends one request per `wait`; a change is published as soon as Consul answers. The index is
//! kept per (cluster, service), reset to 0 when it goes backwards or after an error, clamped to
//! ≥ 1. Errors back off exponentially with jitter; a token bucket stops busy loops. Health
//! comes from every check of an instance, node checks included (see [`Health`]). Identical
//! answers do not wake subscribers.
//!
//! # Example
//!
//! ```no_run
//! use std::time::Duration;
//! use federation_core::config::{ClusterConfig, ConsulSource, DiscoverySource};
//! use federation_core::discovery::ClusterDiscovery;
//!
//! # async fn demo() -> Result<(), federation_core::discovery::DiscoveryError> {
//! let cluster = ClusterConfig::new(
//!     "zervigo",
//!     DiscoverySource::Consul(ConsulSource::new("http://consul-zervigo:8500")),
//! );
//! let discovery = ClusterDiscovery::new(&cluster)?;
//! let set = discovery
//!     .wait_initialized("user-service", Duration::from_secs(5))
//!     .await?;
//! for instance in set.routable() {
//!     println!("{instance} {:?}", instance.health);
//! }
//! let mut watch = discovery.watch("user-service");
//! while watch.changed().await.is_ok() {
//!     let set = watch.borrow_and_update().clone();
//!     println!("{} instances, stale: {}", set.instances.len(), set.stale);
//! }
//! # Ok(())
//! # }
//! ```

mod agent;
mod cluster;
mod consul;
mod error;
mod model;
mod registration;
mod state;
mod tuning;

pub use agent::HeartbeatHandle;
pub use cluster::{ClusterDiscovery, InstanceWatch};
#[doc(hidden)]
pub use consul::parse_health_answer;
pub use error::{DiscoveryError, DiscoveryErrorKind};
pub use model::*;
pub use registration::{Registration, RegistrationCheck};
pub use state::{DiscoveryStats, ServiceStats};
pub use tuning::DiscoveryTuning;
