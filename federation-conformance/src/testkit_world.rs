//! The Rust [`World`]: a scenario topology built from the testkit's Consul doubles and service
//! instances on loopback.
//!
//! Each scenario gets its own world (fresh ports, fresh doubles, fresh counters), so scenarios
//! cannot leak state into each other. Consul-discovered instances are registered with an HTTP
//! check on `/health` every 100 ms that starts `passing`, so a scenario needs no warm-up and a
//! killed instance turns critical within a few check intervals.

use std::time::Duration;

use federation_testkit::consul::{
    CheckDefinition, ConsulDouble, ConsulOptions, Fault, ServiceRegistration,
};
use federation_testkit::instance::{Behavior, Identity, Latency, Mode, ServiceInstance};
use serde_json::json;
use tokio::io::{AsyncReadExt, AsyncWriteExt};

use crate::driver::{InstanceRef, World};
use crate::schema::{BehaviorSpec, ConsulFaultSpec, DiscoveryKind, Topology};

/// Blocking-query wait written into generated Consul sources.
const CONSUL_WAIT: &str = "1s";
/// Interval of the instances' HTTP checks.
const CHECK_INTERVAL: &str = "100ms";

struct ClusterRun {
    name: String,
    discovery: DiscoveryKind,
    consul: Option<ConsulDouble>,
    instances: Vec<(InstanceRef, ServiceInstance, Vec<String>)>,
}

/// A running scenario topology. Dropping it stops every server; prefer [`shutdown`](Self::shutdown).
pub struct TestkitWorld {
    clusters: Vec<ClusterRun>,
}

impl TestkitWorld {
    /// Starts every cluster of `topology`. Consul doubles get index spaces far apart.
    pub async fn start(topology: &Topology) -> Result<Self, String> {
        let mut clusters = Vec::new();
        for (n, spec) in topology.clusters.iter().enumerate() {
            let consul = match spec.discovery {
                DiscoveryKind::Consul => {
                    let mut options = ConsulOptions::new(format!("{}-dc", spec.name));
                    options.initial_index = 1_000 + 1_000_000 * n as u64;
                    let double = ConsulDouble::start(options)
                        .await
                        .map_err(|e| format!("starting Consul double for {}: {e}", spec.name))?;
                    if let Some(ms) = spec.consul_delay_ms {
                        double.set_fault(Fault::Slow(Duration::from_millis(ms)));
                    }
                    Some(double)
                }
                DiscoveryKind::Static => None,
            };
            let mut instances = Vec::new();
            for (service, svc) in &spec.services {
                for index in 0..svc.instances() {
                    let id = InstanceRef::id_for(service, index);
                    let instance =
                        ServiceInstance::start(Identity::new(&spec.name, service, id.clone()))
                            .await
                            .map_err(|e| format!("starting instance {id}: {e}"))?;
                    if let Some(double) = &consul {
                        double
                            .register(registration(service, &id, svc.tags(), &instance))
                            .map_err(|e| format!("registering {id}: {e}"))?;
                    }
                    let r = InstanceRef {
                        cluster: spec.name.clone(),
                        service: service.clone(),
                        index,
                        id,
                    };
                    instances.push((r, instance, svc.tags().to_vec()));
                }
            }
            clusters.push(ClusterRun {
                name: spec.name.clone(),
                discovery: spec.discovery,
                consul,
                instances,
            });
        }
        Ok(Self { clusters })
    }

    /// Stops every instance and double.
    pub async fn shutdown(&self) {
        for cluster in &self.clusters {
            for (_, instance, _) in &cluster.instances {
                instance.kill().await;
            }
            if let Some(consul) = &cluster.consul {
                consul.shutdown().await;
            }
        }
    }

    /// The testkit instance behind a reference.
    pub fn instance(&self, r: &InstanceRef) -> Result<&ServiceInstance, String> {
        self.clusters
            .iter()
            .flat_map(|c| &c.instances)
            .find(|(i, _, _)| i == r)
            .map(|(_, instance, _)| instance)
            .ok_or_else(|| format!("no instance {}/{}/{}", r.cluster, r.service, r.index))
    }

    /// The Consul double of `cluster`, if it is Consul-discovered.
    pub fn consul(&self, cluster: &str) -> Option<&ConsulDouble> {
        self.cluster(cluster).ok().and_then(|c| c.consul.as_ref())
    }

    fn cluster(&self, name: &str) -> Result<&ClusterRun, String> {
        self.clusters
            .iter()
            .find(|c| c.name == name)
            .ok_or_else(|| format!("no cluster `{name}` in the topology"))
    }
}

fn registration(
    service: &str,
    id: &str,
    tags: &[String],
    instance: &ServiceInstance,
) -> ServiceRegistration {
    ServiceRegistration {
        id: Some(id.to_owned()),
        name: service.to_owned(),
        tags: tags.to_vec(),
        address: instance.addr().ip().to_string(),
        port: instance.port(),
        check: Some(CheckDefinition {
            http: Some(format!("{}/health", instance.url())),
            interval: Some(CHECK_INTERVAL.to_owned()),
            timeout: Some("1s".to_owned()),
            status: Some("passing".to_owned()),
            ..CheckDefinition::default()
        }),
        ..ServiceRegistration::default()
    }
}

