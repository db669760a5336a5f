//! The two-cluster sandbox: both clusters of the brief on `127.0.0.1`, ready for the SDK.
//!
//! Every end-to-end test, the demo and the benchmarks need the same world: zervigo (`zervigo-dc`)
//! and looma (`looma-dc`), each with its own Consul double that knows nothing of the other, and
//! three instances of each seed service registered with an HTTP check on `/health`. Building it
//! by hand in each test invites subtle differences (a missing check, a wrong tag) that make
//! results incomparable. [`Sandbox::start`] builds it once, waits until each double reports every
//! instance as passing, and hands back a matching client [`Config`].
//!
//! ```no_run
//! use federation_testkit::instance::Behavior;
//! use federation_testkit::sandbox::{Sandbox, SandboxOptions};
//! # async fn demo() -> std::io::Result<()> {
//! let sandbox = Sandbox::start(SandboxOptions::default()).await?;
//! let config = sandbox.config(); // give this to FederatedServiceClient::from_config
//! sandbox.instances("zervigo", "user-service")[0].set_behavior(Behavior::status(503));
//! sandbox.kill_all("zervigo", "user-service").await; // force failover to looma
//! sandbox.revive_all("zervigo", "user-service").await?;
//! sandbox.shutdown().await;
//! # Ok(()) }
//! ```

mod options;
mod ready;
mod topology;
mod yaml;

use std::collections::BTreeMap;
use std::io;
use std::time::Duration;

use federation_core::config::Config;

use crate::consul::{CheckDefinition, ConsulDouble, ConsulOptions, ServiceRegistration};
use crate::instance::{Identity, ServiceInstance, seed_from};

pub use options::SandboxOptions;
use ready::Expectation;
use topology::{AI_SERVICE, AI_V2_TAG, AI_V3_TAG, CLUSTERS};

/// One running cluster.
#[derive(Debug)]
struct ClusterRun {
    name: &'static str,
    consul: ConsulDouble,
    /// Consul service name → its instances (regular ones first).
    services: Vec<(&'static str, Vec<ServiceInstance>)>,
}

/// Both clusters running on loopback. Dropping it stops every server; [`shutdown`](Self::shutdown)
/// does so explicitly and waits for it.
#[derive(Debug)]
pub struct Sandbox {
    clusters: Vec<ClusterRun>,
    options: SandboxOptions,
    http: reqwest::Client,
}

impl Sandbox {
    /// Start both Consul doubles and every instance, register them, and wait until every check
    /// passes (at most `options.ready_timeout`; the error then names what is not passing).
    pub async fn start(options: SandboxOptions) -> io::Result<Sandbox> {
        let http = ready::http_client()?;
        let mut sandbox = Sandbox {
            clusters: Vec::with_capacity(CLUSTERS.len()),
            options,
            http,
        };
        let started = sandbox.start_all().await;
        let ready = match started {
            Ok(()) => {
                let expectations = sandbox.expectations();
                ready::wait_all(&sandbox.http, &expectations, sandbox.options.ready_timeout).await
            }
            Err(e) => Err(e),
        };
        match ready {
            Ok(()) => Ok(sandbox),
            Err(e) => {
                sandbox.shutdown().await;
                Err(e)
            }
        }
    }

    async fn start_all(&mut self) -> io::Result<()> {
        for seed in &CLUSTERS {
            let mut consul_options = ConsulOptions::new(seed.datacenter);
            consul_options.initial_index = seed.initial_index;
            consul_options.check_interval_floor = consul_options
                .check_interval_floor
                .min(self.options.check_interval);
            let consul = ConsulDouble::start(consul_options).await?;
            let mut run = ClusterRun {
                name: seed.name,
                consul,
                services: Vec::new(),
            };
            for service in seed.services {
                let instances = self.start_service(&run, service).await?;
                run.services.push((service, instances));
            }
            self.clusters.push(run);
        }
        Ok(())
    }

