//! The configuration the sandbox hands out is valid, names the right Consul services per
//! cluster, and its YAML text parses back to the same configuration.

use federation_core::config::{Config, ConfigFormat, DiscoverySource, LoadBalancing};
use federation_testkit::sandbox::{Sandbox, SandboxOptions};

async fn sandbox() -> Sandbox {
    Sandbox::start(SandboxOptions::default().instances_per_service(1))
        .await
        .expect("sandbox starts")
}

fn target<'a>(config: &'a Config, service: &str, cluster: &str) -> Option<&'a str> {
    config
        .service(service)
        .expect("service configured")
        .targets
        .iter()
        .find(|t| t.cluster == cluster)
        .map(|t| t.consul_name.as_str())
}

#[tokio::test]
async fn config_names_clusters_services_and_policies() {
    let sandbox = sandbox().await;
    let config = sandbox.config();
    config.validate().expect("sandbox config is valid");

    let names: Vec<&str> = config.clusters.iter().map(|c| c.name.as_str()).collect();
    assert_eq!(names, ["zervigo", "looma"]);
    let zervigo = config.cluster("zervigo").expect("zervigo");
    assert_eq!(zervigo.load_balancing, LoadBalancing::LeastRequest);
    let looma = config.cluster("looma").expect("looma");
    assert_eq!(looma.load_balancing, LoadBalancing::RoundRobin);
    for (cluster, dc) in [(zervigo, "zervigo-dc"), (looma, "looma-dc")] {
        let DiscoverySource::Consul(source) = &cluster.source else {
            panic!("{} should use Consul", cluster.name);
        };
        assert_eq!(source.address, sandbox.consul(&cluster.name).url());
        assert_eq!(source.datacenter.as_deref(), Some(dc));
    }

    assert_eq!(target(&config, "user", "zervigo"), Some("user-service"));
    assert_eq!(target(&config, "user", "looma"), Some("looma-user-api"));
    assert_eq!(target(&config, "resume", "looma"), Some("looma-resume-api"));
    assert_eq!(target(&config, "basic", "zervigo"), Some("basic-server"));
    assert_eq!(target(&config, "basic", "looma"), None);
    assert_eq!(
        target(&config, "gateway", "looma"),
        Some("looma-api-gateway")
    );
    assert_eq!(
        target(&config, "resume-processing", "looma"),
        Some("resume-processing")
    );
    assert_eq!(
        config.service("user").and_then(|s| s.prefer.as_deref()),
        Some("zervigo")
    );

    let ai = config.service("ai").expect("ai");
    assert_eq!(ai.prefer.as_deref(), Some("looma"));
    assert_eq!(ai.tags, ["model=v2"]);
    let cache = config
        .policy_for(ai)
        .cache
        .as_ref()
        .expect("ai responses are cached");
    assert_eq!(cache.ttl.as_secs(), 30);
    assert_eq!(cache.methods, ["GET", "POST"]);

    // Every Consul name the config mentions exists in that cluster's sandbox.
    for service in &config.services {
        for t in &service.targets {
            assert!(
                sandbox.try_instances(&t.cluster, &t.consul_name).is_some(),
                "{} -> {}/{}",
                service.name,
                t.cluster,
                t.consul_name
            );
        }
    }
    sandbox.shutdown().await;
}

#[tokio::test]
async fn yaml_parses_back_to_the_same_config() {
    let sandbox = sandbox().await;
    let yaml = sandbox.config_yaml();
    let parsed = Config::parse(&yaml, ConfigFormat::Yaml)
        .unwrap_or_else(|e| panic!("sandbox YAML parses: {e}\n{yaml}"));
    assert_eq!(parsed, sandbox.config(), "\n{yaml}");
    sandbox.shutdown().await;
}
