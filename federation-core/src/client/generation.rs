//! The generations of a client's configuration and what every clone shares across them.
//!
//! **Failure prevented.** A reload that mutated the running state in place would change the
//! rules under calls in flight, and clones of a client made before a reload would keep calling
//! with the old configuration. Every clone holds one [`Shared`]: the current generation (an
//! immutable [`Inner`] behind an `ArcSwap`, replaced whole by `reload.rs`) plus what outlives
//! generations (metrics registry, builder settings, the last rejected reload).

use std::sync::{Arc, Mutex};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use arc_swap::ArcSwap;

use super::state::Inner;
use crate::config::Config;
use crate::telemetry::{ConfigGeneration, Metrics};

/// The builder's settings that every generation is built with.
#[derive(Clone, Debug)]
pub(crate) struct Settings {
    pub(crate) seed: Option<u64>,
    pub(crate) pool: crate::transport::PoolSettings,
    pub(crate) startup_grace: Duration,
    pub(crate) lazy_watches: bool,
}

/// What every clone of a client shares: the current generation and what survives reloads.
pub(crate) struct Shared {
    current: ArcSwap<Inner>,
    /// One registry for every generation (series continue across reloads).
    pub(crate) metrics: Metrics,
    pub(crate) settings: Settings,
    /// Held while a reload builds the next generation (reloads are serialized).
    pub(crate) reloading: Mutex<()>,
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

    /// Makes `next` the current generation (clearing the last rejection).
    pub(crate) fn publish(&self, next: Arc<Inner>) {
        self.current.store(next);
        *crate::lock::lock(&self.rejected) = None;
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