    async fn start_service(
        &self,
        run: &ClusterRun,
        service: &'static str,
    ) -> io::Result<Vec<ServiceInstance>> {
        let mut plan: Vec<(String, Option<&str>)> = (1..=self.options.instances_per_service)
            .map(|n| (format!("{service}-{n}"), None))
            .collect();
        if service == AI_SERVICE {
            for entry in &mut plan {
                entry.1 = Some(AI_V2_TAG);
            }
            plan.extend(
                (1..=self.options.ai_v3_instances)
                    .map(|n| (format!("{service}-v3-{n}"), Some(AI_V3_TAG))),
            );
        }
        let mut instances = Vec::with_capacity(plan.len());
        for (id, tag) in plan {
            let identity = Identity::new(run.name, service, id.clone());
            let instance = ServiceInstance::start(identity).await?;
            instance.set_seed(seed_from(&[
                &self.options.seed.to_string(),
                run.name,
                service,
                &id,
            ]));
            instance.set_recording(self.options.record_requests);
            run.consul
                .register(self.registration(run.name, service, &id, tag, &instance))
                .map_err(|e| io::Error::other(format!("registering {id} in {}: {e}", run.name)))?;
            instances.push(instance);
        }
        Ok(instances)
    }

    fn registration(
        &self,
        cluster: &str,
        service: &str,
        id: &str,
        tag: Option<&str>,
        instance: &ServiceInstance,
    ) -> ServiceRegistration {
        let meta = BTreeMap::from([
            ("cluster".to_owned(), cluster.to_owned()),
            ("instance".to_owned(), id.to_owned()),
        ]);
        ServiceRegistration {
            id: Some(id.to_owned()),
            name: service.to_owned(),
            tags: tag.map(|t| vec![t.to_owned()]).unwrap_or_default(),
            address: instance.addr().ip().to_string(),
            port: instance.port(),
            meta: Some(meta),
            check: Some(CheckDefinition {
                http: Some(format!("{}/health", instance.url())),
                interval: Some(go_duration(self.options.check_interval)),
                timeout: Some(go_duration(self.options.check_timeout)),
                ..CheckDefinition::default()
            }),
            ..ServiceRegistration::default()
        }
    }

    fn expectations(&self) -> Vec<Expectation> {
        self.clusters
            .iter()
            .flat_map(|run| {
                run.services.iter().map(|(service, instances)| Expectation {
                    cluster: run.name.to_owned(),
                    consul_url: run.consul.url(),
                    service: (*service).to_owned(),
                    expected: instances.len(),
                })
            })
            .collect()
    }

    /// The options the sandbox was started with.
    pub fn options(&self) -> &SandboxOptions {
        &self.options
    }

    /// Cluster names in declaration order (`zervigo`, `looma`).
    pub fn clusters(&self) -> Vec<&str> {
        self.clusters.iter().map(|c| c.name).collect()
    }

    /// Consul service names of `cluster` (empty for an unknown cluster).
    pub fn services(&self, cluster: &str) -> Vec<&str> {
        self.cluster(cluster)
            .map(|c| c.services.iter().map(|(s, _)| *s).collect())
            .unwrap_or_default()
    }

    /// The Consul double of `cluster`, if the cluster exists.
    pub fn try_consul(&self, cluster: &str) -> Option<&ConsulDouble> {
        self.cluster(cluster).map(|c| &c.consul)
    }

    /// The Consul double of `cluster` (`zervigo` or `looma`).
    ///
    /// # Panics
    /// If the cluster does not exist (a typo in a test); use [`try_consul`](Self::try_consul)
    /// to probe.
    pub fn consul(&self, cluster: &str) -> &ConsulDouble {
        match self.try_consul(cluster) {
            Some(consul) => consul,
            None => panic!("sandbox has no cluster {cluster:?}; clusters: zervigo, looma"),
        }
    }

    /// The instances of a Consul service in a cluster, if both exist. For `ai-service` the
    /// `model=v2` instances come first, then the `model=v3` ones.
    pub fn try_instances(&self, cluster: &str, consul_service: &str) -> Option<&[ServiceInstance]> {
        self.cluster(cluster)?
            .services
            .iter()
            .find(|(s, _)| *s == consul_service)
            .map(|(_, instances)| instances.as_slice())
    }

    /// The instances of a Consul service (its Consul name, e.g. `looma-user-api`) in a cluster.
    ///
    /// # Panics
    /// If the cluster or service does not exist; use [`try_instances`](Self::try_instances) to
    /// probe.
    pub fn instances(&self, cluster: &str, consul_service: &str) -> &[ServiceInstance] {
        match self.try_instances(cluster, consul_service) {
            Some(instances) => instances,
            None => panic!(
                "sandbox has no service {consul_service:?} in cluster {cluster:?}; services there: {:?}",
                self.services(cluster)
            ),
        }
    }

