//! Reading `services.<name>` sections from the document tree.
//!
//! The same logical service often has another name in each cluster (`user` is `user-service` in
//! zervigo and `looma-user-api` in looma), so `names` maps clusters to Consul names, either as a
//! plain string or as `{ name, tags, path_prefix }`. Without `names` the service exists in every
//! cluster under its logical name. A service-level `path_prefix` applies to every cluster that
//! does not set its own. Policy keys are partial overrides merged onto `defaults`.

use super::error::{Problems, join};
use super::model::{ClusterConfig, Policy, ServiceConfig, ServiceTarget};
use super::policy::{self, POLICY_KEYS};
use super::read;
use super::tree::Node;
use super::validate::check_path_prefix;

const SERVICE_KEYS: &[&str] = &["prefer", "names", "tags", "path_prefix", "split"];
const TARGET_KEYS: &[&str] = &["name", "tags", "path_prefix"];

/// Reads the `services` map. `defaults` is the resolved default policy; `clusters` are the
/// declared clusters (a service-level `path_prefix` without `names` applies to each of them).
pub(crate) fn read_services(
    node: &Node,
    path: &str,
    defaults: &Policy,
    clusters: &[ClusterConfig],
    p: &mut Problems,
) -> Vec<ServiceConfig> {
    let what = "a map of logical service name to service";
    let Some(entries) = read::entries(node, path, what, p) else {
        return Vec::new();
    };
    read::duplicates(entries, path, p);
    entries
        .iter()
        .map(|(name, node)| read_service(name, node, &join(path, name), defaults, clusters, p))
        .collect()
}

fn read_service(
    name: &str,
    node: &Node,
    path: &str,
    defaults: &Policy,
    clusters: &[ClusterConfig],
    p: &mut Problems,
) -> ServiceConfig {
    let mut service = ServiceConfig::new(name);
    let allowed: Vec<&str> = SERVICE_KEYS.iter().chain(POLICY_KEYS).copied().collect();
    let Some(f) = read::fields(node, path, &allowed, p) else {
        return service;
    };
    if let Some((node, path)) = f.get("prefer") {
        service.prefer = read::string(node, &path, p);
    }
    if let Some((node, path)) = f.get("tags") {
        service.tags = read::string_list(node, &path, p).unwrap_or_default();
    }
    if let Some((node, path)) = f.get("split") {
        service.split = super::split::read_split(node, &path, p);
    }
    let prefix = f.get("path_prefix").and_then(|(node, path)| {
        let prefix = read::string(node, &path, p)?;
        match check_path_prefix(&prefix) {
            Ok(()) => Some(prefix),
            Err(message) => {
                p.push(&path, Some(node.render()), message);
                None
            }
        }
    });
    if let Some((node, path)) = f.get("names") {
        service.targets = read_targets(name, node, &path, p);
    } else if prefix.is_some() {
        service.targets = clusters.iter().map(|c| target(&c.name, name)).collect();
    }
    if let Some(prefix) = prefix {
        for target in &mut service.targets {
            target.path_prefix.get_or_insert_with(|| prefix.clone());
        }
    }
    let mut merged = defaults.clone();
    if policy::apply(&mut merged, &f, p) {
        service.policy = Some(merged);
    }
    check_spill_has_prefer(&f, &service, p);
    service
}

/// A service's own `spill` section does nothing without `prefer` (there is no preferred cluster
/// to spill from), so it is reported instead of ignored. Spill inherited from `defaults` stays
/// quiet: it applies to the services that do prefer a cluster.
fn check_spill_has_prefer(f: &read::Fields<'_>, service: &ServiceConfig, p: &mut Problems) {
    let Some((node, path)) = f.get("spill") else {
        return;
    };
    if service.prefer.is_none() && !matches!(node, Node::Bool(false)) {
        p.push(
            &path,
            Some(node.render()),
            "spill moves calls away from a preferred cluster, and this service has no `prefer`; \
             add `prefer: <cluster>` to the service or remove `spill`",
        );
    }
}

fn target(cluster: &str, consul_name: &str) -> ServiceTarget {
    ServiceTarget {
        cluster: cluster.to_owned(),
        consul_name: consul_name.to_owned(),
        tags: Vec::new(),
        path_prefix: None,
    }
}

/// Reads `names`; an unreadable entry still yields a placeholder target (its problem is already
/// reported), so `prefer` is not also reported as naming a cluster without the service.
fn read_targets(service: &str, node: &Node, path: &str, p: &mut Problems) -> Vec<ServiceTarget> {
    let what = "a map of cluster name to a Consul service name or { name, tags, path_prefix }";
    let Some(entries) = read::entries(node, path, what, p) else {
        return Vec::new();
    };
    read::duplicates(entries, path, p);
    let mut targets = Vec::new();
    for (cluster, value) in entries {
        let read = read_target(cluster, value, &join(path, cluster), p);
        targets.push(read.unwrap_or_else(|| target(cluster, service)));
    }
    targets
}

fn read_target(cluster: &str, value: &Node, path: &str, p: &mut Problems) -> Option<ServiceTarget> {
    match value {
        Node::Str(name) => Some(target(cluster, name)),
        Node::Map(_) => {
            let f = read::fields(value, path, TARGET_KEYS, p)?;
            let Some((name_node, name_path)) = f.get("name") else {
                p.push(
                    &join(path, "name"),
                    None,
                    "missing required field `name`: the Consul service name in this cluster",
                );
                return None;
            };
            let mut t = target(cluster, &read::string(name_node, &name_path, p)?);
            if let Some((node, path)) = f.get("tags") {
                t.tags = read::string_list(node, &path, p).unwrap_or_default();
            }
            if let Some((node, path)) = f.get("path_prefix") {
                t.path_prefix = read::string(node, &path, p);
            }
            Some(t)
        }
        other => {
            let what = "a Consul service name or { name, tags, path_prefix }";
            read::wrong_type(other, path, what, p);
            None
        }
    }
}
