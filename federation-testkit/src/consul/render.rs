//! JSON rendering of health and catalog entries with Consul's exact keys and null rules.
//!
//! serde is case-sensitive and Consul's JSON follows Go's `omitempty` rules, so a double that
//! emitted `{"address": …}`, `"Port": 0` or `"Tags": null` would let a client pass tests and then
//! fail on a real agent. These structs reproduce the wire form of `structs.CheckServiceNode`
//! and `structs.ServiceNode`: PascalCase keys, `Port` omitted when 0 (health only), `Meta` as
//! `null` when never set, `Tags`/`ServiceTags` as `[]`, service `TaggedAddresses` as
//! `{Address, Port}` objects (omitted when empty), a passing `serfHealth` node check first in
//! every `Checks` array, and `CreateIndex`/`ModifyIndex` everywhere.

use std::collections::BTreeMap;

use serde::Serialize;
use serde_json::{Value, json};

use super::duration::format_go_duration;
use super::options::CheckStatus;
use super::registration::{CheckKind, ServiceAddress, ServiceSpec, Weights};
use super::state::{Catalog, CheckEntry, NodeInfo, ServiceEntry};

/// One `/v1/health/service` entry.
#[derive(Debug, Serialize)]
#[serde(rename_all = "PascalCase")]
pub(crate) struct HealthEntry {
    node: NodeJson,
    service: ServiceJson,
    checks: Vec<CheckJson>,
}

impl HealthEntry {
    /// Whether every check (node checks included) is passing: the `?passing` rule.
    pub(crate) fn all_passing(&self) -> bool {
        self.checks
            .iter()
            .all(|check| check.status == CheckStatus::Passing.as_str())
    }
}

#[derive(Debug, Serialize)]
#[serde(rename_all = "PascalCase")]
struct NodeJson {
    #[serde(rename = "ID")]
    id: String,
    node: String,
    address: String,
    datacenter: String,
    tagged_addresses: BTreeMap<String, String>,
    meta: BTreeMap<String, String>,
    create_index: u64,
    modify_index: u64,
}

#[derive(Debug, Serialize)]
#[serde(rename_all = "PascalCase")]
struct ServiceJson {
    #[serde(skip_serializing_if = "String::is_empty")]
    kind: String,
    #[serde(rename = "ID")]
    id: String,
    service: String,
    tags: Vec<String>,
    address: String,
    #[serde(skip_serializing_if = "BTreeMap::is_empty")]
    tagged_addresses: BTreeMap<String, ServiceAddress>,
    meta: Option<BTreeMap<String, String>>,
    #[serde(skip_serializing_if = "is_zero")]
    port: u16,
    #[serde(skip_serializing_if = "String::is_empty")]
    socket_path: String,
    weights: Weights,
    enable_tag_override: bool,
    proxy: Value,
    connect: Value,
    peer_name: String,
    create_index: u64,
    modify_index: u64,
}

fn is_zero(port: &u16) -> bool {
    *port == 0
}

#[derive(Debug, Serialize)]
#[serde(rename_all = "PascalCase")]
pub(crate) struct CheckJson {
    node: String,
    #[serde(rename = "CheckID")]
    check_id: String,
    name: String,
    status: &'static str,
    notes: String,
    output: String,
    #[serde(rename = "ServiceID")]
    service_id: String,
    service_name: String,
    service_tags: Vec<String>,
    #[serde(rename = "Type")]
    kind: &'static str,
    interval: String,
    timeout: String,
    exposed_port: u16,
    definition: Value,
    create_index: u64,
    modify_index: u64,
}

/// One flat `/v1/catalog/service` entry (`structs.ServiceNode`).
#[derive(Debug, Serialize)]
#[serde(rename_all = "PascalCase")]
pub(crate) struct CatalogEntry {
    #[serde(rename = "ID")]
    id: String,
    node: String,
    address: String,
    datacenter: String,
    tagged_addresses: BTreeMap<String, String>,
    node_meta: BTreeMap<String, String>,
    service_kind: String,
    #[serde(rename = "ServiceID")]
    service_id: String,
    service_name: String,
    service_tags: Vec<String>,
    service_address: String,
    #[serde(skip_serializing_if = "BTreeMap::is_empty")]
    service_tagged_addresses: BTreeMap<String, ServiceAddress>,
    service_weights: Weights,
    service_meta: Option<BTreeMap<String, String>>,
    service_port: u16,
    service_socket_path: String,
    service_enable_tag_override: bool,
    service_proxy: Value,
    service_connect: Value,
    create_index: u64,
    modify_index: u64,
}