    /// Every instance of both clusters.
    pub fn all_instances(&self) -> impl Iterator<Item = &ServiceInstance> {
        self.clusters.iter().flat_map(|c| {
            c.services
                .iter()
                .flat_map(|(_, instances)| instances.iter())
        })
    }

    /// The client configuration for this sandbox: clusters `zervigo` (least-request) and
    /// `looma` (round-robin) discovered through their doubles, and the logical services
    /// `user`, `resume`, `basic`, `company`, `job`, `gateway`, `ai` and `resume-processing`.
    pub fn config(&self) -> Config {
        topology::build_config(&self.consul_urls(), self.options.consul_wait)
    }

    /// [`config`](Self::config) as YAML text (what `federation sandbox --write-config` writes).
    pub fn config_yaml(&self) -> String {
        yaml::render(&self.consul_urls(), self.options.consul_wait)
    }

    /// [`config_yaml`](Self::config_yaml) with the cached services (`ai`) sharing the Redis at
    /// `l2` (`host:port`) as their `cache.l2` tier (`federation sandbox --redis`).
    pub fn config_yaml_with_l2(&self, l2: &str) -> String {
        yaml::render_with_l2(&self.consul_urls(), self.options.consul_wait, Some(l2))
    }

    /// Kill every instance of a service in a cluster (unknown names kill nothing). Their Consul
    /// checks turn critical after the next check interval.
    pub async fn kill_all(&self, cluster: &str, consul_service: &str) {
        for instance in self
            .try_instances(cluster, consul_service)
            .unwrap_or_default()
        {
            instance.kill().await;
        }
    }

    /// Restart every instance of a service in a cluster on its old port. Their checks pass
    /// again after the next check interval; use [`wait_for_passing`](Self::wait_for_passing)
    /// to wait for it.
    pub async fn revive_all(&self, cluster: &str, consul_service: &str) -> io::Result<()> {
        for instance in self
            .try_instances(cluster, consul_service)
            .unwrap_or_default()
        {
            instance.restart().await?;
        }
        Ok(())
    }

    /// How many instances of a service the cluster's double lists as passing right now.
    pub async fn passing(&self, cluster: &str, consul_service: &str) -> io::Result<usize> {
        let consul = self
            .try_consul(cluster)
            .ok_or_else(|| unknown_cluster(cluster))?;
        ready::passing(&self.http, &consul.url(), consul_service).await
    }

    /// Wait until exactly `expected` instances of a service are passing in the cluster's
    /// double, or fail with `TimedOut` after `timeout`.
    pub async fn wait_for_passing(
        &self,
        cluster: &str,
        consul_service: &str,
        expected: usize,
        timeout: Duration,
    ) -> io::Result<()> {
        let consul = self
            .try_consul(cluster)
            .ok_or_else(|| unknown_cluster(cluster))?;
        let expectation = Expectation {
            cluster: cluster.to_owned(),
            consul_url: consul.url(),
            service: consul_service.to_owned(),
            expected,
        };
        ready::wait_all(&self.http, &[expectation], timeout).await
    }

    /// Kill every instance and stop both doubles; returns once all listeners are closed.
    pub async fn shutdown(&self) {
        for instance in self.all_instances() {
            instance.kill().await;
        }
        for run in &self.clusters {
            run.consul.shutdown().await;
        }
    }

    fn cluster(&self, name: &str) -> Option<&ClusterRun> {
        self.clusters.iter().find(|c| c.name == name)
    }

    fn consul_urls(&self) -> Vec<String> {
        self.clusters.iter().map(|c| c.consul.url()).collect()
    }
}

fn unknown_cluster(cluster: &str) -> io::Error {
    io::Error::new(
        io::ErrorKind::NotFound,
        format!("sandbox has no cluster {cluster:?}; clusters: zervigo, looma"),
    )
}

/// A duration as Consul's Go duration text, in whole milliseconds (at least 1 ms).
fn go_duration(d: Duration) -> String {
    format!("{}ms", d.as_millis().max(1))
}
