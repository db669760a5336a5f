//! Cluster ranking per call: override, affinity with hysteresis, then health score.
//!
//! Failures prevented: sending traffic to a cluster that has nothing healthy (every call pays a
//! failed attempt), and flapping — a preferred cluster that recovers for a moment, takes all
//! traffic back, fails again. The order is: an explicit cluster override (only that cluster);
//! otherwise the preferred cluster first while its available share (registry-routable and not
//! ejected, over all discovered instances) is at least `failover.healthy_threshold`; otherwise
//! the clusters by health score (available share × success rate × latency factor, declaration
//! order on ties). Once the preferred cluster fell below the threshold the service is "failed
//! over", and it returns to the preferred cluster only after that cluster has stayed healthy
//! for `failover.dwell` (timed with tokio's clock). Clusters with no available instance are left
//! out; if none is left the call fails at once with every cluster's reason — unless the call
//! panics (`breaker/panic.rs`, `failover.panic_threshold`): then clusters whose breakers hold
//! out instances not known unreachable stay in, and every entry may pick those instances.

use std::sync::Mutex;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use smallvec::SmallVec;
use tokio::time::Instant;

use super::table::{ClusterRoute, RouteHealth, Snapshot};
use crate::breaker::panic_engaged;
use crate::error::{ClusterUnavailable, Error, Reason, UnavailableReason};
use crate::lock::lock;

/// Fail-back state of one service.
#[derive(Debug, Default)]
pub(crate) struct Failback {
    failed_over: AtomicBool,
    healthy_since: Mutex<Option<Instant>>,
}

/// Clusters inline before ranking spills to the heap (two clusters plus a probe entry fit).
const INLINE: usize = 4;

/// The clusters of one call, best first; inline (no allocation) up to [`INLINE`] entries.
pub(crate) type Order = SmallVec<[Ranked; INLINE]>;

/// One ranked cluster: route index plus the snapshot seen while ranking.
pub(crate) struct Ranked {
    pub(crate) route: usize,
    /// Only instances waiting for a probe may be picked (fail-back probing while failed over).
    pub(crate) probe_only: bool,
    /// Panic routing: held-out instances not known unreachable may be picked too.
    pub(crate) panics: bool,
    pub(crate) snapshot: std::sync::Arc<Snapshot>,
}

/// Inputs of ranking that come from the service configuration.
pub(crate) struct RankPolicy<'a> {
    pub(crate) routes: &'a [ClusterRoute],
    pub(crate) preferred: Option<usize>,
    pub(crate) healthy_threshold: f64,
    pub(crate) dwell: Duration,
    /// `failover.panic_threshold` (`None` = panic routing off).
    pub(crate) panic_threshold: Option<f64>,
    pub(crate) failback: &'a Failback,
    /// Clusters configured in the client (for "not configured" reasons).
    pub(crate) all_clusters: &'a [String],
}

