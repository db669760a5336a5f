//! Parsing `GET /v1/health/service/:name` answers into [`Instance`]s.
//!
//! Consul's JSON follows Go `omitempty` rules: `Port` is absent when 0, `Meta` may be `null`,
//! `Weights` may be missing, Enterprise adds fields. A strict parser would crash or drop the whole
//! answer on any of these, so every field here is optional with a default (`null` included) and
//! unknown fields are ignored. What cannot be understood at all (not a JSON array) is an error for
//! that poll; a single unusable entry (no address, port 0) is skipped with a warning.
//!
//! Health is computed from **all** checks of an entry, node checks (`serfHealth`) and maintenance
//! checks included: any `critical` (or unknown status) → `Critical`, else any `warning` →
//! `Warning`, else `Passing`.

use std::collections::BTreeMap;

use serde::{Deserialize, Deserializer};

use crate::discovery::{Health, Instance, Weights};

/// Largest weight Consul accepts.
const MAX_WEIGHT: i64 = 65_535;

/// Deserializes `null` (or an absent field, with `#[serde(default)]`) as `T::default()`.
fn null_default<'de, D, T>(de: D) -> Result<T, D::Error>
where
    D: Deserializer<'de>,
    T: Deserialize<'de> + Default,
{
    Ok(Option::<T>::deserialize(de)?.unwrap_or_default())
}

/// One `{Node, Service, Checks}` entry.
#[derive(Debug, Default, Deserialize)]
#[serde(default)]
struct Entry {
    #[serde(rename = "Node", deserialize_with = "null_default")]
    node: Node,
    #[serde(rename = "Service", deserialize_with = "null_default")]
    service: Service,
    #[serde(rename = "Checks", deserialize_with = "null_default")]
    checks: Vec<Check>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(default)]
struct Node {
    #[serde(rename = "Node", deserialize_with = "null_default")]
    name: String,
    #[serde(rename = "Address", deserialize_with = "null_default")]
    address: String,
    #[serde(rename = "Datacenter", deserialize_with = "null_default")]
    datacenter: String,
}

#[derive(Debug, Default, Deserialize)]
#[serde(default)]
struct Service {
    #[serde(rename = "ID", deserialize_with = "null_default")]
    id: String,
    #[serde(rename = "Service", deserialize_with = "null_default")]
    name: String,
    #[serde(rename = "Tags", deserialize_with = "null_default")]
    tags: Vec<String>,
    #[serde(rename = "Address", deserialize_with = "null_default")]
    address: String,
    #[serde(rename = "Meta", deserialize_with = "null_default")]
    meta: BTreeMap<String, String>,
    #[serde(rename = "Port", deserialize_with = "null_default")]
    port: i64,
    #[serde(rename = "Weights", deserialize_with = "null_default")]
    weights: WireWeights,
}

#[derive(Debug, Deserialize)]
#[serde(default)]
struct WireWeights {
    #[serde(rename = "Passing", deserialize_with = "null_default")]
    passing: i64,
    #[serde(rename = "Warning", deserialize_with = "null_default")]
    warning: i64,
}

impl Default for WireWeights {
    fn default() -> Self {
        Self {
            passing: 1,
            warning: 1,
        }
    }
}

#[derive(Debug, Default, Deserialize)]
#[serde(default)]
struct Check {
    #[serde(rename = "CheckID", deserialize_with = "null_default")]
    id: String,
    #[serde(rename = "Status", deserialize_with = "null_default")]
    status: String,
}

/// Why an answer could not be used.
#[derive(Debug)]
pub(crate) struct WireError(pub(crate) String);

/// The result of parsing one answer: usable instances and the datacenter they report.
#[derive(Debug, Default)]
pub(crate) struct Parsed {
    /// Instances, sorted by key for stable comparison.
    pub(crate) instances: Vec<Instance>,
    /// The first non-empty `Node.Datacenter` seen (to detect a mis-pointed address).
    pub(crate) datacenter: Option<String>,
}

/// Parses a `/v1/health/service` body. `service` is only used in log messages.
pub(crate) fn parse_health(service: &str, body: &[u8]) -> Result<Parsed, WireError> {
    let entries: Option<Vec<Entry>> = serde_json::from_slice(body)
        .map_err(|e| WireError(format!("invalid /v1/health/service answer: {e}")))?;
    let entries = entries.ok_or_else(|| {
        WireError("invalid /v1/health/service answer: `null` instead of an array".to_owned())
    })?;
    let mut parsed = Parsed::default();
    for entry in entries {
        if parsed.datacenter.is_none() && !entry.node.datacenter.is_empty() {
            parsed.datacenter = Some(entry.node.datacenter.clone());
        }
        if let Some(instance) = to_instance(service, entry) {
            parsed.instances.push(instance);
        }
    }
    parsed
        .instances
        .sort_by(|a, b| (&a.node, &a.id).cmp(&(&b.node, &b.id)));
    Ok(parsed)
}

/// Converts one entry, or `None` (logged) when it cannot receive traffic at all.
fn to_instance(service: &str, entry: Entry) -> Option<Instance> {
    let Entry {
        node,
        service: svc,
        checks,
    } = entry;
    let raw_host = if svc.address.trim().is_empty() {
        node.address.trim()
    } else {
        svc.address.trim()
    };
    let host = raw_host
        .strip_prefix('[')
        .and_then(|h| h.strip_suffix(']'))
        .unwrap_or(raw_host)
        .to_owned();
    let port = match u16::try_from(svc.port) {
        Ok(p) if p != 0 => p,
        _ => {
            tracing::warn!(
                service,
                instance = %svc.id,
                node = %node.name,
                port = svc.port,
                "skipping Consul instance without a usable port"
            );
            return None;
        }
    };
    if host.is_empty() {
        tracing::warn!(
            service,
            instance = %svc.id,
            node = %node.name,
            "skipping Consul instance without Service.Address or Node.Address"
        );
        return None;
    }
    let id = if svc.id.is_empty() {
        if svc.name.is_empty() {
            format!("{host}:{port}")
        } else {
            svc.name.clone()
        }
    } else {
        svc.id
    };
    let weights = Weights {
        passing: clamp_weight(svc.weights.passing),
        warning: clamp_weight(svc.weights.warning),
    };
    Some(Instance {
        id,
        node: node.name,
        host,
        port,
        tags: svc.tags,
        meta: svc.meta,
        weights,
        health: health_of(&checks),
    })
}

fn clamp_weight(w: i64) -> u32 {
    // Non-negative and at most 65535 after the clamp, so the conversion cannot fail.
    u32::try_from(w.clamp(0, MAX_WEIGHT)).unwrap_or(1)
}

/// Health from every check: critical (or unknown) beats warning beats passing.
fn health_of(checks: &[Check]) -> Health {
    let mut health = Health::Passing;
    for check in checks {
        let status = match check.status.to_ascii_lowercase().as_str() {
            "passing" => Health::Passing,
            "warning" => Health::Warning,
            "critical" => Health::Critical,
            other => {
                tracing::debug!(check = %check.id, status = other, "unknown check status, treated as critical");
                Health::Critical
            }
        };
        health = health.max(status);
    }
    health
}

#[cfg(test)]
#[path = "wire_tests.rs"]
mod tests;