/// Translates a scenario behaviour into the testkit's.
pub fn behavior(spec: &BehaviorSpec) -> Result<Behavior, String> {
    let mode = match spec.mode.as_deref().unwrap_or("normal") {
        "normal" => Mode::Normal,
        "hang" => Mode::Hang,
        "reset_after_request" => Mode::ResetAfterRequest,
        "reset_mid_body" => Mode::ResetMidBody,
        "malformed_headers" => Mode::MalformedHeaders,
        "slow_drip" => Mode::SlowDrip {
            chunk_delay: Duration::from_millis(spec.chunk_delay_ms.unwrap_or(50)),
        },
        "oversized" => Mode::Oversized {
            bytes: spec.bytes.ok_or("mode `oversized` needs `bytes`")?,
        },
        other => return Err(format!("unknown mode `{other}`")),
    };
    Ok(Behavior {
        latency: spec.latency_ms.map_or(Latency::None, |ms| {
            Latency::Fixed(Duration::from_millis(ms))
        }),
        error_rate: spec.error_rate.unwrap_or(0.0),
        error_status: spec.error_status.unwrap_or(500),
        status: spec.status,
        retry_after: spec.retry_after.clone(),
        mode,
        body_size: None,
    })
}

impl World for TestkitWorld {
    fn instances(&self) -> Vec<InstanceRef> {
        self.clusters
            .iter()
            .flat_map(|c| c.instances.iter().map(|(r, _, _)| r.clone()))
            .collect()
    }

    fn cluster_source(&self, cluster: &str) -> Result<serde_json::Value, String> {
        let run = self.cluster(cluster)?;
        match (run.discovery, &run.consul) {
            (DiscoveryKind::Consul, Some(consul)) => Ok(json!({
                "consul": {
                    "address": consul.url(),
                    "datacenter": consul.datacenter(),
                    "wait": CONSUL_WAIT,
                }
            })),
            _ => {
                let mut services = serde_json::Map::new();
                for (r, instance, tags) in &run.instances {
                    let list = services
                        .entry(r.service.clone())
                        .or_insert_with(|| json!([]));
                    if let Some(list) = list.as_array_mut() {
                        list.push(json!({
                            "id": r.id,
                            "address": "127.0.0.1",
                            "port": instance.port(),
                            "tags": tags,
                        }));
                    }
                }
                Ok(json!({ "static": services }))
            }
        }
    }

    async fn kill(&self, instance: &InstanceRef) -> Result<(), String> {
        self.instance(instance)?.kill().await;
        Ok(())
    }

    async fn revive(&self, instance: &InstanceRef) -> Result<(), String> {
        self.instance(instance)?
            .restart()
            .await
            .map_err(|e| format!("restarting {}: {e}", instance.id))
    }

    fn set_behavior(&self, instance: &InstanceRef, spec: &BehaviorSpec) -> Result<(), String> {
        self.instance(instance)?.set_behavior(behavior(spec)?);
        Ok(())
    }

    fn set_health_status(&self, instance: &InstanceRef, status: u16) -> Result<(), String> {
        self.instance(instance)?.set_health_status(status);
        Ok(())
    }

    fn consul_fault(&self, spec: &ConsulFaultSpec) -> Result<(), String> {
        let consul = self
            .consul(&spec.cluster)
            .ok_or_else(|| format!("cluster `{}` has no Consul double", spec.cluster))?;
        let fault = match spec.fault.as_str() {
            "clear" => {
                consul.clear_fault();
                return Ok(());
            }
            "down" => Fault::Down,
            "hang" => Fault::Hang,
            "no_leader" => Fault::NoLeader,
            "garbled" => Fault::Garbled,
            "index_reset" => Fault::IndexReset,
            "acl_not_found" => Fault::AclNotFound,
            "slow" => Fault::Slow(Duration::from_millis(spec.delay_ms.unwrap_or(500))),
            other => return Err(format!("unknown Consul fault `{other}`")),
        };
        consul.set_fault(fault);
        Ok(())
    }

    async fn wait_passing(
        &self,
        cluster: &str,
        service: &str,
        count: usize,
        timeout: Duration,
    ) -> Result<(), String> {
        let consul = self
            .consul(cluster)
            .ok_or_else(|| format!("cluster `{cluster}` has no Consul double"))?;
        let until = tokio::time::Instant::now() + timeout;
        let mut last = None;
        while tokio::time::Instant::now() < until {
            last = passing(consul, service).await.ok();
            if last == Some(count) {
                return Ok(());
            }
            tokio::time::sleep(Duration::from_millis(25)).await;
        }
        Err(format!(
            "{cluster}/{service}: {count} passing expected within {timeout:?}, last seen {last:?}"
        ))
    }

    fn requests(&self, instance: &InstanceRef) -> u64 {
        self.instance(instance).map_or(0, ServiceInstance::requests)
    }
}

/// Passing instances of `service` as the double lists them (one plain HTTP/1.0 request).
async fn passing(consul: &ConsulDouble, service: &str) -> std::io::Result<usize> {
    let mut stream = tokio::net::TcpStream::connect(consul.addr()).await?;
    let request =
        format!("GET /v1/health/service/{service}?passing HTTP/1.0\r\nHost: consul\r\n\r\n");
    stream.write_all(request.as_bytes()).await?;
    let mut raw = Vec::new();
    tokio::time::timeout(Duration::from_secs(2), stream.read_to_end(&mut raw))
        .await
        .map_err(|_| std::io::Error::other("Consul double did not answer"))??;
    let text = String::from_utf8_lossy(&raw);
    let body = text.split_once("\r\n\r\n").map_or("", |(_, b)| b);
    let entries: Vec<serde_json::Value> =
        serde_json::from_str(body).map_err(std::io::Error::other)?;
    Ok(entries.len())
}
