//! [`ClusterDiscovery`]: the discovery handle of one cluster, shared by every caller.
//!
//! Failure this prevents: N logical services (or N callers) mapped onto the same Consul service
//! each running their own watch loop, multiplying the load on the agent and disagreeing about
//! what they saw; and a client configured with a thousand services holding a thousand long
//! polls open although it calls ten of them. Subscribing (`subscribe`) only creates the
//! channel; the watcher starts on `start` (or `watch` = both) and is shared: one per
//! (cluster, Consul service), publishing into a `tokio::sync::watch` channel every subscriber
//! reads. Tag filtering happens on the subscriber's side ([`Instance::has_tags`]), so services
//! differing only by tags still share one watcher.

use std::collections::{BTreeMap, HashMap};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, PoisonError};
use std::time::Duration;

use tokio::task::AbortHandle;

use super::consul::http::ConsulHttp;
use super::consul::watcher;
use super::state::{DiscoveryStats, ServiceState};
use super::tuning::DiscoveryTuning;
use super::{DiscoveryError, DiscoveryErrorKind, Health, Instance, InstanceSet, Weights};
use crate::config::{ClusterConfig, DiscoverySource, StaticInstance};

/// The latest instance set of one Consul service in one cluster; `changed().await` wakes on
/// every published change.
pub type InstanceWatch = tokio::sync::watch::Receiver<Arc<InstanceSet>>;

/// Discovery for one cluster: cheap to clone, one per cluster. Dropping the last clone (or
/// calling [`shutdown`](Self::shutdown)) stops its watchers.
#[derive(Clone, Debug)]
pub struct ClusterDiscovery {
    inner: Arc<Inner>,
}

#[derive(Debug)]
enum Source {
    /// Shared by every watcher of the cluster (not cloned per watch).
    Consul(Arc<ConsulHttp>),
    Static(BTreeMap<String, Vec<StaticInstance>>),
}

#[derive(Debug)]
struct Watched {
    state: Arc<ServiceState>,
    /// The spelling queried (the first one subscribed).
    name: String,
    /// The running watcher; `None` for static lists and until [`ClusterDiscovery::start`].
    task: Option<AbortHandle>,
}

#[derive(Debug)]
struct Inner {
    cluster: String,
    source: Source,
    tuning: DiscoveryTuning,
    services: Mutex<HashMap<String, Watched>>,
    shut_down: AtomicBool,
}

impl Drop for Inner {
    fn drop(&mut self) {
        let services = self
            .services
            .get_mut()
            .unwrap_or_else(PoisonError::into_inner);
        for watched in services.values() {
            if let Some(task) = &watched.task {
                task.abort();
            }
        }
    }
}

impl ClusterDiscovery {
    /// Discovery for `cluster` with the default timings. Validates the source (address, token
    /// variable, CA file) but does no network I/O and needs no runtime.
    pub fn new(cluster: &ClusterConfig) -> Result<Self, DiscoveryError> {
        Self::with_tuning(cluster, DiscoveryTuning::default())
    }

    /// Like [`new`](Self::new) with explicit backoff and pacing timings (tests shrink them).
    pub fn with_tuning(
        cluster: &ClusterConfig,
        tuning: DiscoveryTuning,
    ) -> Result<Self, DiscoveryError> {
        let source = match &cluster.source {
            DiscoverySource::Consul(consul) => {
                let token = cluster.resolve_token().map_err(|e| {
                    DiscoveryError::new(&cluster.name, DiscoveryErrorKind::Config, e.to_string())
                })?;
                Source::Consul(Arc::new(ConsulHttp::new(
                    &cluster.name,
                    consul,
                    token.as_ref(),
                    &tuning,
                )?))
            }
            DiscoverySource::Static(services) => Source::Static(services.clone()),
        };
        Ok(Self {
            inner: Arc::new(Inner {
                cluster: cluster.name.clone(),
                source,
                tuning,
                services: Mutex::new(HashMap::new()),
                shut_down: AtomicBool::new(false),
            }),
        })
    }

