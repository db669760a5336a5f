//! # Consul double
//!
//! A Consul-compatible HTTP server for tests. Discovery code that was only tested against
//! mocks breaks on the details real Consul gets right: blocking queries that return early or
//! late, omitted `Port`s and `null` `Meta`s, `?passing` dropping warnings, silent ACL
//! filtering, checks that start critical, and agents that go away. This double reproduces
//! those details (the fidelity checklist of `consul-api.md` §7, items 1–10, and a `filter`
//! subset of item 12) over real loopback HTTP, runs the HTTP/TCP/TTL checks of what is
//! registered, and can be broken on demand.
//!
//! Layout: [`ConsulDouble`] (handle) → `shared` (state + wake-ups + check runners) →
//! `state` (catalog and per-service indexes), `waiters` (blocking queries), `render` (JSON),
//! `routes`/`reads`/`agent_reads`/`agent` (HTTP), `params` and `filter` (query parameters,
//! `?filter`), `registration` (decoding bodies as Consul's agent does, validation), `checks`
//! (probes, TTLs, reaper), `acl`, `faults`, `server`. Real clients (HashiCorp's Go client,
//! py-consul) are run against it in `tests/consul-compat-*`; `docs/consul-double.md` lists
//! what it covers.
//!
//! ```no_run
//! # async fn demo() -> std::io::Result<()> {
//! use federation_testkit::consul::{ConsulDouble, ConsulOptions, ServiceRegistration};
//!
//! let mut options = ConsulOptions::new("zervigo-dc");
//! options.initial_index = 1_000;
//! let consul = ConsulDouble::start(options).await?;
//! consul
//!     .register(ServiceRegistration {
//!         name: "user-api".into(),
//!         address: "127.0.0.1".into(),
//!         port: 8081,
//!         ..ServiceRegistration::default()
//!     })
//!     .expect("valid registration");
//! let url = format!("{}/v1/health/service/user-api?index=1&wait=1s", consul.url());
//! # let _ = url;
//! # Ok(()) }
//! ```

mod acl;
mod agent;
mod agent_reads;
mod checks;
mod duration;
mod error;
mod faults;
mod filter;
mod handle;
mod http;
mod options;
mod params;
mod reads;
mod registration;
mod render;
mod routes;
mod server;
mod shared;
mod state;
mod waiters;

pub use error::ConsulDoubleError;
pub use handle::ConsulDouble;
pub use options::{AclOptions, AclToken, CheckStatus, ConsulOptions, Fault};
pub use registration::{CheckDefinition, ServiceAddress, ServiceRegistration, Weights};
