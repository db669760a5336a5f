//! One instance in a routing table: the discovered instance (shared, not copied), its
//! client-side state, and where its attempts go.
//!
//! Failure prevented: a client that knows tens of thousands of instances but calls few paying
//! for each of them a copy of the instance, a URL, a parsed origin and a connection pool
//! (issue 23: 2.7 KB per known instance). An endpoint points into the instance list discovery
//! published; its destination and its pool are built by its first attempt.

use std::sync::{Arc, Mutex, OnceLock};

use crate::balance::InstanceStats;
use crate::breaker::Breaker;
use crate::discovery::Instance;
use crate::transport::http1_pool::Http1Pool;

/// Client-side state of one instance, surviving discovery updates.
#[derive(Debug)]
pub(crate) struct EndpointState {
    /// The instance id, as its metric series are labelled.
    pub(crate) id: Arc<str>,
    pub(crate) breaker: Breaker,
    pub(crate) stats: Arc<InstanceStats>,
    /// Its plain-HTTP connections (`http1_pool.rs`), kept across discovery updates while its
    /// address stays the same; created by the first attempt.
    connections: Mutex<Option<Arc<Http1Pool>>>,
}

impl EndpointState {
    /// The state of a newly discovered instance `id`, with no connection pool yet.
    pub(super) fn new(id: &str, breaker: Breaker) -> Self {
        Self {
            id: Arc::from(id),
            breaker,
            stats: Arc::new(InstanceStats::default()),
            connections: Mutex::new(None),
        }
    }

    /// The connection pool for the instance at `host:port`: the current one, or a new one when
    /// the instance moved (its old connections close when their last call ends).
    fn connections(&self, host: &str, port: u16) -> Arc<Http1Pool> {
        let mut current = crate::lock::lock(&self.connections);
        match current.as_ref() {
            Some(pool) if pool.is_for(host, port) => Arc::clone(pool),
            _ => Arc::clone(current.insert(Arc::new(Http1Pool::new(host, port)))),
        }
    }

    /// Whether a connection pool was created for the instance (by its first attempt).
    #[cfg(test)]
    pub(crate) fn has_connections(&self) -> bool {
        crate::lock::lock(&self.connections).is_some()
    }
}

/// One instance as the pipeline sees it.
///
/// The instance itself is not copied: the endpoint points into the instance list discovery
/// published (`source`, shared with the discovery watch and every other endpoint of the table).
/// Where attempts go (URL, parsed origin, connection pool) is built on the first attempt to the
/// endpoint ([`Endpoint::destination`]), so a known but never-called instance costs neither.
#[derive(Debug)]
pub(crate) struct Endpoint {
    source: Arc<[Instance]>,
    at: usize,
    pub(crate) id: Arc<str>,
    /// Effective weight (0 = not routable: critical, or warning with weight 0).
    pub(crate) weight: u32,
    /// Carries the service's default tags.
    pub(crate) default_match: bool,
    pub(crate) state: Arc<EndpointState>,
    /// Boxed: most endpoints of a large table are never called.
    destination: OnceLock<Box<Destination>>,
}

/// Where the attempts to one endpoint go, built on its first attempt.
#[derive(Debug)]
pub(crate) struct Destination {
    /// `scheme://authority/prefix`, to which the request path is appended.
    pub(crate) base_url: String,
    /// `scheme://authority`, parsed once (see `attempt_url.rs`); `None` when it does not parse.
    pub(crate) origin: Option<crate::transport::attempt_url::Origin>,
    /// The instance's own connections, for a plain-HTTP cluster.
    pub(crate) connections: Option<Arc<Http1Pool>>,
}

impl Endpoint {
    /// The endpoint of `source[at]` with its client-side `state`.
    pub(super) fn new(
        source: &Arc<[Instance]>,
        at: usize,
        state: Arc<EndpointState>,
        default_match: bool,
    ) -> Self {
        Self {
            weight: source.get(at).map_or(0, Instance::effective_weight),
            source: Arc::clone(source),
            at,
            id: Arc::clone(&state.id),
            default_match,
            state,
            destination: OnceLock::new(),
        }
    }

    /// The discovered instance (shared with discovery's published set, not a copy).
    pub(crate) fn instance(&self) -> &Instance {
        &self.source[self.at]
    }

