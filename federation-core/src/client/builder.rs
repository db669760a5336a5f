//! Building a client: configuration checks, per-cluster transports, discovery watches and the
//! routing tables of every (service, cluster).
//!
//! Everything that can be wrong with a configuration (unknown clusters, unreadable certificates,
//! a missing token variable) fails here, once, with a [`crate::error::ErrorKind::Config`] error,
//! instead of on the first call in production.

use std::sync::Arc;
use std::time::Duration;

use http::HeaderMap;

use super::front::FederatedServiceClient;
use super::generation::{Settings, Shared};
use super::routing::{ClusterRoute, Failback, RouteSpec, Spill, SplitRoute};
use super::state::{ClusterRuntime, Inner, ServiceRoute, Services};
use crate::config::{Config, ServiceConfig};
use crate::discovery::ClusterDiscovery;
use crate::error::Error;
use crate::limit::{Bulkhead, RateLimiter};
use crate::retry::{Backoff, RetryBudget};
use crate::transport::{PoolSettings, Transport};

/// Builds a [`FederatedServiceClient`]. Every setter documents its default.
#[must_use = "a ClientBuilder does nothing until `build` is called"]
#[derive(Debug, Default)]
pub struct ClientBuilder {
    config: Option<Config>,
    seed: Option<u64>,
    pool: PoolSettings,
    startup_grace: Option<Duration>,
    lazy_watches: Option<bool>,
    config_file: Option<(std::path::PathBuf, Duration)>,
}

/// Default of [`ClientBuilder::discovery_startup_grace`].
const DEFAULT_STARTUP_GRACE: Duration = Duration::from_secs(1);

impl FederatedServiceClient {
    /// A client for `config` with default settings (see [`ClientBuilder`]).
    ///
    /// # Errors
    /// [`crate::error::ErrorKind::Config`] when the configuration is invalid or a certificate or
    /// environment variable it names cannot be read.
    pub fn from_config(config: Config) -> Result<Self, Error> {
        Self::builder().config(config).build()
    }

    /// A builder for a client with non-default settings.
    pub fn builder() -> ClientBuilder {
        ClientBuilder::new()
    }
}

impl ClientBuilder {
    /// A builder with every setting at its default and no configuration yet.
    pub fn new() -> Self {
        Self::default()
    }

    /// The federation configuration (clusters, services, policies). Required.
    pub fn config(mut self, config: Config) -> Self {
        self.config = Some(config);
        self
    }

    /// Seed for the balancers' and jitter's random draws, for reproducible tests.
    /// Default: seeded from the operating system.
    pub fn seed(mut self, seed: u64) -> Self {
        self.seed = Some(seed);
        self
    }

    /// Idle connections kept per upstream instance. Default: 1024 (as many as a caller with
    /// 1000 calls in flight to one instance needs: with fewer, connections close and reopen
    /// under load).
    pub fn pool_max_idle_per_host(mut self, max: usize) -> Self {
        self.pool.max_idle_per_host = max;
        self
    }

    /// How long an idle pooled connection is kept. Default: 90 s.
    pub fn pool_idle_timeout(mut self, timeout: Duration) -> Self {
        self.pool.idle_timeout = timeout;
        self
    }

    /// TCP (and TLS) connect timeout of one attempt; the per-attempt timeout still applies.
    /// Default: 1 s.
    pub fn connect_timeout(mut self, timeout: Duration) -> Self {
        self.pool.connect_timeout = timeout;
        self
    }

    /// Disables Nagle's algorithm on upstream connections. Default: true.
    pub fn tcp_nodelay(mut self, enabled: bool) -> Self {
        self.pool.tcp_nodelay = enabled;
        self
    }

    /// How long after a service's discovery watches start (at `build`, or with
    /// [`lazy_discovery_watches`](Self::lazy_discovery_watches) on its first call or in
    /// `wait_ready`) a call waits for the first discovery answer of the cluster it would rank
    /// highest (the override, else the preferred cluster, else any) instead of
    /// routing elsewhere or failing with a `DiscoveryPending` reason; each call waits at most
    /// until its own deadline. Zero disables the wait. Default: 1 s.
    pub fn discovery_startup_grace(mut self, grace: Duration) -> Self {
        self.startup_grace = Some(grace);
        self
    }

