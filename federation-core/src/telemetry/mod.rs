//! Telemetry: metrics, trace propagation, spans and the health snapshot.
//!
//! The failure it prevents: a federation of two clusters that nobody can see into — traffic
//! moves to the other datacenter, breakers open, caches go stale, and neither Prometheus nor
//! Jaeger can say why. The pieces:
//!
//! - [`Metrics`]: per-client Prometheus metrics with stable names (`docs/metrics.md`), each client
//!   with its own registry so two clients in one process never collide; recording interns label
//!   values and caches handles so the hot path does not allocate.
//! - [`trace_context`]: W3C `traceparent`/`tracestate` parsing and child-span generation, so the
//!   upstream service continues the caller's trace.
//! - [`spans`]: the `federation.call` and `federation.attempt` `tracing` spans.
//! - [`health`]: the serializable snapshot behind `client.health()`.
//!
//! ```
//! use std::time::Duration;
//! use federation_core::telemetry::Metrics;
//! let metrics = Metrics::new();
//! metrics.call("user", Some("zervigo"), "success", Duration::from_millis(12));
//! let text = metrics.encode();
//! assert!(text.contains(
//!     r#"federation_requests_total{service="user",cluster="zervigo",outcome="success"} 1"#
//! ));
//! ```

mod cache_l2;
mod calls;
pub mod health;
mod labels;
mod metrics;
#[cfg(feature = "opentelemetry")]
pub(crate) mod otel;
mod record;
pub mod spans;
pub mod trace_context;

pub use cache_l2::L2Counters;
pub use health::{
    ClusterHealth, ConfigGeneration, HealthSnapshot, InstanceHealth, L2Health, ServiceHealth,
    SpillHealth, WarmHealth,
};
pub(crate) use metrics::CallHandles;
pub use metrics::{CacheCounters, Metrics};
pub use record::{BreakerStateValue, NO_CLUSTER};
