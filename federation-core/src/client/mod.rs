//! The federated service client: one call API over services living in several clusters.
//!
//! **Failures prevented.** Calling services across two independently run clusters fails in many
//! small ways: a dead instance taking a share of the traffic, a whole cluster down while the
//! other is healthy, retries multiplying load during an outage, requests running past the
//! caller's deadline, routing that flaps between clusters. [`FederatedServiceClient`] runs every
//! call through one pipeline that handles all of them.
//!
//! **Algorithm.** For each call: validate the request (nothing is sent for bad input); apply the
//! service's bulkhead and rate limit; rank the clusters (explicit override, then the preferred
//! cluster while it is healthy enough, then health score, with a dwell time before failing back);
//! then loop over attempts bounded by the total deadline, `retry.max_attempts` per cluster and a
//! retry budget shared with failovers: pick an instance (P2C peak-EWMA by default, open breakers
//! skipped, never the instance that just failed when another exists), send with a per-attempt
//! timeout inside the breaker permit, classify the outcome, back off with jitter (not after a
//! fast connect failure on the way to another instance), and fail over to the next cluster when
//! the current one has no untried instance. A cluster left out by ranking (its registry had
//! not answered yet, or nothing was available) joins the failover order as soon as it can
//! serve, and a call whose ranked clusters are exhausted waits, within its deadline, for a
//! registry that has not answered yet (see `routing/late.rs`). A call made before the highest-ranked
//! cluster's registry first answered waits briefly for it (startup grace, see `routing/startup.rs`).
//! Each attempt carries the remaining deadline (`X-Federation-Deadline-Ms`) and a W3C
//! `traceparent`.
//!
//! ```no_run
//! use federation_core::client::FederatedServiceClient;
//! use federation_core::config::Config;
//!
//! # async fn demo() -> Result<(), federation_core::error::Error> {
//! let config = Config::from_file("federation.yaml")?;
//! let client = FederatedServiceClient::from_config(config)?;
//! let response = client.get("user", "/api/v1/users/42").send().await?;
//! println!("{} from {}", response.status(), response.served().cluster());
//! # Ok(())
//! # }
//! ```
mod builder;
mod call;
mod coherence;
mod front;
mod generation;
mod hedge_delay;
mod ready;
mod registry;
mod reload;
mod reload_watch;
mod report;
mod request;
mod request_builder;
mod response;
mod routing;
mod state;

pub use builder::ClientBuilder;
pub use call::DEADLINE_HEADER;
pub use coherence::WarmReport;
pub use front::FederatedServiceClient;
pub use registry::Registered;
pub use request::Request;
pub use request_builder::RequestBuilder;
pub use response::{Attempt, AttemptOutcome, CacheStatus, Response, ServedBy, SplitOutcome};