    /// Starts a service's discovery watches on its first call (or in `wait_ready`) instead of
    /// when the client is built, so a client configured with a thousand services that calls
    /// ten of them holds ten services' long polls, not a thousand (issue 23, docs/ARCHITECTURE.md).
    /// The price: a service's first call always waits for its registry (within the startup
    /// grace, counted from that call), a service first called while Consul is down has no
    /// last-known instances, and `health()` shows services never called as pending.
    /// Default: the configuration's `discovery.lazy_watches` (itself `false`: every configured
    /// service is watched from `build`); this setter overrides it.
    pub fn lazy_discovery_watches(mut self, lazy: bool) -> Self {
        self.lazy_watches = Some(lazy);
        self
    }

    /// Watches the configuration file `path`: every `every` (at least 100 ms) its content is
    /// read and, when it changed, parsed and applied with
    /// [`FederatedServiceClient::reload`]. A file that cannot be read, parsed or validated is
    /// rejected (logged, and shown in `health()`'s `config.last_rejected`); the running
    /// configuration stays. The watch ends when the last clone of the client is dropped.
    /// Default: no watch.
    pub fn watch_config_file(
        mut self,
        path: impl Into<std::path::PathBuf>,
        every: Duration,
    ) -> Self {
        self.config_file = Some((path.into(), every));
        self
    }

    /// Validates the configuration, builds the transports and starts discovery.
    ///
    /// The discovery watch of every configured (cluster, service) starts here, so the first
    /// answers are usually in before the first call. Call it inside a tokio runtime when any
    /// cluster uses Consul (outside one, those clusters report a discovery error and have no
    /// instances).
    ///
    /// # Errors
    /// [`crate::error::ErrorKind::Config`] naming the field for every invalid setting, unreadable
    /// certificate, or missing environment variable.
    pub fn build(self) -> Result<FederatedServiceClient, Error> {
        let config = self
            .config
            .ok_or_else(|| Error::config("no configuration given to the client builder"))?;
        let settings = Settings {
            seed: self.seed,
            pool: self.pool,
            startup_grace: self.startup_grace.unwrap_or(DEFAULT_STARTUP_GRACE),
            // The builder's setting, else the configuration's `discovery.lazy_watches`; read
            // once here (a reload keeps it).
            lazy_watches: self.lazy_watches.unwrap_or(config.discovery.lazy_watches),
        };
        let metrics = crate::telemetry::Metrics::new();
        let first = build_generation(config, &settings, &metrics, None, 1, "build")?;
        let client = FederatedServiceClient {
            shared: Arc::new(Shared::new(first, metrics, settings)),
        };
        let inner = client.inner();
        if !client.shared.settings.lazy_watches {
            // Eager (default): every service is watched, and its grace counts, from build.
            for svc in inner.services.values() {
                svc.watch(&inner.clusters, client.shared.settings.startup_grace);
            }
        }
        // Issue 20: `cache.warm` lists fetched in the background.
        super::coherence::start_warm(&client);
        if let Some((path, every)) = self.config_file {
            super::reload_watch::start(&client, path, every);
        }
        Ok(client)
    }
}

