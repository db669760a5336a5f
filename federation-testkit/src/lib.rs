//! # federation-testkit
//!
//! Real servers on 127.0.0.1 for testing federation end to end: a Consul-compatible registry
//! double (one per datacenter, with fault injection), programmable service instances that answer
//! with their identity, a real Kafka broker for the data sync, and a sandbox that starts both
//! clusters of the brief and hands back a ready client configuration.

pub mod consul;
pub mod instance;
pub mod kafka;
pub mod redis;
pub mod sandbox;
