//! Programmable service instances: real HTTP/1.1 servers on `127.0.0.1`.
//!
//! A resilience feature is only proven against failures that look like production ones: a
//! process that dies under a pooled keep-alive connection, a server that reads a POST and then
//! resets, a slow tail, a 503 with `Retry-After`. A [`ServiceInstance`] produces each of these on
//! demand while answering normal requests with its identity as JSON, so a test can tell which
//! cluster and instance served a call.
//!
//! Built on hyper's HTTP/1.1 server with keep-alive; the default behaviour costs no more than a
//! plain hyper server (benchmarks measure the SDK against it). Faults that hyper cannot express
//! (TCP RST, malformed heads) go through a spare descriptor of each connection's socket.
//!
//! ```no_run
//! use federation_testkit::instance::{Behavior, Identity, ServiceInstance};
//! # async fn demo() -> std::io::Result<()> {
//! let instance = ServiceInstance::start(Identity::new("zervigo", "user-service", "u1")).await?;
//! instance.set_behavior(Behavior::status(503));
//! instance.kill().await;          // clients now see refused / reset connections
//! instance.restart().await?;      // same port again
//! # Ok(()) }
//! ```

mod behavior;
mod body;
mod connection;
mod handler;
mod sample;
mod server;
mod stats;

pub use behavior::{Behavior, Latency, Mode};
pub use handler::{DEADLINE_HEADER, TRACEPARENT_HEADER};
pub(crate) use sample::seed_from;
pub use server::{Identity, ServiceInstance};
pub use stats::{MAX_PATHS, RECORD_CAPACITY, RecordedRequest};
