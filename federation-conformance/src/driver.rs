//! The two seams a runner implements: the [`World`] (the testkit: instances and Consul doubles)
//! and the [`Driver`] (the SDK under test, through its public API).
//!
//! A scenario must mean the same thing in Rust, Python and Go, or "passes in all three" proves
//! nothing. So everything that interprets a scenario — target references, the generated client
//! configuration, step order, expectation arithmetic — lives once in this crate, and a language
//! only supplies these small operations. The Python and Go runners implement the same operations
//! over their bindings and follow `docs/conformance.md`.

use std::future::Future;
use std::time::Duration;

use crate::schema::{BehaviorSpec, CallSpec, ConsulFaultSpec};

/// One instance of the topology.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct InstanceRef {
    /// Cluster name.
    pub cluster: String,
    /// Consul service name.
    pub service: String,
    /// 0-based position within the service.
    pub index: usize,
    /// Registry id (what the SDK reports as the instance): `<service>-<index>`.
    pub id: String,
}

impl InstanceRef {
    /// The registry id every runner gives instance `index` of `service`.
    pub fn id_for(service: &str, index: usize) -> String {
        format!("{service}-{index}")
    }
}

/// The running topology, as the testkit of one language exposes it.
pub trait World {
    /// Every instance, clusters in declaration order.
    fn instances(&self) -> Vec<InstanceRef>;

    /// The discovery part of the SDK configuration of `cluster`: `{"consul": {...}}` or
    /// `{"static": {...}}`.
    fn cluster_source(&self, cluster: &str) -> Result<serde_json::Value, String>;

    /// Stops an instance.
    fn kill(&self, instance: &InstanceRef) -> impl Future<Output = Result<(), String>>;

    /// Restarts an instance on its old port.
    fn revive(&self, instance: &InstanceRef) -> impl Future<Output = Result<(), String>>;

    /// Replaces an instance's behaviour.
    fn set_behavior(&self, instance: &InstanceRef, spec: &BehaviorSpec) -> Result<(), String>;

    /// Sets the status the instance answers on `/health`.
    fn set_health_status(&self, instance: &InstanceRef, status: u16) -> Result<(), String>;

    /// Injects (or clears) a Consul fault.
    fn consul_fault(&self, spec: &ConsulFaultSpec) -> Result<(), String>;

    /// Waits until the double lists exactly `count` passing instances of `service`.
    fn wait_passing(
        &self,
        cluster: &str,
        service: &str,
        count: usize,
        timeout: Duration,
    ) -> impl Future<Output = Result<(), String>>;

    /// Requests (other than `/health`) the instance has received since it started.
    fn requests(&self, instance: &InstanceRef) -> u64;
}

/// What one call did, in language-neutral terms.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct CallRecord {
    /// Final HTTP status when the call returned a response.
    pub status: Option<u16>,
    /// Error kind label (`timeout`, `no_healthy_instance`, ...) when the call failed.
    pub error_kind: Option<String>,
    /// Error message when the call failed.
    pub error: Option<String>,
    /// Cluster that served the response.
    pub cluster: Option<String>,
    /// Instance id that served the response.
    pub instance: Option<String>,
    /// Every attempt: (cluster, instance id).
    pub attempts: Vec<(String, String)>,
    /// Cache status label (`hit`, `miss`, `stale`, `bypass`).
    pub cache: Option<String>,
    /// Wall time of the call.
    pub elapsed: Duration,
}

impl CallRecord {
    /// A 2xx response.
    pub fn succeeded(&self) -> bool {
        self.status.is_some_and(|s| (200..300).contains(&s))
    }
}

/// The SDK under test.
pub trait Driver {
    /// Sends one call through the SDK's public API.
    fn call(&self, spec: &CallSpec) -> impl Future<Output = CallRecord>;

    /// The client's health snapshot as JSON (the SDK's `health()` serialization).
    fn health(&self) -> serde_json::Value;

    /// Replaces the client's configuration (the SDK's `reload`) with `config`, a whole
    /// generated configuration as for building the client.
    fn reload(&self, config: &serde_json::Value) -> Result<(), String>;
}