fn node_json(node: &NodeInfo) -> NodeJson {
    let tagged = ["lan", "lan_ipv4", "wan", "wan_ipv4"]
        .into_iter()
        .map(|key| (key.to_owned(), node.address.clone()))
        .collect();
    NodeJson {
        id: node.id.clone(),
        node: node.name.clone(),
        address: node.address.clone(),
        datacenter: node.datacenter.clone(),
        tagged_addresses: tagged,
        meta: node_meta(),
        create_index: node.create_index,
        modify_index: node.create_index,
    }
}

pub(crate) fn node_meta() -> BTreeMap<String, String> {
    BTreeMap::from([("consul-network-segment".to_owned(), String::new())])
}

/// `Proxy` as Consul renders it: the registered object over the defaults every service shows.
pub(crate) fn proxy(spec: &ServiceSpec) -> Value {
    let mut proxy = json!({"Mode": "", "MeshGateway": {}, "Expose": {}});
    if let (Some(Value::Object(given)), Value::Object(out)) = (&spec.proxy, &mut proxy) {
        for (key, value) in given {
            out.insert(key.clone(), value.clone());
        }
    }
    proxy
}

/// `Connect` as registered (`{}` when not given).
pub(crate) fn connect(spec: &ServiceSpec) -> Value {
    spec.connect.clone().unwrap_or_else(|| json!({}))
}

fn serf_check(node: &NodeInfo) -> CheckJson {
    CheckJson {
        node: node.name.clone(),
        check_id: "serfHealth".to_owned(),
        name: "Serf Health Status".to_owned(),
        status: CheckStatus::Passing.as_str(),
        notes: String::new(),
        output: "Agent alive and reachable".to_owned(),
        service_id: String::new(),
        service_name: String::new(),
        service_tags: Vec::new(),
        kind: "",
        interval: String::new(),
        timeout: String::new(),
        exposed_port: 0,
        definition: json!({}),
        create_index: node.create_index,
        modify_index: node.create_index,
    }
}

pub(crate) fn check_json(node: &NodeInfo, service: &ServiceEntry, check: &CheckEntry) -> CheckJson {
    let (kind, interval, timeout) = match &check.kind {
        None => ("", String::new(), String::new()),
        Some(CheckKind::Ttl(_)) => ("ttl", String::new(), String::new()),
        Some(CheckKind::Http(probe)) => (
            "http",
            format_go_duration(probe.interval),
            if probe.timeout_given {
                format_go_duration(probe.timeout)
            } else {
                String::new()
            },
        ),
        Some(kind @ CheckKind::Tcp { interval, .. }) => (
            kind.type_name(),
            format_go_duration(*interval),
            String::new(),
        ),
    };
    CheckJson {
        node: node.name.clone(),
        check_id: check.id.clone(),
        name: check.name.clone(),
        status: check.status.as_str(),
        notes: check.notes.clone(),
        output: check.output.clone(),
        service_id: service.spec.id.clone(),
        service_name: service.spec.name.clone(),
        service_tags: service.spec.tags.clone(),
        kind,
        interval,
        timeout,
        exposed_port: 0,
        definition: json!({}),
        create_index: check.create_index,
        modify_index: check.modify_index,
    }
}

/// Whether a service carries every wanted tag (AND, case-insensitive).
fn has_tags(service: &ServiceEntry, tags: &[String]) -> bool {
    tags.iter().all(|wanted| {
        service
            .spec
            .tags
            .iter()
            .any(|tag| tag.eq_ignore_ascii_case(wanted))
    })
}

/// The service checks of every instance of `name` (`/v1/health/checks/:service`; node checks
/// such as `serfHealth` are not service checks).
pub(crate) fn service_checks(catalog: &Catalog, name: &str) -> Vec<CheckJson> {
    catalog
        .instances(name)
        .flat_map(|service| {
            catalog
                .checks_of(&service.spec.id)
                .map(|check| check_json(&catalog.node, service, check))
        })
        .collect()
}

