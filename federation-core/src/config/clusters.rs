//! Reading `clusters.<name>` sections from the document tree.
//!
//! Cluster order is the failover tie-break order, so clusters are read in document order. A
//! cluster whose source cannot be read still yields a placeholder entry, so services that
//! reference it are not reported as referencing an unknown cluster as well.

use std::collections::BTreeMap;
use std::path::PathBuf;

use super::error::{Problems, index, join};
use super::model::{
    ClusterConfig, ConnectionSettings, ConsulSource, DefaultHeader, DiscoverySource,
    HeaderValueSource, Secret, StaticInstance, UpstreamTls,
};
use super::policy::LOAD_BALANCING;
use super::read::{self, Fields};
use super::tree::Node;

const CLUSTER_KEYS: &[&str] = &[
    "consul",
    "static",
    "load_balancing",
    "headers",
    "tls",
    "connections",
];
const CONNECTION_KEYS: &[&str] = &[
    "max_idle_per_instance",
    "idle_timeout",
    "connect_timeout",
    "tcp_nodelay",
];
const CONSUL_KEYS: &[&str] = &[
    "address",
    "datacenter",
    "token",
    "token_env",
    "ca_file",
    "wait",
];
const INSTANCE_KEYS: &[&str] = &["id", "address", "port", "tags", "meta", "weight"];
const TLS_KEYS: &[&str] = &["ca_file", "client_cert", "client_key"];

/// Reads the `clusters` map.
pub(crate) fn read_clusters(node: &Node, path: &str, p: &mut Problems) -> Vec<ClusterConfig> {
    let Some(entries) = read::entries(node, path, "a map of cluster name to cluster", p) else {
        return Vec::new();
    };
    read::duplicates(entries, path, p);
    entries
        .iter()
        .map(|(name, node)| read_cluster(name, node, &join(path, name), p))
        .collect()
}

fn read_cluster(name: &str, node: &Node, path: &str, p: &mut Problems) -> ClusterConfig {
    let placeholder = DiscoverySource::Static(BTreeMap::new());
    let mut cluster = ClusterConfig::new(name, placeholder);
    let Some(f) = read::fields(node, path, CLUSTER_KEYS, p) else {
        return cluster;
    };
    // Until a source is read, the cluster holds an empty static placeholder that validation
    // must not report.
    p.cover(&join(path, "static"));
    match (f.get("consul"), f.get("static")) {
        (Some((node, consul_path)), None) => {
            if let Some(consul) = read_consul(node, &consul_path, p) {
                cluster.source = DiscoverySource::Consul(consul);
            }
        }
        (None, Some((node, static_path))) => {
            if let Some(instances) = read_static(node, &static_path, p) {
                cluster.source = DiscoverySource::Static(instances);
                p.uncover(&static_path);
            }
        }
        (Some(_), Some(_)) => p.push_uncovered(
            path,
            None,
            "give exactly one discovery source: either `consul` or `static`, not both",
        ),
        (None, None) => p.push_uncovered(
            path,
            None,
            "no discovery source: add `consul: { address: \"http://host:8500\" }` \
             or `static: { <service>: [ { address, port } ] }`",
        ),
    }
    if let Some((node, path)) = f.get("load_balancing")
        && let Some(lb) = read::choice(node, &path, LOAD_BALANCING, p)
    {
        cluster.load_balancing = lb;
    }
    if let Some((node, path)) = f.get("headers") {
        cluster.headers = read_headers(node, &path, p);
    }
    if let Some((node, path)) = f.get("tls")
        && let Some(t) = read::fields(node, &path, TLS_KEYS, p)
    {
        cluster.tls = Some(UpstreamTls {
            ca_file: file(&t, "ca_file", p),
            client_cert: file(&t, "client_cert", p),
            client_key: file(&t, "client_key", p),
        });
    }
    if let Some((node, path)) = f.get("connections")
        && let Some(c) = read::fields(node, &path, CONNECTION_KEYS, p)
    {
        cluster.connections = read_connections(&c, p);
    }
    cluster
}

fn read_connections(f: &Fields<'_>, p: &mut Problems) -> ConnectionSettings {
    let mut settings = ConnectionSettings::default();
    if let Some((node, path)) = f.get("max_idle_per_instance") {
        settings.max_idle_per_instance = read::u32_value(node, &path, p);
    }
    if let Some((node, path)) = f.get("idle_timeout") {
        settings.idle_timeout = read::duration(node, &path, p);
    }
    if let Some((node, path)) = f.get("connect_timeout") {
        settings.connect_timeout = read::duration(node, &path, p);
    }
    if let Some((node, path)) = f.get("tcp_nodelay") {
        settings.tcp_nodelay = read::boolean(node, &path, p);
    }
    settings
}

fn file(f: &Fields<'_>, key: &str, p: &mut Problems) -> Option<PathBuf> {
    let (node, path) = f.get(key)?;
    read::string(node, &path, p).map(PathBuf::from)
}