/// Validates `config` and builds generation `number` from it, sharing with `previous` every
/// unchanged cluster and service and carrying the instance state of changed ones (`reload.rs`).
pub(crate) fn build_generation(
    config: Config,
    settings: &Settings,
    metrics: &crate::telemetry::Metrics,
    previous: Option<&Inner>,
    number: u64,
    source: &str,
) -> Result<Inner, Error> {
    config.validate()?;
    let mut clusters = Vec::with_capacity(config.clusters.len());
    for cluster in &config.clusters {
        let unchanged = previous.and_then(|p| {
            let index = p.cluster_names.iter().position(|n| *n == cluster.name)?;
            (p.config.cluster(&cluster.name) == Some(cluster))
                .then(|| Arc::clone(&p.clusters[index]))
        });
        match unchanged {
            Some(runtime) => clusters.push(runtime),
            None => clusters.push(Arc::new(cluster_runtime(cluster, &settings.pool)?)),
        }
    }
    let cluster_names: Vec<String> = config.clusters.iter().map(|c| c.name.clone()).collect();
    // A service can be shared as is only while every cluster index it holds means the same.
    let same_clusters = previous.is_some_and(|p| {
        p.clusters.len() == clusters.len()
            && p.clusters
                .iter()
                .zip(&clusters)
                .all(|(a, b)| Arc::ptr_eq(a, b))
    });
    let mut services = Services::with_capacity(config.services.len());
    for (n, service) in config.services.iter().enumerate() {
        let old = previous.and_then(|p| Some((p, p.services.get(&service.name)?)));
        if same_clusters
            && let Some((p, old)) = old
            && p.config.service(&service.name) == Some(service)
            && p.config.policy_for(service) == config.policy_for(service)
        {
            services.insert(service.name.clone(), Arc::clone(old));
            continue;
        }
        let seed = settings.seed.map(|s| s ^ n as u64);
        let old = old.map(|(_, route)| &**route);
        let route = service_route(&config, service, &clusters, seed, metrics, old)?;
        services.insert(service.name.clone(), Arc::new(route));
    }
    let shortest_attempt = services
        .values()
        .map(|s| s.policy.timeout.attempt)
        .min()
        .unwrap_or(Duration::from_secs(1));
    let changes =
        previous.map_or_else(Vec::new, |p| super::generation::changes(&p.config, &config));
    Ok(Inner {
        timer_anchor: crate::transport::timer_anchor::TimerAnchor::new(shortest_attempt),
        startup_grace: settings.startup_grace,
        services,
        clusters,
        cluster_names,
        random: crate::rng::SplitMix::new(settings.seed.map(|s| s.wrapping_add(number))),
        metrics: metrics.clone(),
        config: Arc::new(config),
        generation: super::generation::describe(number, source, changes),
    })
}

/// One cluster's transport, default headers and discovery.
fn cluster_runtime(
    cluster: &crate::config::ClusterConfig,
    pool: &PoolSettings,
) -> Result<ClusterRuntime, Error> {
    let transport = Transport::new(cluster, pool)?;
    let mut headers = HeaderMap::new();
    for (name, value) in cluster.resolve_headers()? {
        headers.append(name, value);
    }
    let discovery = ClusterDiscovery::new(cluster)
        .map_err(|e| Error::config(format!("clusters.{}: {e}", cluster.name)))?;
    Ok(ClusterRuntime {
        name: Arc::from(cluster.name.as_str()),
        transport,
        headers,
        discovery,
    })
}

