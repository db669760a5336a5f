//! Runnable examples of the federation SDK, written the way a service team would use it.
//!
//! Two programs, each a thin `main` over a function in this library so the examples' test can
//! run exactly the same logic against the sandbox:
//!
//! - [`looma_user`] (`looma_calls_user`): a Looma (Python-side) service reading user profiles
//!   from user-service. Profiles are cached; when zervigo's user-service instances die, calls
//!   fail over to looma's `looma-user-api`, and return once zervigo is healthy again.
//! - [`zervigo_ai`] (`zervigo_calls_ai`): a Zervigo (Go-side) tool asking ai-service for
//!   inferences. It picks the model version by instance tag (`model=v2` or `model=v3`), caches
//!   inference POSTs by body, and falls back to v2 when no v3 instance is available.
//!
//! Both take `--config PATH` (a real federation) or `--sandbox` (start the embedded two-cluster
//! sandbox and also demonstrate failover by killing instances); see [`setup`].

pub mod looma_user;
pub mod report;
pub mod setup;
pub mod zervigo_ai;

/// The error type of the examples: any error, shown to the user with its message.
pub type BoxError = Box<dyn std::error::Error + Send + Sync>;