fn read_consul(node: &Node, path: &str, p: &mut Problems) -> Option<ConsulSource> {
    let f = read::fields(node, path, CONSUL_KEYS, p)?;
    let address = match f.get("address") {
        Some((node, path)) => read::string(node, &path, p)?,
        None => {
            p.push(
                &join(path, "address"),
                None,
                "missing required field: the agent's base URL, e.g. \"http://consul-zervigo:8500\"",
            );
            return None;
        }
    };
    let mut consul = ConsulSource::new(address);
    if let Some((node, path)) = f.get("datacenter") {
        consul.datacenter = read::string(node, &path, p);
    }
    if let Some((node, path)) = f.get("token") {
        consul.token = read::secret(node, &path, p).map(Secret::new);
    }
    if let Some((node, path)) = f.get("token_env") {
        consul.token_env = read::string(node, &path, p);
    }
    consul.ca_file = file(&f, "ca_file", p);
    if let Some((node, path)) = f.get("wait")
        && let Some(wait) = read::duration(node, &path, p)
    {
        consul.wait = wait;
    }
    Some(consul)
}

fn read_static(
    node: &Node,
    path: &str,
    p: &mut Problems,
) -> Option<BTreeMap<String, Vec<StaticInstance>>> {
    let what = "a map of Consul service name to a list of instances";
    let entries = read::entries(node, path, what, p)?;
    read::duplicates(entries, path, p);
    let mut services = BTreeMap::new();
    for (service, list) in entries {
        let service_path = join(path, service);
        let Node::Seq(items) = list else {
            read::wrong_type(list, &service_path, "a list of instances", p);
            continue;
        };
        let instances = items
            .iter()
            .enumerate()
            .filter_map(|(i, item)| read_instance(item, &index(&service_path, i), p))
            .collect();
        services.insert(service.clone(), instances);
    }
    Some(services)
}

fn read_instance(node: &Node, path: &str, p: &mut Problems) -> Option<StaticInstance> {
    let f = read::fields(node, path, INSTANCE_KEYS, p)?;
    let address = required(&f, "address", path, p, read::string);
    let port = required(&f, "port", path, p, |n, path, p| {
        read::integer(n, path, 1, 65535, p).and_then(|i| u16::try_from(i).ok())
    });
    let mut instance = StaticInstance {
        id: None,
        address: address?,
        port: port?,
        tags: Vec::new(),
        meta: BTreeMap::new(),
        weight: 1,
    };
    if let Some((node, path)) = f.get("id") {
        instance.id = read::string(node, &path, p);
    }
    if let Some((node, path)) = f.get("tags") {
        instance.tags = read::string_list(node, &path, p).unwrap_or_default();
    }
    if let Some((node, path)) = f.get("meta")
        && let Some(entries) = read::entries(node, &path, "a map of strings", p)
    {
        read::duplicates(entries, &path, p);
        for (key, value) in entries {
            if let Some(value) = read::scalar_text(value, &join(&path, key), p) {
                instance.meta.insert(key.clone(), value);
            }
        }
    }
    if let Some((node, path)) = f.get("weight")
        && let Some(weight) = read::integer(node, &path, 1, 65535, p)
    {
        instance.weight = u32::try_from(weight).unwrap_or(1);
    }
    Some(instance)
}

/// A required field read with `reader`; a missing field is reported at `parent.key`.
fn required<T>(
    f: &Fields<'_>,
    key: &str,
    parent: &str,
    p: &mut Problems,
    reader: impl FnOnce(&Node, &str, &mut Problems) -> Option<T>,
) -> Option<T> {
    match f.get(key) {
        Some((node, path)) => reader(node, &path, p),
        None => {
            p.push(
                &join(parent, key),
                None,
                format!("missing required field `{key}`"),
            );
            None
        }
    }
}

fn read_headers(node: &Node, path: &str, p: &mut Problems) -> Vec<DefaultHeader> {
    let what = "a map of header name to a value or { env: VARIABLE }";
    let Some(entries) = read::entries(node, path, what, p) else {
        return Vec::new();
    };
    read::duplicates(entries, path, p);
    let mut headers = Vec::new();
    for (name, value) in entries {
        let header_path = join(path, name);
        let source = match value {
            Node::Str(s) => Some(HeaderValueSource::Value(Secret::new(s.clone()))),
            Node::Map(_) => {
                read::fields(value, &header_path, &["env"], p).and_then(|f| match f.get("env") {
                    Some((node, path)) => read::string(node, &path, p).map(HeaderValueSource::Env),
                    None => {
                        p.push(
                            &join(&header_path, "env"),
                            None,
                            "missing required field `env`",
                        );
                        None
                    }
                })
            }
            other => {
                let kind = other.kind();
                p.push(
                    &header_path,
                    None,
                    format!("expected a string or {{ env: VARIABLE }}, found {kind}"),
                );
                None
            }
        };
        if let Some(value) = source {
            headers.push(DefaultHeader {
                name: name.clone(),
                value,
            });
        }
    }
    headers
}