/// The route of `service`; `old` is its route in the previous generation, whose instance state
/// (breakers, statistics, connections) each (cluster, Consul service) route still served keeps,
/// and whose cache is kept while the cache policy is unchanged.
fn service_route(
    config: &Config,
    service: &ServiceConfig,
    clusters: &[Arc<ClusterRuntime>],
    seed: Option<u64>,
    metrics: &crate::telemetry::Metrics,
    old: Option<&ServiceRoute>,
) -> Result<ServiceRoute, Error> {
    let policy = config.policy_for(service).clone();
    // (cluster name, consul name, target tags, path prefix) for every cluster serving it.
    let targets: Vec<(&str, &str, &[String], &str)> = if service.targets.is_empty() {
        config
            .clusters
            .iter()
            .map(|c| (c.name.as_str(), service.name.as_str(), &[][..], ""))
            .collect()
    } else {
        service
            .targets
            .iter()
            .map(|t| {
                (
                    t.cluster.as_str(),
                    t.consul_name.as_str(),
                    t.tags.as_slice(),
                    t.path_prefix.as_deref().unwrap_or(""),
                )
            })
            .collect()
    };
    let mut routes = Vec::with_capacity(targets.len());
    for (i, (cluster, consul_name, tags, prefix)) in targets.into_iter().enumerate() {
        let Some(cluster_index) = clusters.iter().position(|c| &*c.name == cluster) else {
            return Err(Error::config(format!(
                "services.{}: target cluster `{cluster}` is not configured",
                service.name
            )));
        };
        let runtime = &clusters[cluster_index];
        let Some(cluster_config) = config.cluster(cluster) else {
            return Err(Error::config(format!("clusters.{cluster}: missing")));
        };
        let spec = RouteSpec {
            cluster: Arc::clone(&runtime.name),
            cluster_index,
            consul_name: consul_name.to_owned(),
            path_prefix: prefix.to_owned(),
            scheme: runtime.transport.scheme,
            target_tags: tags.to_vec(),
            service_tags: service.tags.clone(),
            breaker: policy.breaker.clone(),
            load_balancing: policy
                .load_balancing
                .unwrap_or(cluster_config.load_balancing),
            seed: seed.map(|s| s.wrapping_add(i as u64)),
            telemetry: Some((metrics.clone(), Arc::from(service.name.as_str()))),
        };
        let carried = old
            .and_then(|o| {
                o.routes.iter().find(|r| {
                    *r.cluster == *cluster && r.consul_name.eq_ignore_ascii_case(consul_name)
                })
            })
            .map(ClusterRoute::endpoint_states)
            .unwrap_or_default();
        routes.push(ClusterRoute::with_states(
            spec,
            // Started on the service's first call (`ServiceRoute::watch`).
            runtime.discovery.subscribe(consul_name),
            carried,
        ));
    }
    let preferred =
        match &service.prefer {
            Some(name) => Some(routes.iter().position(|r| &*r.cluster == name).ok_or_else(
                || {
                    Error::config(format!(
                        "services.{}.prefer: cluster `{name}` does not serve this service",
                        service.name
                    ))
                },
            )?),
            None => None,
        };
    let cache = cache(service, metrics, &policy, old)?;
    let mut tags = service.tags.clone();
    tags.sort_unstable();
    tags.dedup();
    Ok(ServiceRoute {
        name: Arc::from(service.name.as_str()),
        tags,
        budget: RetryBudget::new(&policy.retry.budget),
        backoff: Backoff::new(&policy.retry.backoff),
        bulkhead: policy.limits.max_concurrent.map(Bulkhead::new),
        rate: policy.limits.rate_limit.as_ref().map(RateLimiter::new),
        hedge: policy
            .hedge
            .as_ref()
            .map(super::hedge_delay::HedgeTimer::new),
        failback: Failback::default(),
        split: service
            .split
            .as_ref()
            .map(|split| SplitRoute::new(split, &service.tags, &routes)),
        spill: policy
            .spill
            .clone()
            .filter(|_| preferred.is_some())
            .map(|spill| Spill::new(spill, routes.len())),
        routes,
        preferred,
        policy,
        cache,
        cached_success: std::sync::OnceLock::new(),
        watching: std::sync::OnceLock::new(),
    })
}

/// The result cache of `service` when its policy enables one (issue 4; issue 20: with its
/// shared Redis tier when `cache.l2` is set): the previous generation's while the cache policy
/// is unchanged, so a reload keeps the cached answers.
fn cache(
    service: &ServiceConfig,
    metrics: &crate::telemetry::Metrics,
    policy: &crate::config::Policy,
    old: Option<&ServiceRoute>,
) -> Result<Option<crate::cache::ResultCache>, Error> {
    let Some(wanted) = policy.cache.as_ref() else {
        return Ok(None);
    };
    if let Some(old) = old
        && old.policy.cache.as_ref() == Some(wanted)
        && old.cache.is_some()
    {
        return Ok(old.cache.clone());
    }
    let cache =
        crate::cache::ResultCache::with_l2(&service.name, wanted, metrics, policy.timeout.total)?;
    Ok(Some(cache))
}