/// The clusters to try, best first; `NoHealthyInstance` when none has an available instance.
pub(crate) fn rank(
    p: &RankPolicy<'_>,
    override_cluster: Option<&str>,
    tags: Option<&[String]>,
) -> Result<Order, Error> {
    if let Some(name) = override_cluster {
        let Some(i) = p.routes.iter().position(|r| &*r.cluster == name) else {
            let reason = if p.all_clusters.iter().any(|c| c == name) {
                UnavailableReason::NotConfigured
            } else {
                return Err(Error::invalid(format!(
                    "unknown cluster `{name}`; configured: {}",
                    p.all_clusters.join(", ")
                )));
            };
            return Err(no_healthy(vec![ClusterUnavailable {
                cluster: name.to_owned(),
                reason,
            }]));
        };
        let snapshot = p.routes[i].current();
        let h = p.routes[i].health(&snapshot, tags);
        let panics = call_panics(p, std::slice::from_ref(&h));
        if h.available == 0 && !panics {
            let reason = p.routes[i].unavailable_reason(&snapshot, &h);
            return Err(no_healthy(vec![ClusterUnavailable {
                cluster: name.to_owned(),
                reason,
            }]));
        }
        let mut order = Order::new();
        order.push(Ranked {
            route: i,
            probe_only: false,
            panics,
            snapshot,
        });
        return Ok(order);
    }

    let mut seen: SmallVec<[(Ranked, RouteHealth); INLINE]> = p
        .routes
        .iter()
        .enumerate()
        .map(|(i, r)| {
            let snapshot = r.current();
            let h = r.health(&snapshot, tags);
            let ranked = Ranked {
                route: i,
                probe_only: false,
                panics: false,
                snapshot,
            };
            (ranked, h)
        })
        .collect();
    let panics = call_panics(p, seen.iter().map(|(_, h)| h));

    let preferred_first = p.preferred.is_some_and(|i| prefer(p, &seen[i].1));
    // While failed over, ejected instances of the preferred cluster whose period elapsed get
    // their probe from real calls (tried first, on probe instances only), or they could never
    // be confirmed healthy again.
    let probe = p
        .preferred
        .filter(|&i| !preferred_first && seen[i].1.probeable() > 0);
    let mut reasons = Vec::new();
    seen.retain_mut(|(ranked, h)| {
        ranked.panics = panics;
        if h.available == 0 && !(panics && h.held_answering > 0) {
            let route = &p.routes[ranked.route];
            reasons.push(ClusterUnavailable {
                cluster: route.cluster.to_string(),
                reason: route.unavailable_reason(&ranked.snapshot, h),
            });
            return false;
        }
        true
    });
    if seen.is_empty() {
        for c in p.all_clusters {
            if !p.routes.iter().any(|r| &*r.cluster == c) {
                reasons.push(ClusterUnavailable {
                    cluster: c.clone(),
                    reason: UnavailableReason::NotConfigured,
                });
            }
        }
        return Err(no_healthy(reasons));
    }
    // Group 0: preferred and healthy; 1: the others; 2: preferred while failed over. Within a
    // group by score; the stable sort keeps declaration order on ties.
    let failed_over = !preferred_first && p.failback.failed_over.load(Ordering::Acquire);
    let group = |r: &Ranked| match (Some(r.route) == p.preferred, preferred_first, failed_over) {
        (true, true, _) => 0u8,
        (true, false, true) => 2,
        _ => 1,
    };
    if seen.iter().filter(|(r, _)| group(r) == 1).count() > 1 {
        for (r, h) in &mut seen {
            h.score = p.routes[r.route].score(&r.snapshot, tags, h);
        }
    }
    seen.sort_by(|(a, ha), (b, hb)| group(a).cmp(&group(b)).then(hb.score.total_cmp(&ha.score)));
    let mut order = Order::new();
    if let Some(i) = probe
        && let Some((ranked, _)) = seen.iter().find(|(r, _)| r.route == i)
    {
        order.push(Ranked {
            route: i,
            probe_only: true,
            panics: false,
            snapshot: std::sync::Arc::clone(&ranked.snapshot),
        });
    }
    order.extend(seen.into_iter().map(|(r, _)| r));
    Ok(order)
}

/// Whether the preferred cluster (health `h`) goes first, updating hysteresis. Before a
/// failover, available instances count (an elapsed ejection gets its probe); after one, only
/// confirmed ones (closed breakers) count toward the dwell.
fn prefer(p: &RankPolicy<'_>, h: &RouteHealth) -> bool {
    let failback = p.failback;
    if !failback.failed_over.load(Ordering::Acquire) {
        let share = h.share();
        if share > 0.0 && share >= p.healthy_threshold {
            return true;
        }
        if h.pending {
            // Startup: the preferred registry has not answered yet. Serve from elsewhere for
            // now without entering the failed-over state (and its dwell).
            return false;
        }
        let mut since = lock(&failback.healthy_since);
        *since = None;
        failback.failed_over.store(true, Ordering::Release);
        tracing::info!(
            share,
            "preferred cluster below its healthy threshold: failing over"
        );
        return false;
    }
    let share = h.closed_share();
    let healthy = share > 0.0 && share >= p.healthy_threshold;
    let mut since = lock(&failback.healthy_since);
    if !healthy {
        *since = None;
        return false;
    }
    let now = Instant::now();
    let start = *since.get_or_insert(now);
    if now.saturating_duration_since(start) >= p.dwell {
        *since = None;
        failback.failed_over.store(false, Ordering::Release);
        tracing::info!("preferred cluster healthy for the dwell time: failing back");
        return true;
    }
    false
}

/// Whether the call panics (`breaker/panic.rs`): over the clusters it may use, the admitted
/// instances are at most `panic_threshold` of the routable ones.
fn call_panics<'a>(p: &RankPolicy<'_>, healths: impl IntoIterator<Item = &'a RouteHealth>) -> bool {
    let (mut admitted, mut routable, mut held) = (0, 0, 0);
    for h in healths {
        admitted += h.available;
        routable += h.routable;
        held += h.held_answering;
    }
    let engaged = panic_engaged(p.panic_threshold, admitted, routable, held);
    if engaged {
        tracing::debug!(
            admitted,
            routable,
            held,
            "panic routing: breakers hold out too many instances"
        );
    }
    engaged
}