    /// The cluster's name.
    pub fn cluster(&self) -> &str {
        &self.inner.cluster
    }

    /// Subscribes to `consul_service`, starting its watcher on first use. Call inside a tokio
    /// runtime; outside one (or after [`shutdown`](Self::shutdown)) the returned set stays
    /// uninitialized and carries the error.
    pub fn watch(&self, consul_service: &str) -> InstanceWatch {
        let rx = self.subscribe(consul_service);
        self.start(consul_service);
        rx
    }

    /// Subscribes to `consul_service` without starting its watcher: the set stays pending (a
    /// static list is there at once) until [`start`](Self::start) or [`watch`](Self::watch).
    /// A client subscribes every configured route this way and starts a service's watches on
    /// its first call, so services that are never called cost Consul nothing.
    pub fn subscribe(&self, consul_service: &str) -> InstanceWatch {
        let inner = &self.inner;
        // Consul service names are case-insensitive: `User-Service` and `user-service` are one
        // service and share one watcher (the first spelling is the one queried).
        let key = consul_service.to_ascii_lowercase();
        let mut services = crate::lock::lock(&inner.services);
        if let Some(watched) = services.get(&key) {
            return watched.state.subscribe();
        }
        if inner.shut_down.load(Ordering::Acquire) {
            return self.failed_watch(DiscoveryErrorKind::Shutdown, "discovery was shut down");
        }
        let state = match &inner.source {
            Source::Static(map) => {
                let instances = map
                    .get(consul_service)
                    .map(|list| list.iter().map(static_instance).collect())
                    .unwrap_or_default();
                ServiceState::new(InstanceSet::fresh(instances, 0))
            }
            Source::Consul(_) => ServiceState::new(InstanceSet::pending()),
        };
        let watched = Watched {
            state: Arc::new(state),
            name: consul_service.to_owned(),
            task: None,
        };
        let rx = watched.state.subscribe();
        services.insert(key, watched);
        rx
    }

    /// Starts the watcher of `consul_service` if it is subscribed and not running yet (a no-op
    /// for static lists and after shutdown). Outside a tokio runtime the subscribers see the
    /// error instead.
    pub fn start(&self, consul_service: &str) {
        let inner = &self.inner;
        let Source::Consul(http) = &inner.source else {
            return;
        };
        let mut services = crate::lock::lock(&inner.services);
        let Some(watched) = services.get_mut(&consul_service.to_ascii_lowercase()) else {
            return;
        };
        if watched.task.is_some() {
            return;
        }
        let Some(runtime) = crate::driven::spawn_handle() else {
            let message = "watch() was called outside a tokio runtime";
            tracing::error!(cluster = %inner.cluster, "{message}");
            watched
                .state
                .record_error(&self.error(DiscoveryErrorKind::Shutdown, message));
            return;
        };
        let span =
            tracing::info_span!("discovery", cluster = %inner.cluster, service = %watched.name);
        let task = runtime.spawn(tracing::Instrument::instrument(
            watcher::run(
                Arc::clone(http),
                watched.name.clone(),
                Arc::clone(&watched.state),
                inner.tuning.clone(),
            ),
            span,
        ));
        watched.task = Some(task.abort_handle());
    }

    /// Waits until `consul_service` has been read once and returns that set. Fails fast with
    /// the registry's error if the first poll fails (e.g. "Consul unreachable"), and with a
    /// `Timeout` error if nothing arrives within `timeout`. The watcher keeps running either way.
    pub async fn wait_initialized(
        &self,
        consul_service: &str,
        timeout: Duration,
    ) -> Result<Arc<InstanceSet>, DiscoveryError> {
        let mut rx = self.watch(consul_service);
        let waiting = async {
            loop {
                let set = rx.borrow_and_update().clone();
                if set.initialized {
                    return Ok(set);
                }
                if let Some(text) = &set.last_error {
                    return Err(self.current_error(consul_service, text));
                }
                if rx.changed().await.is_err() {
                    return Err(self.error(DiscoveryErrorKind::Shutdown, "discovery was shut down"));
                }
            }
        };
        match tokio::time::timeout(timeout, waiting).await {
            Ok(result) => result,
            Err(_) => Err(self.error(
                DiscoveryErrorKind::Timeout,
                format!("no answer for `{consul_service}` within {timeout:?}"),
            )),
        }
    }