/// The health entries of `name` carrying all `tags`, unfiltered by health.
pub(crate) fn health_entries(catalog: &Catalog, name: &str, tags: &[String]) -> Vec<HealthEntry> {
    catalog
        .instances(name)
        .filter(|service| has_tags(service, tags))
        .map(|service| {
            let mut checks = vec![serf_check(&catalog.node)];
            checks.extend(
                catalog
                    .checks_of(&service.spec.id)
                    .map(|check| check_json(&catalog.node, service, check)),
            );
            HealthEntry {
                node: node_json(&catalog.node),
                service: ServiceJson {
                    kind: service.spec.kind.clone(),
                    id: service.spec.id.clone(),
                    service: service.spec.name.clone(),
                    tags: service.spec.tags.clone(),
                    address: service.spec.address.clone(),
                    tagged_addresses: service.spec.tagged_addresses.clone(),
                    meta: service.spec.meta.clone(),
                    port: service.spec.port,
                    socket_path: service.spec.socket_path.clone(),
                    weights: service.spec.weights,
                    enable_tag_override: service.spec.enable_tag_override,
                    proxy: proxy(&service.spec),
                    connect: connect(&service.spec),
                    peer_name: String::new(),
                    create_index: service.create_index,
                    modify_index: service.modify_index,
                },
                checks,
            }
        })
        .collect()
}

/// The flat catalog entries of `name` carrying all `tags` (no health information).
pub(crate) fn catalog_entries(catalog: &Catalog, name: &str, tags: &[String]) -> Vec<CatalogEntry> {
    let node = &catalog.node;
    catalog
        .instances(name)
        .filter(|service| has_tags(service, tags))
        .map(|service| CatalogEntry {
            id: node.id.clone(),
            node: node.name.clone(),
            address: node.address.clone(),
            datacenter: node.datacenter.clone(),
            tagged_addresses: node_json(node).tagged_addresses,
            node_meta: node_meta(),
            service_kind: service.spec.kind.clone(),
            service_id: service.spec.id.clone(),
            service_name: service.spec.name.clone(),
            service_tags: service.spec.tags.clone(),
            service_address: service.spec.address.clone(),
            service_tagged_addresses: service.spec.tagged_addresses.clone(),
            service_weights: service.spec.weights,
            service_meta: service.spec.meta.clone(),
            service_port: service.spec.port,
            service_socket_path: service.spec.socket_path.clone(),
            service_enable_tag_override: service.spec.enable_tag_override,
            service_proxy: proxy(&service.spec),
            service_connect: connect(&service.spec),
            create_index: service.create_index,
            modify_index: service.modify_index,
        })
        .collect()
}

/// The flat catalog entries of every service (the input of `/v1/catalog/services`).
pub(crate) fn all_catalog_entries(catalog: &Catalog) -> Vec<CatalogEntry> {
    let mut names: Vec<&str> = catalog
        .services
        .values()
        .map(|service| service.spec.name.as_str())
        .collect();
    names.sort_unstable_by_key(|name| name.to_lowercase());
    names.dedup_by(|a, b| a.eq_ignore_ascii_case(b));
    names
        .into_iter()
        .flat_map(|name| catalog_entries(catalog, name, &[]))
        .collect()
}

/// The `/v1/catalog/services` map: name → sorted union of tags, always with `"consul": []`.
pub(crate) fn catalog_services(entries: &[CatalogEntry]) -> BTreeMap<String, Vec<String>> {
    let mut map: BTreeMap<String, Vec<String>> =
        BTreeMap::from([("consul".to_owned(), Vec::new())]);
    for entry in entries {
        let tags = map.entry(entry.service_name.clone()).or_default();
        for tag in &entry.service_tags {
            if !tags.contains(tag) {
                tags.push(tag.clone());
            }
        }
    }
    for tags in map.values_mut() {
        tags.sort();
    }
    map
}

/// `/v1/agent/self`: enough for an SDK to verify the datacenter it talks to.
pub(crate) fn agent_self(node: &NodeInfo, port: u16) -> Value {
    json!({
        "Config": {
            "Datacenter": node.datacenter,
            "NodeName": node.name,
            "NodeID": node.id,
            "Server": true,
            "Revision": "consul-double",
            "Version": "1.16.4",
        },
        "Member": {
            "Name": node.name,
            "Addr": node.address,
            "Port": 8301,
            "Tags": {"dc": node.datacenter, "role": "consul", "port": "8300", "http_port": port.to_string()},
            "Status": 1,
        },
        "Meta": {"consul-network-segment": ""},
    })
}
