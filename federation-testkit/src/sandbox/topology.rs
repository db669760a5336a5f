//! The two clusters of the brief and the logical services over them, as data.
//!
//! One table drives everything: which instances start, how they are registered, the typed
//! [`Config`] and its YAML text. Keeping them in one place means the configuration a demo writes
//! to disk can never disagree with what the sandbox actually runs.

use std::time::Duration;

use federation_core::config::{
    CachePolicy, ClusterConfig, Config, ConsulSource, DiscoverySource, LoadBalancing, Policy,
    ServiceConfig, ServiceTarget,
};

/// A seed cluster: name, Consul datacenter, balancing policy and Consul service names.
#[derive(Debug)]
pub(crate) struct SeedCluster {
    pub(crate) name: &'static str,
    pub(crate) datacenter: &'static str,
    pub(crate) load_balancing: LoadBalancing,
    pub(crate) services: &'static [&'static str],
    /// First Raft index of the cluster's double; far apart so a leaked index is visible.
    pub(crate) initial_index: u64,
}

/// zervigo (Go services) and looma (Python services).
pub(crate) const CLUSTERS: [SeedCluster; 2] = [
    SeedCluster {
        name: "zervigo",
        datacenter: "zervigo-dc",
        load_balancing: LoadBalancing::LeastRequest,
        services: &[
            "basic-server",
            "user-service",
            "resume-service",
            "company-service",
            "job-service",
        ],
        initial_index: 1_000,
    },
    SeedCluster {
        name: "looma",
        datacenter: "looma-dc",
        load_balancing: LoadBalancing::RoundRobin,
        services: &[
            "looma-api-gateway",
            "looma-user-api",
            "looma-resume-api",
            "ai-service",
            "resume-processing",
        ],
        initial_index: 5_000_000_000,
    },
];

/// The Consul service whose instances carry model tags.
pub(crate) const AI_SERVICE: &str = "ai-service";
/// Tag of the regular ai-service instances.
pub(crate) const AI_V2_TAG: &str = "model=v2";
/// Tag of the extra ai-service instances.
pub(crate) const AI_V3_TAG: &str = "model=v3";

/// A logical service over the seed clusters.
#[derive(Debug)]
pub(crate) struct Logical {
    pub(crate) name: &'static str,
    pub(crate) prefer: Option<&'static str>,
    /// (cluster, Consul name) pairs.
    pub(crate) names: &'static [(&'static str, &'static str)],
    pub(crate) tags: &'static [&'static str],
    /// Cache inference results (ttl 30 s, GET and POST).
    pub(crate) cached: bool,
}

/// TTL of the ai service cache.
pub(crate) const AI_CACHE_TTL: Duration = Duration::from_secs(30);

/// The logical services callers use.
pub(crate) const LOGICAL: [Logical; 8] = [
    Logical {
        name: "user",
        prefer: Some("zervigo"),
        names: &[("zervigo", "user-service"), ("looma", "looma-user-api")],
        tags: &[],
        cached: false,
    },
    Logical {
        name: "resume",
        prefer: Some("zervigo"),
        names: &[("zervigo", "resume-service"), ("looma", "looma-resume-api")],
        tags: &[],
        cached: false,
    },
    Logical {
        name: "basic",
        prefer: None,
        names: &[("zervigo", "basic-server")],
        tags: &[],
        cached: false,
    },
    Logical {
        name: "company",
        prefer: None,
        names: &[("zervigo", "company-service")],
        tags: &[],
        cached: false,
    },
    Logical {
        name: "job",
        prefer: None,
        names: &[("zervigo", "job-service")],
        tags: &[],
        cached: false,
    },
    Logical {
        name: "gateway",
        prefer: None,
        names: &[("looma", "looma-api-gateway")],
        tags: &[],
        cached: false,
    },
    Logical {
        name: "ai",
        prefer: Some("looma"),
        names: &[("looma", AI_SERVICE)],
        tags: &[AI_V2_TAG],
        cached: true,
    },
    Logical {
        name: "resume-processing",
        prefer: Some("looma"),
        names: &[("looma", "resume-processing")],
        tags: &[],
        cached: false,
    },
];

/// The cache policy of cached logical services.
pub(crate) fn ai_cache() -> CachePolicy {
    CachePolicy {
        ttl: AI_CACHE_TTL,
        methods: vec!["GET".to_owned(), "POST".to_owned()],
        ..CachePolicy::default()
    }
}

/// The client configuration for doubles listening at `consul_urls` (same order as
/// [`CLUSTERS`]).
pub(crate) fn build_config(consul_urls: &[String], wait: Duration) -> Config {
    let clusters = CLUSTERS
        .iter()
        .zip(consul_urls)
        .map(|(seed, url)| {
            let mut source = ConsulSource::new(url.clone());
            source.datacenter = Some(seed.datacenter.to_owned());
            source.wait = wait;
            let mut cluster = ClusterConfig::new(seed.name, DiscoverySource::Consul(source));
            cluster.load_balancing = seed.load_balancing;
            cluster
        })
        .collect();
    let services = LOGICAL
        .iter()
        .map(|logical| {
            let mut service = ServiceConfig::new(logical.name);
            service.prefer = logical.prefer.map(str::to_owned);
            service.tags = logical.tags.iter().map(|t| (*t).to_owned()).collect();
            service.targets = logical
                .names
                .iter()
                .map(|(cluster, consul_name)| ServiceTarget {
                    cluster: (*cluster).to_owned(),
                    consul_name: (*consul_name).to_owned(),
                    tags: Vec::new(),
                    path_prefix: None,
                })
                .collect();
            if logical.cached {
                service.policy = Some(Policy {
                    cache: Some(ai_cache()),
                    ..Policy::default()
                });
            }
            service
        })
        .collect();
    Config {
        clusters,
        services,
        defaults: Policy::default(),
        sync: None,
        discovery: Default::default(),
    }
}
