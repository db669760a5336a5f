//! The routing table of one (service, cluster): instances with their breaker and load state.
//!
//! Failures prevented: losing an instance's ejection or latency history every time Consul
//! reports a change (a flapping registry would reset every breaker), and routing on an instance
//! list older than the registry's. The table follows the discovery watch: each table keeps a
//! watch receiver marked as having seen the instance set it was built from, so on each call
//! one atomic load of the channel's version says whether discovery published since; if so the
//! table is rebuilt, and a change applies to the very next call.
//! Per-instance state ([`Breaker`] + [`InstanceStats`]) lives in a map keyed by
//! `Instance::key()` and is carried over to the rebuilt table; instances that disappeared drop
//! their state and their per-instance metric series (`Metrics::forget_instance`), so the
//! exposition does not grow as instances come and go. The hot path takes no lock: the table is
//! read from an `ArcSwap` and the version check is an atomic load; the success counters of
//! calls and attempts are resolved once per route.

use std::collections::HashMap;
use std::sync::{Arc, Mutex, OnceLock};

use arc_swap::ArcSwap;
use tokio::sync::watch;
use tokio::time::Instant;

pub(crate) use super::endpoint::{Destination, Endpoint, EndpointState};
use crate::balance::{Balancer, Candidate};
use crate::breaker::{Breaker, BreakerPermit, BreakerState};
use crate::config::{BreakerPolicy, LoadBalancing};
use crate::discovery::{Instance, InstanceSet};
use crate::error::UnavailableReason;
use crate::lock::lock;
use crate::telemetry::CallHandles;

/// The instances of one (service, cluster) built from one discovery snapshot.
#[derive(Debug)]
pub(crate) struct Snapshot {
    pub(crate) source: Arc<InstanceSet>,
    pub(crate) endpoints: Vec<Endpoint>,
    /// A receiver that has seen `source`: `has_changed` tells whether discovery published since.
    seen: watch::Receiver<Arc<InstanceSet>>,
}

/// Health summary of one route, for cluster ranking and fail-fast reasons.
#[derive(Clone, Debug, Default)]
pub(crate) struct RouteHealth {
    /// Instances carrying the required tags (any health).
    pub(crate) total: usize,
    /// Of those, routable by registry health.
    pub(crate) routable: usize,
    /// Of those, admitted by their breaker (closed, or open with the period elapsed).
    pub(crate) available: usize,
    /// Of those, with a closed breaker (confirmed healthy).
    pub(crate) closed: usize,
    /// Routable but held out by a breaker that does not know them unreachable: where panic
    /// routing may go (`breaker/panic.rs`).
    pub(crate) held_answering: usize,
    /// Score in `[0, 1]`: available share × success rate × latency factor.
    pub(crate) score: f64,
    /// Discovery has not answered yet (startup): not a reason to fail over for good.
    pub(crate) pending: bool,
}

impl RouteHealth {
    /// Available share of the discovered instances.
    pub(crate) fn share(&self) -> f64 {
        ratio(self.available, self.total)
    }

    /// Confirmed-healthy (closed breaker) share of the discovered instances.
    pub(crate) fn closed_share(&self) -> f64 {
        ratio(self.closed, self.total)
    }

    /// Instances whose ejection elapsed and that wait for a probe.
    pub(crate) fn probeable(&self) -> usize {
        self.available - self.closed
    }
}

fn ratio(n: usize, total: usize) -> f64 {
    if total == 0 {
        0.0
    } else {
        n as f64 / total as f64
    }
}

/// Static facts of a route plus its live table.
pub(crate) struct ClusterRoute {
    pub(crate) cluster: Arc<str>,
    /// Index of the cluster in the client's cluster list.
    pub(crate) cluster_index: usize,
    #[allow(dead_code, reason = "read by telemetry's health snapshot")]
    pub(crate) consul_name: String,
    pub(crate) path_prefix: String,
    pub(super) scheme: &'static str,
    target_tags: Vec<String>,
    service_tags: Vec<String>,
    rx: watch::Receiver<Arc<InstanceSet>>,
    snapshot: ArcSwap<Snapshot>,
    states: Mutex<HashMap<String, Arc<EndpointState>>>,
    breaker_policy: BreakerPolicy,
    pub(crate) balancer: Balancer,
    pub(super) telemetry: Option<(crate::telemetry::Metrics, Arc<str>)>,
    /// `success` handles of (calls, attempts) served here, resolved on first use.
    pub(super) success: OnceLock<(CallHandles, CallHandles)>,
}

