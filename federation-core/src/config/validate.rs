//! Semantic validation of a typed [`Config`], shared by files and code-built configs.
//!
//! A configuration that parses can still be unusable: a service preferring a cluster nobody
//! declared, an attempt timeout longer than the whole call, a Consul address without a scheme.
//! Such mistakes surface at 3 a.m. as "no healthy instance" unless caught at load time. Every
//! check here runs on the typed model (so configs built in code get the same checks) and reports
//! with file-schema paths (`services.user.names.looma`), collecting every problem.

use std::collections::HashSet;

use super::error::{Problems, index, join};
use super::model::{Config, ServiceConfig};
use super::suggest;
use super::validate_cluster::check_cluster;
use super::validate_policy::check_policy;

/// Runs every semantic check.
pub(crate) fn validate(config: &Config, p: &mut Problems) {
    if config.clusters.is_empty() {
        p.push(
            "clusters",
            None,
            "declare at least one cluster, e.g. `clusters: { local: { static: { ... } } }`",
        );
    }
    let mut seen = HashSet::new();
    for cluster in &config.clusters {
        let path = join("clusters", &cluster.name);
        if !seen.insert(cluster.name.as_str()) {
            p.push(&path, None, "cluster declared more than once");
        }
        check_cluster(cluster, &path, p);
    }
    let mut seen = HashSet::new();
    for service in &config.services {
        let path = join("services", &service.name);
        if !seen.insert(service.name.as_str()) {
            p.push(&path, None, "service declared more than once");
        }
        check_service(config, service, &path, p);
    }
    let mut defaults = Problems::default();
    check_policy(&config.defaults, "", &mut defaults);
    let defaults = defaults.into_vec();
    for problem in &defaults {
        let mut problem = problem.clone();
        problem.path = join("defaults", &problem.path);
        p.push_problem(problem);
    }
    for service in &config.services {
        let Some(policy) = &service.policy else {
            continue;
        };
        let mut own = Problems::default();
        check_policy(policy, "", &mut own);
        // A problem inherited unchanged from `defaults` is reported once, there.
        own.retain(|problem| !defaults.contains(problem));
        let base = join("services", &service.name);
        for mut problem in own.into_vec() {
            problem.path = join(&base, &problem.path);
            p.push_problem(problem);
        }
    }
}

/// Checks a cluster or service name.
pub(crate) fn check_name(name: &str, what: &str, path: &str, p: &mut Problems) {
    let ok = !name.is_empty()
        && name
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.'));
    if !ok {
        p.push(
            path,
            Some(format!("\"{name}\"")),
            format!("invalid {what} name; use letters, digits, `-`, `_` and `.`"),
        );
    }
}

/// Checks a path prefix such as `/api`.
pub(crate) fn check_path_prefix(prefix: &str) -> Result<(), String> {
    if !prefix.starts_with('/') || prefix == "/" || prefix.ends_with('/') {
        return Err(
            "expected a path starting with `/` and not ending with `/`, e.g. \"/api\"".to_owned(),
        );
    }
    if prefix.contains(['?', '#', ' ']) {
        return Err("a path prefix must not contain `?`, `#` or spaces".to_owned());
    }
    Ok(())
}

fn check_service(config: &Config, service: &ServiceConfig, path: &str, p: &mut Problems) {
    check_name(&service.name, "service", path, p);
    let declared = || config.clusters.iter().map(|c| c.name.as_str());
    let unknown_cluster = |name: &str| {
        format!(
            "unknown cluster{}; declared clusters: {}",
            suggest::hint(name, declared()),
            suggest::list(declared())
        )
    };
    let names_path = join(path, "names");
    let mut mapped = HashSet::new();
    for target in &service.targets {
        let path = join(&names_path, &target.cluster);
        if config.cluster(&target.cluster).is_none() {
            p.push(
                &path,
                Some(format!("\"{}\"", target.cluster)),
                unknown_cluster(&target.cluster),
            );
        }
        if !mapped.insert(target.cluster.as_str()) {
            p.push(&path, None, "cluster mapped more than once");
        }
        if target.consul_name.trim().is_empty() {
            p.push(&path, Some("\"\"".to_owned()), "empty Consul service name");
        }
        for (i, tag) in target.tags.iter().enumerate() {
            if tag.is_empty() {
                p.push(
                    &index(&join(&path, "tags"), i),
                    Some("\"\"".to_owned()),
                    "empty tag",
                );
            }
        }
        if let Some(prefix) = &target.path_prefix
            && let Err(message) = check_path_prefix(prefix)
        {
            p.push(
                &join(&path, "path_prefix"),
                Some(format!("\"{prefix}\"")),
                message,
            );
        }
    }
    for (i, tag) in service.tags.iter().enumerate() {
        if tag.is_empty() {
            p.push(
                &index(&join(path, "tags"), i),
                Some("\"\"".to_owned()),
                "empty tag",
            );
        }
    }
    if let Some(split) = &service.split {
        super::validate_split::check_split(config, service, split, &join(path, "split"), p);
    }
    if let Some(prefer) = &service.prefer {
        let prefer_path = join(path, "prefer");
        let value = Some(format!("\"{prefer}\""));
        if config.cluster(prefer).is_none() {
            p.push(&prefer_path, value, unknown_cluster(prefer));
        } else if !service.targets.is_empty() && !mapped.contains(prefer.as_str()) {
            let clusters: Vec<&str> = service.targets.iter().map(|t| t.cluster.as_str()).collect();
            p.push(
                &prefer_path,
                value,
                format!(
                    "the service does not exist in this cluster: `names` maps it only in {}; \
                     prefer one of those or add this cluster to `names`",
                    suggest::list(clusters)
                ),
            );
        }
    }
}