    /// Where attempts to this endpoint go, for its route's `scheme` and `path_prefix`: built on
    /// the first call, then one atomic load (`ClusterRoute::destination`).
    pub(super) fn destination(&self, scheme: &'static str, path_prefix: &str) -> &Destination {
        self.destination.get_or_init(|| {
            let instance = self.instance();
            let authority = instance.authority();
            Box::new(Destination {
                base_url: format!("{scheme}://{authority}{path_prefix}"),
                origin: crate::transport::attempt_url::parse_origin(scheme, &authority),
                connections: (scheme == "http")
                    .then(|| self.state.connections(&instance.host, instance.port)),
            })
        })
    }

    pub(super) fn eligible(&self, tags: Option<&[String]>) -> bool {
        match tags {
            None => self.default_match,
            Some(tags) => self.instance().has_tags(tags),
        }
    }
}

#[cfg(test)]
mod tests {
    use std::collections::BTreeMap;
    use std::sync::Arc;

    use tokio::sync::watch;

    use super::super::table::{ClusterRoute, RouteSpec};
    use crate::config::{BreakerPolicy, LoadBalancing};
    use crate::discovery::{Health, Instance, InstanceSet, Weights};

    fn instance(n: u16) -> Instance {
        Instance {
            id: format!("i-{n}"),
            node: "node".to_owned(),
            host: "127.0.0.1".to_owned(),
            port: 9000 + n,
            tags: vec!["blue".to_owned()],
            meta: BTreeMap::from([("zone".to_owned(), "a".to_owned())]),
            weights: Weights::default(),
            health: Health::Passing,
        }
    }

    fn route(rx: watch::Receiver<Arc<InstanceSet>>) -> ClusterRoute {
        let spec = RouteSpec {
            cluster: Arc::from("alpha"),
            cluster_index: 0,
            consul_name: "svc".to_owned(),
            path_prefix: "/api".to_owned(),
            scheme: "http",
            target_tags: Vec::new(),
            service_tags: Vec::new(),
            breaker: BreakerPolicy::default(),
            load_balancing: LoadBalancing::default(),
            seed: Some(1),
            telemetry: None,
        };
        ClusterRoute::new(spec, rx)
    }

    #[tokio::test]
    async fn endpoints_share_discoverys_instances_and_pools_wait_for_a_first_call() {
        let set = InstanceSet::fresh((0..4).map(instance).collect(), 7);
        let (tx, rx) = watch::channel(Arc::new(set));
        let route = route(rx);
        let snap = route.current();
        let published = Arc::clone(&tx.borrow().instances);
        assert!(Arc::ptr_eq(&snap.source.instances, &published));
        assert_eq!(snap.endpoints.len(), 4);
        for (endpoint, discovered) in snap.endpoints.iter().zip(published.iter()) {
            assert!(
                std::ptr::eq(endpoint.instance(), discovered),
                "the endpoint of {} holds a copy, not discovery's instance",
                discovered.id
            );
            assert!(
                !endpoint.state.has_connections(),
                "{} has a pool before any call",
                discovered.id
            );
        }

        let called = &snap.endpoints[2];
        let destination = route.destination(called);
        assert_eq!(destination.base_url, "http://127.0.0.1:9002/api");
        assert!(destination.connections.is_some());
        let pooled: Vec<bool> = snap
            .endpoints
            .iter()
            .map(|e| e.state.has_connections())
            .collect();
        assert_eq!(pooled, [false, false, true, false]);

        // A new discovery answer: the rebuilt table points into the new list and keeps the
        // called instance's pool (same address) without creating the others'.
        let mut next: Vec<Instance> = (0..4).map(instance).collect();
        next[0].health = Health::Critical;
        tx.send_replace(Arc::new(InstanceSet::fresh(next, 8)));
        let rebuilt = route.current();
        assert!(Arc::ptr_eq(
            &rebuilt.source.instances,
            &tx.borrow().instances
        ));
        assert_eq!(rebuilt.endpoints[0].weight, 0);
        let again = route.destination(&rebuilt.endpoints[2]);
        assert!(Arc::ptr_eq(
            again.connections.as_ref().expect("http"),
            destination.connections.as_ref().expect("http")
        ));
        assert!(!rebuilt.endpoints[1].state.has_connections());
    }

    #[test]
    fn an_endpoint_stays_small() {
        // The instance is not inside: an index into discovery's list and shared handles.
        assert!(
            std::mem::size_of::<super::Endpoint>() <= 80,
            "{} bytes",
            std::mem::size_of::<super::Endpoint>()
        );
    }
}