/// Everything needed to build a [`ClusterRoute`].
pub(crate) struct RouteSpec {
    pub(crate) cluster: Arc<str>,
    pub(crate) cluster_index: usize,
    pub(crate) consul_name: String,
    pub(crate) path_prefix: String,
    pub(crate) scheme: &'static str,
    pub(crate) target_tags: Vec<String>,
    pub(crate) service_tags: Vec<String>,
    pub(crate) breaker: BreakerPolicy,
    pub(crate) load_balancing: LoadBalancing,
    pub(crate) seed: Option<u64>,
    /// Metrics and logical service name for breaker transitions (issue 4).
    pub(crate) telemetry: Option<(crate::telemetry::Metrics, Arc<str>)>,
}

impl ClusterRoute {
    /// Where attempts to `endpoint` (one of this route's) go: its URL base, origin and
    /// connection pool, built on its first call.
    pub(crate) fn destination<'e>(&self, endpoint: &'e Endpoint) -> &'e Destination {
        endpoint.destination(self.scheme, &self.path_prefix)
    }

    #[cfg(test)]
    pub(crate) fn new(spec: RouteSpec, rx: watch::Receiver<Arc<InstanceSet>>) -> Self {
        Self::with_states(spec, rx, HashMap::new())
    }

    /// A route starting from `states`, the per-instance state of the route it replaces on a
    /// reload (`client/reload.rs`): instances found in it keep their breaker, statistics and
    /// connections.
    pub(crate) fn with_states(
        spec: RouteSpec,
        rx: watch::Receiver<Arc<InstanceSet>>,
        states: HashMap<String, Arc<EndpointState>>,
    ) -> Self {
        // Carried breakers judge later outcomes by this route's (possibly reloaded) policy.
        for state in states.values() {
            state.breaker.set_policy(&spec.breaker);
        }
        let empty = Arc::new(Snapshot {
            source: Arc::new(InstanceSet::pending()),
            endpoints: Vec::new(),
            seen: rx.clone(),
        });
        let route = Self {
            cluster: spec.cluster,
            cluster_index: spec.cluster_index,
            consul_name: spec.consul_name,
            path_prefix: normalize_prefix(&spec.path_prefix),
            scheme: spec.scheme,
            target_tags: spec.target_tags,
            service_tags: spec.service_tags,
            rx,
            snapshot: ArcSwap::new(empty),
            states: Mutex::new(states),
            breaker_policy: spec.breaker,
            balancer: Balancer::new(spec.load_balancing, spec.seed),
            telemetry: spec.telemetry,
            success: OnceLock::new(),
        };
        let mut states = lock(&route.states);
        route.rebuild(&mut states, route.rx.clone());
        drop(states);
        route
    }

    /// The per-instance state of this route, keyed by instance, for the route replacing it.
    pub(crate) fn endpoint_states(&self) -> HashMap<String, Arc<EndpointState>> {
        lock(&self.states).clone()
    }

    /// Whether discovery has neither answered nor failed yet (startup): the route may still
    /// receive its first instance list any moment.
    pub(crate) fn awaiting_first_answer(&self) -> bool {
        let set = self.rx.borrow();
        !set.initialized && set.last_error.is_none()
    }

    /// Waits until discovery answers (or fails) for the first time, or until `until`.
    pub(crate) async fn first_answer(&self, until: Instant) {
        let mut rx = self.rx.clone();
        loop {
            {
                let set = rx.borrow_and_update();
                if set.initialized || set.last_error.is_some() {
                    return;
                }
            }
            match tokio::time::timeout_at(until, rx.changed()).await {
                Ok(Ok(())) => {}
                // Timed out, or discovery shut down: stop waiting.
                Ok(Err(_)) | Err(_) => return,
            }
        }
    }

    /// Waits until discovery has answered successfully once, or until `until`. Returns whether
    /// it has; otherwise the last registry error, if any.
    pub(crate) async fn first_success(&self, until: Instant) -> Result<(), Option<String>> {
        let mut rx = self.rx.clone();
        loop {
            {
                let set = rx.borrow_and_update();
                if set.initialized {
                    return Ok(());
                }
                if tokio::time::Instant::now() >= until {
                    return Err(set.last_error.clone());
                }
            }
            if let Ok(Err(_)) = tokio::time::timeout_at(until, rx.changed()).await {
                // Discovery shut down: no answer will come.
                return Err(self.rx.borrow().last_error.clone());
            }
        }
    }

    /// The table for the latest discovery snapshot (rebuilt if discovery changed). Lock-free
    /// unless discovery published since the table was built.
    pub(crate) fn current(&self) -> Arc<Snapshot> {
        let snap = self.snapshot.load_full();
        if !snap.stale() {
            return snap;
        }
        let mut states = lock(&self.states);
        // Another caller may have rebuilt while we waited.
        let snap = self.snapshot.load_full();
        if !snap.stale() {
            return snap;
        }
        self.rebuild(&mut states, snap.seen.clone())
    }

    /// Builds and publishes the table for the value `seen` has not seen yet (or its current one).
    fn rebuild(
        &self,
        states: &mut HashMap<String, Arc<EndpointState>>,
        mut seen: watch::Receiver<Arc<InstanceSet>>,
    ) -> Arc<Snapshot> {
        let source = Arc::clone(&seen.borrow_and_update());
        let mut kept = HashMap::with_capacity(source.instances.len());
        let mut endpoints = Vec::with_capacity(source.instances.len());
        for (at, instance) in source.instances.iter().enumerate() {
            if !instance.has_tags(&self.target_tags) {
                continue;
            }
            let key = instance.key();
            let state = states
                .remove(&key)
                .unwrap_or_else(|| self.new_state(instance));
            kept.insert(key, Arc::clone(&state));
            let default_match = instance.has_tags(&self.service_tags);
            endpoints.push(Endpoint::new(&source.instances, at, state, default_match));
        }
        self.forget_dropped(states, &kept);
        *states = kept;
        let snap = Arc::new(Snapshot {
            source,
            endpoints,
            seen,
        });
        self.snapshot.store(Arc::clone(&snap));
        snap
    }

    /// The client-side state of an instance the table has not seen before.
    fn new_state(&self, instance: &Instance) -> Arc<EndpointState> {
        let state = EndpointState::new(&instance.id, Breaker::new(&self.breaker_policy));
        self.observe_breaker(&state.breaker, &state.id);
        // Unreachable instances come back as soon as they accept connections (probe.rs), probed
        // every base open period (the reloaded one, once a reload changed it).
        let (breaker, id) = (&state.breaker, &state.id);
        crate::breaker::probe::watch(breaker, id, &instance.host, instance.port, None);
        // An ejected instance must win a pick when its probe is due (balance docs).
        state.stats.reset_on_ejection(&state.breaker);
        Arc::new(state)
    }

    /// Counts of the route for `tags` (`None` = the service's default tags): atomic loads only.
    /// The score stays 0 until [`ClusterRoute::score`] fills it.
    pub(crate) fn health(&self, snap: &Snapshot, tags: Option<&[String]>) -> RouteHealth {
        let mut h = RouteHealth {
            pending: !snap.source.initialized,
            ..RouteHealth::default()
        };
        for e in snap.endpoints.iter().filter(|e| e.eligible(tags)) {
            h.total += 1;
            if e.weight == 0 {
                continue;
            }
            h.routable += 1;
            if e.state.breaker.is_available() {
                h.available += 1;
                if matches!(e.state.breaker.state(), BreakerState::Closed) {
                    h.closed += 1;
                }
            } else if e.state.breaker.panic_eligible() {
                h.held_answering += 1;
            }
        }
        h
    }

    /// Health score in `[0, 1]`: available share × mean success rate × latency factor
    /// (`1 / (1 + mean peak-EWMA in seconds)`). Reads every instance's statistics, so the
    /// ranking computes it only when two clusters compete.
    pub(crate) fn score(&self, snap: &Snapshot, tags: Option<&[String]>, h: &RouteHealth) -> f64 {
        let (mut n, mut success, mut latency) = (0.0, 0.0, 0.0);
        for e in snap
            .endpoints
            .iter()
            .filter(|e| e.weight > 0 && e.eligible(tags))
        {
            if e.state.breaker.is_available() {
                n += 1.0;
                success += e.state.stats.success_rate();
                latency += e.state.stats.ewma_latency().as_secs_f64();
            }
        }
        if n == 0.0 {
            return 0.0;
        }
        h.share() * (success / n) / (1.0 + latency / n)
    }

    /// Why the route cannot serve, given its health has no available instance.
    pub(crate) fn unavailable_reason(&self, snap: &Snapshot, h: &RouteHealth) -> UnavailableReason {
        let set = &snap.source;
        if h.routable > 0 {
            return UnavailableReason::AllEjected {
                ejected: h.routable,
            };
        }
        match (&set.last_error, set.stale || !set.initialized) {
            (Some(error), true) => UnavailableReason::DiscoveryStale {
                error: error.clone(),
            },
            _ if !set.initialized => UnavailableReason::DiscoveryPending,
            _ => UnavailableReason::NoneDiscovered,
        }
    }

    /// Picks an available eligible instance not rejected by `skip`, and takes its breaker permit
    /// (when the call `panics`, held-out instances not known unreachable count as available).
    /// Up to [`INLINE`] instances the candidate lists live on the stack (no allocation per pick).
    pub(crate) fn pick(
        &self,
        snap: &Snapshot,
        (tags, now): (Option<&[String]>, tokio::time::Instant),
        panics: bool,
        skip: impl Fn(&Endpoint) -> bool,
    ) -> Option<(usize, BreakerPermit)> {
        let first = snap.endpoints.first()?;
        let usable = |e: &Endpoint| {
            e.weight > 0 && e.eligible(tags) && !skip(e) && e.state.breaker.admits(panics)
        };
        let filler = Candidate {
            weight: 0,
            stats: &first.state.stats,
        };
        let (mut index_inline, mut cand_inline) = ([0usize; INLINE], [filler; INLINE]);
        let (mut index_heap, mut cand_heap) = (Vec::new(), Vec::new());
        let (index, candidates): (&mut [usize], &mut [Candidate<'_>]) =
            if snap.endpoints.len() <= INLINE {
                (&mut index_inline[..], &mut cand_inline[..])
            } else {
                index_heap.resize(snap.endpoints.len(), 0);
                cand_heap.resize(snap.endpoints.len(), filler);
                (&mut index_heap[..], &mut cand_heap[..])
            };
        let mut n = 0;
        for (i, e) in snap.endpoints.iter().enumerate() {
            if usable(e) {
                index[n] = i;
                candidates[n] = Candidate {
                    weight: e.weight,
                    stats: &e.state.stats,
                };
                n += 1;
            }
        }
        while n > 0 {
            let chosen = self.balancer.pick_at(&candidates[..n], now)?;
            let i = index[chosen];
            if let Some(permit) = snap.endpoints[i].state.breaker.acquire(panics) {
                return Some((i, permit));
            }
            // Lost the half-open probe to a concurrent call: drop it and pick again.
            n -= 1;
            index.swap(chosen, n);
            candidates.swap(chosen, n);
        }
        None
    }
}

impl Snapshot {
    /// Whether discovery published a set this table was not built from: one atomic load while
    /// the watch is open; after discovery shut down, a pointer comparison with its last value.
    fn stale(&self) -> bool {
        match self.seen.has_changed() {
            Ok(changed) => changed,
            Err(_closed) => !Arc::ptr_eq(&self.source, &self.seen.borrow()),
        }
    }
}

/// Instances per route whose pick needs no heap allocation.
const INLINE: usize = 16;

/// `""` or `/prefix` without a trailing slash.
fn normalize_prefix(prefix: &str) -> String {
    let trimmed = prefix.trim_end_matches('/');
    if trimmed.is_empty() {
        String::new()
    } else if trimmed.starts_with('/') {
        trimmed.to_owned()
    } else {
        format!("/{trimmed}")
    }
}

#[cfg(test)]
mod tests {
    use super::normalize_prefix;

    #[test]
    fn prefixes_are_normalized() {
        assert_eq!(normalize_prefix(""), "");
        assert_eq!(normalize_prefix("/"), "");
        assert_eq!(normalize_prefix("api/"), "/api");
        assert_eq!(normalize_prefix("/api/v1"), "/api/v1");
    }
}
