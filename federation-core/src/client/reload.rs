//! Hot reload: a new configuration replaces the running one without a restart.
//!
//! **Failures prevented.** Restarting a process to change a timeout, add a service or move
//! traffic drops the calls in flight and forgets what the client learned: every open breaker
//! closes again (the dead instance gets traffic again), every latency estimate starts from
//! zero, every pooled connection is reopened. And a typo in the new file must not take the
//! running client down with it.
//!
//! **Algorithm.** The client's state is one immutable *generation* ([`Inner`]) behind an
//! `ArcSwap`. A call (and a request builder) takes the current generation once and finishes on
//! it, so a reload never changes the rules under a call in flight. `reload` validates the new
//! configuration first (rejected: the usual field-path errors, the old generation stays and the
//! rejection is shown in `health()`), then builds the next generation from the previous one:
//! a cluster whose configuration is unchanged is shared as is (transport, connection pools,
//! discovery watchers); a service whose configuration, policy and clusters are unchanged is
//! shared as is (retry budget, bulkhead, rate limiter, hedge latencies, fail-back dwell, cache
//! and whatever per-service state routing keeps); a changed service gets new config-derived
//! parts but carries the instance-keyed state of every (cluster, Consul service) route it still
//! has: breakers, load and EWMA statistics and per-instance connections. Discovery watchers no
//! route of the new generation reads are stopped; new ones start (at once, or on the first call
//! with lazy watches); clusters that changed or went away are shut down. Reloads are
//! serialized; the next generation is published with one atomic store.

use std::sync::Arc;

use super::builder::build_generation;
use super::front::FederatedServiceClient;
use super::state::Inner;
use crate::config::Config;
use crate::error::Error;
use crate::telemetry::ConfigGeneration;

impl FederatedServiceClient {
    /// Replaces the running configuration with `config` without dropping calls in flight.
    ///
    /// Calls already started (and request builders already made) finish on the configuration
    /// they started with; later calls use the new one. Breakers, load and latency statistics
    /// and connections of instances still routed to are kept; unchanged clusters and services
    /// keep all their state (see the docs of the `client::reload` module). Discovery watches of services no
    /// longer configured stop; those of new services start. Call it inside a tokio runtime
    /// when a cluster uses Consul (as for `build`). Returns the new generation.
    ///
    /// # Errors
    /// [`crate::error::ErrorKind::Config`] naming every invalid field (the same errors as
    /// building a client); the running configuration then stays active, and `health()` shows
    /// the rejection in `config.last_rejected`.
    pub fn reload(&self, config: Config) -> Result<ConfigGeneration, Error> {
        self.reload_from(config, "reload")
    }

    /// [`reload`](Self::reload) from configuration text in `format` (what the bindings pass):
    /// a text that does not parse or validate is rejected like an invalid configuration (the
    /// error returned and shown in `health()`; the running configuration stays).
    ///
    /// # Errors
    /// As [`reload`](Self::reload), also for syntax errors.
    pub fn reload_text(
        &self,
        text: &str,
        format: crate::config::ConfigFormat,
    ) -> Result<ConfigGeneration, Error> {
        match Config::parse(text, format) {
            Ok(config) => self.reload(config),
            Err(error) => {
                self.shared.reject("reload", &error);
                Err(error.into())
            }
        }
    }

    /// [`reload`](Self::reload) from the configuration file at `path` (format from its
    /// extension), rejected like an invalid configuration when it cannot be read or parsed.
    ///
    /// # Errors
    /// As [`reload_text`](Self::reload_text), also for an unreadable file.
    pub fn reload_file(
        &self,
        path: impl AsRef<std::path::Path>,
    ) -> Result<ConfigGeneration, Error> {
        let path = path.as_ref();
        let source = format!("file {}", path.display());
        match Config::from_file(path) {
            Ok(config) => self.reload_from(config, &source),
            Err(error) => {
                self.shared.reject(&source, &error);
                Err(error.into())
            }
        }
    }

    /// [`reload`](Self::reload), naming where the configuration came from in `health()`.
    pub(crate) fn reload_from(
        &self,
        config: Config,
        source: &str,
    ) -> Result<ConfigGeneration, Error> {
        let shared = &self.shared;
        let _serialized = crate::lock::lock(&shared.reloading);
        let previous = shared.current();
        let number = previous.generation.generation + 1;
        let next = match build_generation(
            config,
            &shared.settings,
            &shared.metrics,
            Some(&previous),
            number,
            source,
        ) {
            Ok(next) => Arc::new(next),
            Err(error) => {
                shared.reject(source, &error);
                return Err(error);
            }
        };
        retire(&previous, &next);
        shared.publish(Arc::clone(&next));
        if !shared.settings.lazy_watches {
            for svc in next.services.values() {
                svc.watch(&next.clusters, shared.settings.startup_grace);
            }
        }
        tracing::info!(
            generation = number,
            source,
            changes = %next.generation.changes.join("; "),
            "configuration reloaded"
        );
        Ok(next.generation.clone())
    }
}

/// Stops what `next` no longer uses of `previous`: the discovery watchers of (cluster, Consul
/// service) pairs no route reads any more, and the clusters that changed or went away (calls
/// in flight on `previous` keep the instance lists they have).
fn retire(previous: &Inner, next: &Inner) {
    for old in &previous.clusters {
        let Some(kept) = next.clusters.iter().find(|c| Arc::ptr_eq(c, old)) else {
            old.discovery.shutdown();
            continue;
        };
        let read_by = |inner: &Inner| -> Vec<String> {
            inner
                .services
                .values()
                .flat_map(|s| s.routes.iter())
                .filter(|r| *r.cluster == *kept.name)
                .map(|r| r.consul_name.to_ascii_lowercase())
                .collect()
        };
        let still = read_by(next);
        for name in read_by(previous) {
            if !still.contains(&name) {
                kept.discovery.stop(&name);
            }
        }
    }
}