fn no_healthy(reasons: Vec<ClusterUnavailable>) -> Error {
    Error::new(Reason::NoHealthyInstance(reasons))
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;
    use std::time::Duration;

    use tokio::sync::watch;

    use super::*;
    use crate::client::routing::RouteSpec;
    use crate::config::{BreakerPolicy, LoadBalancing};
    use crate::discovery::{Health, Instance, InstanceSet, Weights};

    fn route(cluster: &str, index: usize, set: InstanceSet) -> ClusterRoute {
        let (_tx, rx) = watch::channel(Arc::new(set));
        let spec = RouteSpec {
            cluster: Arc::from(cluster),
            cluster_index: index,
            consul_name: "svc".to_owned(),
            path_prefix: String::new(),
            scheme: "http",
            target_tags: Vec::new(),
            service_tags: Vec::new(),
            breaker: BreakerPolicy::default(),
            load_balancing: LoadBalancing::RoundRobin,
            seed: Some(1),
            telemetry: None,
        };
        ClusterRoute::new(spec, rx)
    }

    fn instances(n: u16) -> InstanceSet {
        let list = (0..n)
            .map(|i| Instance {
                id: format!("i{i}"),
                node: String::new(),
                host: "127.0.0.1".to_owned(),
                port: 1000 + i,
                tags: Vec::new(),
                meta: Default::default(),
                weights: Weights::default(),
                health: Health::Passing,
            })
            .collect();
        InstanceSet::fresh(list, 1)
    }

    fn first(p: &RankPolicy<'_>) -> (String, bool) {
        let order = rank(p, None, None).expect("something is available");
        let r = &order[0];
        (p.routes[r.route].cluster.to_string(), r.probe_only)
    }

    fn eject_all(route: &ClusterRoute) {
        for e in &route.current().endpoints {
            for _ in 0..5 {
                e.state
                    .breaker
                    .try_acquire()
                    .expect("closed")
                    .failure_at(Instant::now());
            }
        }
    }

    #[tokio::test(start_paused = true)]
    async fn fails_over_probes_and_returns_only_after_the_dwell() {
        let routes = vec![
            route("zervigo", 0, instances(2)),
            route("looma", 1, instances(2)),
        ];
        let failback = Failback::default();
        let clusters = vec!["zervigo".to_owned(), "looma".to_owned()];
        let p = RankPolicy {
            routes: &routes,
            preferred: Some(0),
            healthy_threshold: 0.5,
            dwell: Duration::from_secs(5),
            panic_threshold: Some(0.0),
            failback: &failback,
            all_clusters: &clusters,
        };
        assert_eq!(first(&p), ("zervigo".to_owned(), false));

        eject_all(&routes[0]);
        assert_eq!(first(&p), ("looma".to_owned(), false));
        assert_eq!(
            rank(&p, None, None).expect("looma").len(),
            1,
            "ejected cluster left out"
        );

        // The ejection elapsed: real calls probe the preferred cluster first.
        tokio::time::advance(Duration::from_millis(1100)).await;
        assert_eq!(first(&p), ("zervigo".to_owned(), true));
        for e in &routes[0].current().endpoints {
            e.state
                .breaker
                .try_acquire()
                .expect("probe")
                .success_at(Instant::now());
        }
        // Healthy again, but traffic stays on looma for the dwell time.
        assert_eq!(first(&p), ("looma".to_owned(), false));
        tokio::time::advance(Duration::from_secs(4)).await;
        assert_eq!(first(&p), ("looma".to_owned(), false));
        tokio::time::advance(Duration::from_millis(1100)).await;
        assert_eq!(first(&p), ("zervigo".to_owned(), false));
    }

    #[tokio::test(start_paused = true)]
    async fn pending_discovery_does_not_start_a_failover() {
        let routes = vec![
            route("zervigo", 0, InstanceSet::pending()),
            route("looma", 1, instances(1)),
        ];
        let failback = Failback::default();
        let clusters = vec!["zervigo".to_owned(), "looma".to_owned()];
        let p = RankPolicy {
            routes: &routes,
            preferred: Some(0),
            healthy_threshold: 0.5,
            dwell: Duration::from_secs(5),
            panic_threshold: Some(0.0),
            failback: &failback,
            all_clusters: &clusters,
        };
        assert_eq!(first(&p), ("looma".to_owned(), false));
        assert!(!failback.failed_over.load(Ordering::Relaxed));

        let err = rank(&p, Some("mars"), None).err().expect("unknown cluster");
        assert_eq!(err.kind(), crate::error::ErrorKind::InvalidRequest);
        let err = rank(&p, Some("zervigo"), None).err().expect("pending");
        assert_eq!(err.kind(), crate::error::ErrorKind::NoHealthyInstance);
        assert_eq!(
            err.unavailable()[0].reason,
            UnavailableReason::DiscoveryPending
        );
    }
}
