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

use std::sync::{Arc, Mutex};
use std::time::{SystemTime, UNIX_EPOCH};

use arc_swap::ArcSwap;

use super::builder::{Settings, build_generation};
use super::front::FederatedServiceClient;
use super::state::Inner;
use crate::config::Config;
use crate::error::Error;
use crate::telemetry::{ConfigGeneration, Metrics};

/// What every clone of a client shares: the current generation and what survives reloads.
pub(crate) struct Shared {
    current: ArcSwap<Inner>,
    /// One registry for every generation (series continue across reloads).
    pub(crate) metrics: Metrics,
    pub(crate) settings: Settings,
    /// Held while a reload builds the next generation (reloads are serialized).
    reloading: Mutex<()>,
    /// The last rejected reload since the current generation, for `health()`.
    rejected: Mutex<Option<String>>,
}

impl Shared {
    pub(crate) fn new(first: Inner, metrics: Metrics, settings: Settings) -> Self {
        Self {
            current: ArcSwap::from_pointee(first),
            metrics,
            settings,
            reloading: Mutex::new(()),
            rejected: Mutex::new(None),
        }
    }

    /// The current generation.
    pub(crate) fn current(&self) -> Arc<Inner> {
        self.current.load_full()
    }

    /// Records a rejected reload (shown in `health()` until the next accepted one).
    pub(crate) fn reject(&self, source: &str, error: &dyn std::fmt::Display) {
        tracing::warn!(source, %error, "configuration reload rejected; the running one stays");
        *crate::lock::lock(&self.rejected) = Some(format!("{source}: {error}"));
    }

    /// The current generation's description, with the last rejected reload.
    pub(crate) fn generation(&self) -> ConfigGeneration {
        let mut generation = self.current.load().generation.clone();
        generation.last_rejected = crate::lock::lock(&self.rejected).clone();
        generation
    }
}

/// The description of generation `number` loaded now from `source`.
pub(crate) fn describe(number: u64, source: &str, changes: Vec<String>) -> ConfigGeneration {
    ConfigGeneration {
        generation: number,
        loaded_at: SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map_or(0.0, |d| d.as_secs_f64()),
        source: source.to_owned(),
        changes,
        last_rejected: None,
    }
}

impl FederatedServiceClient {
    /// Replaces the running configuration with `config` without dropping calls in flight.
    ///
    /// Calls already started (and request builders already made) finish on the configuration
    /// they started with; later calls use the new one. Breakers, load and latency statistics
    /// and connections of instances still routed to are kept; unchanged clusters and services
    /// keep all their state (see the [module docs](self)). Discovery watches of services no
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
        shared.current.store(Arc::clone(&next));
        *crate::lock::lock(&shared.rejected) = None;
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

/// What `next` changes compared with `previous`, one line per cluster or service.
pub(crate) fn changes(previous: &Config, next: &Config) -> Vec<String> {
    let mut out = Vec::new();
    for c in &next.clusters {
        match previous.cluster(&c.name) {
            None => out.push(format!("clusters.{}: added", c.name)),
            Some(old) if old != c => out.push(format!("clusters.{}: changed", c.name)),
            Some(_) => {}
        }
    }
    for c in &previous.clusters {
        if next.cluster(&c.name).is_none() {
            out.push(format!("clusters.{}: removed", c.name));
        }
    }
    for s in &next.services {
        match previous.service(&s.name) {
            None => out.push(format!("services.{}: added", s.name)),
            Some(old) if old != s || previous.policy_for(old) != next.policy_for(s) => {
                out.push(format!("services.{}: changed", s.name));
            }
            Some(_) => {}
        }
    }
    for s in &previous.services {
        if next.service(&s.name).is_none() {
            out.push(format!("services.{}: removed", s.name));
        }
    }
    if previous.sync != next.sync {
        out.push("sync: changed (read by federation-sync, not by the client)".to_owned());
    }
    out
}

#[cfg(test)]
mod tests {
    use super::changes;
    use crate::config::{Config, ConfigFormat};

    fn parse(text: &str) -> Config {
        Config::parse(text, ConfigFormat::Yaml).expect("valid test configuration")
    }

    #[test]
    fn changes_name_each_added_removed_and_changed_part() {
        let config = |a_port: u16, second: &str, service: &str| {
            parse(&format!(
                "clusters:\n  a:\n    static:\n      user: [ {{ address: 127.0.0.1, port: {a_port} }} ]\n\
                 \x20 {second}:\n    static:\n      user: [ {{ address: 127.0.0.1, port: 9 }} ]\n\
                 services:\n  user: {{}}\n  {service}: {{}}\n"
            ))
        };
        let before = config(1, "b", "old");
        let after = config(2, "c", "new");
        assert_eq!(
            changes(&before, &after),
            [
                "clusters.a: changed",
                "clusters.c: added",
                "clusters.b: removed",
                "services.new: added",
                "services.old: removed",
            ]
        );
        assert!(changes(&after, &after).is_empty());
    }
}