    /// Stops the watcher of `consul_service` and forgets it (a reload removed the last route
    /// reading it). Its subscribers keep their last set; `changed()` then returns an error. A
    /// later `subscribe` starts from scratch.
    pub fn stop(&self, consul_service: &str) {
        let mut services = crate::lock::lock(&self.inner.services);
        if let Some(watched) = services.remove(&consul_service.to_ascii_lowercase())
            && let Some(task) = watched.task
        {
            task.abort();
        }
    }

    /// Stops every watcher. Subscribers keep their last set; `changed()` then returns an error.
    /// Later `watch` calls return an uninitialized set with a `Shutdown` error.
    pub fn shutdown(&self) {
        self.inner.shut_down.store(true, Ordering::Release);
        let mut services = crate::lock::lock(&self.inner.services);
        for (_, watched) in services.drain() {
            if let Some(task) = watched.task {
                task.abort();
            }
        }
    }

    /// Counters per watched service: polls, errors, last error, index, staleness.
    pub fn stats(&self) -> DiscoveryStats {
        let services = crate::lock::lock(&self.inner.services);
        DiscoveryStats {
            cluster: self.inner.cluster.clone(),
            services: services
                .iter()
                .map(|(name, w)| (name.clone(), w.state.stats()))
                .collect(),
        }
    }

    /// The Consul client, or an `Unsupported` error for static clusters.
    pub(super) fn consul(&self, what: &str) -> Result<&ConsulHttp, DiscoveryError> {
        match &self.inner.source {
            Source::Consul(http) => Ok(http),
            Source::Static(_) => Err(self.error(
                DiscoveryErrorKind::Unsupported,
                format!("{what} needs a Consul source; this cluster has a static instance list"),
            )),
        }
    }

    pub(super) fn error(
        &self,
        kind: DiscoveryErrorKind,
        message: impl Into<String>,
    ) -> DiscoveryError {
        DiscoveryError::new(&self.inner.cluster, kind, message)
    }

    fn current_error(&self, service: &str, text: &str) -> DiscoveryError {
        let services = crate::lock::lock(&self.inner.services);
        services
            .get(&service.to_ascii_lowercase())
            .and_then(|w| w.state.current_error())
            .unwrap_or_else(|| self.error(DiscoveryErrorKind::Unreachable, text))
    }

    fn failed_watch(&self, kind: DiscoveryErrorKind, message: &str) -> InstanceWatch {
        tracing::error!(cluster = %self.inner.cluster, "{message}");
        let mut set = InstanceSet::pending();
        set.stale = true;
        set.last_error = Some(self.error(kind, message).to_string());
        // The sender is dropped at once: the receiver keeps the value and reports closure.
        tokio::sync::watch::channel(Arc::new(set)).1
    }
}

/// A configured static instance as a passing [`Instance`].
fn static_instance(s: &StaticInstance) -> Instance {
    let host = s.address.trim();
    let host = host
        .strip_prefix('[')
        .and_then(|h| h.strip_suffix(']'))
        .unwrap_or(host)
        .to_owned();
    let weight = s.weight.clamp(1, 65_535);
    Instance {
        id: s
            .id
            .clone()
            .filter(|id| !id.is_empty())
            .unwrap_or_else(|| format!("{}:{}", s.address, s.port)),
        node: String::new(),
        host,
        port: s.port,
        tags: s.tags.clone(),
        meta: s.meta.clone(),
        weights: Weights {
            passing: weight,
            warning: weight,
        },
        health: Health::Passing,
    }
}
