//! Agent read endpoints: `/v1/agent/services`, `/v1/agent/service/:id`, `/v1/agent/checks`.
//!
//! Service code built on the official clients reads back what it registered from the local
//! agent (`Agent().Services()`, `agent.checks()` in py-consul), not from the catalog; a double
//! without these endpoints answers them with 404 and such code cannot start. The agent's view
//! differs from the catalog's: maps keyed by id instead of lists, no `serfHealth` node check,
//! no `X-Consul-Index` (agent state is not in Raft; `/agent/service/:id` blocks on a content
//! hash instead and sends `X-Consul-ContentHash`), and the service shape of `api.AgentService`
//! (`Service` for the name, `Datacenter`, `Proxy`/`Connect` only when registered).

use std::collections::BTreeMap;
use std::collections::hash_map::DefaultHasher;
use std::hash::{Hash as _, Hasher as _};

use serde::Serialize;
use serde_json::Value;

use super::acl::Caller;
use super::duration::parse_go_duration;
use super::http::{Rejection, Reply, Req, json, reject, set_header, text};
use super::params::{parse_filter, selects};
use super::registration::{ServiceAddress, Weights};
use super::render::{self, CheckJson};
use super::shared::Shared;
use super::state::{Catalog, ServiceEntry};
use super::waiters::{Topic, Waited, effective_wait, wait_for_wake};

/// `api.AgentService` as the agent renders it.
#[derive(Debug, Serialize)]
#[serde(rename_all = "PascalCase")]
struct AgentService {
    #[serde(skip_serializing_if = "String::is_empty")]
    kind: String,
    #[serde(rename = "ID")]
    id: String,
    service: String,
    tags: Vec<String>,
    meta: BTreeMap<String, String>,
    port: u16,
    address: String,
    #[serde(skip_serializing_if = "String::is_empty")]
    socket_path: String,
    #[serde(skip_serializing_if = "BTreeMap::is_empty")]
    tagged_addresses: BTreeMap<String, ServiceAddress>,
    weights: Weights,
    enable_tag_override: bool,
    #[serde(skip_serializing_if = "Option::is_none")]
    proxy: Option<Value>,
    #[serde(skip_serializing_if = "Option::is_none")]
    connect: Option<Value>,
    #[serde(skip_serializing_if = "String::is_empty")]
    content_hash: String,
    datacenter: String,
}

fn agent_service(catalog: &Catalog, service: &ServiceEntry) -> AgentService {
    let spec = &service.spec;
    AgentService {
        kind: spec.kind.clone(),
        id: spec.id.clone(),
        service: spec.name.clone(),
        tags: spec.tags.clone(),
        meta: spec.meta.clone().unwrap_or_default(),
        port: spec.port,
        address: spec.address.clone(),
        socket_path: spec.socket_path.clone(),
        tagged_addresses: spec.tagged_addresses.clone(),
        weights: spec.weights,
        enable_tag_override: spec.enable_tag_override,
        proxy: (!spec.kind.is_empty() || spec.proxy.is_some()).then(|| render::proxy(spec)),
        connect: spec.connect.clone(),
        content_hash: String::new(),
        datacenter: catalog.node.datacenter.clone(),
    }
}

/// The id-keyed map of the entries `?filter` selects.
fn keyed<T: Serialize>(
    req: &Req,
    entries: Vec<(String, T)>,
) -> Result<BTreeMap<String, T>, Rejection> {
    let filter = parse_filter(req)?;
    Ok(entries
        .into_iter()
        .filter(|(_, entry)| selects(filter.as_ref(), entry))
        .collect())
}

/// `GET /v1/agent/services[?filter=]`: id → service, only those the token may read.
pub(crate) fn services(shared: &Shared, req: &Req, caller: &Caller) -> Reply {
    let entries = shared.read(|catalog| {
        catalog
            .services
            .values()
            .filter(|_| caller.read)
            .map(|service| (service.spec.id.clone(), agent_service(catalog, service)))
            .collect()
    });
    match keyed(req, entries) {
        Ok(map) => json(&map, req.has("pretty")),
        Err(reply) => *reply,
    }
}

/// `GET /v1/agent/checks[?filter=]`: id → check (the node's `serfHealth` is not an agent check).
pub(crate) fn checks(shared: &Shared, req: &Req, caller: &Caller) -> Reply {
    let entries: Vec<(String, CheckJson)> = shared.read(|catalog| {
        catalog
            .checks
            .values()
            .filter(|_| caller.read)
            .filter_map(|check| {
                let service = catalog.services.get(&check.service_id)?;
                Some((
                    check.id.clone(),
                    render::check_json(&catalog.node, service, check),
                ))
            })
            .collect()
    });
    match keyed(req, entries) {
        Ok(map) => json(&map, req.has("pretty")),
        Err(reply) => *reply,
    }
}

/// One service with its content hash: 404 when absent, 403 when the token may not read it.
fn hashed_service(shared: &Shared, id: &str, caller: &Caller) -> Result<AgentService, Rejection> {
    let found = shared.read(|catalog| {
        let service = catalog.services.get(id)?;
        Some(agent_service(catalog, service))
    });
    let Some(mut service) = found else {
        return Err(reject(404, format!("unknown service ID: {id}")));
    };
    if !caller.read {
        let denied = caller.read_denied(&service.service);
        return Err(reject(denied.status(), denied.to_string()));
    }
    let mut hasher = DefaultHasher::new();
    serde_json::to_string(&service)
        .unwrap_or_default()
        .hash(&mut hasher);
    service.content_hash = format!("{:016x}", hasher.finish());
    Ok(service)
}

/// `GET /v1/agent/service/:id[?hash=&wait=]`: one service with its `ContentHash` (also sent as
/// `X-Consul-ContentHash`); 404 `unknown service ID: <id>` when absent, 403 `Permission
/// denied: …` when the token lacks `service:read`. With
/// `hash` equal to the current one the request blocks (hash-based blocking, as the agent does)
/// until the service changes or `wait` elapses.
pub(crate) async fn service(shared: &Shared, req: &Req, id: &str, caller: &Caller) -> Reply {
    let wait = match req.param("wait").filter(|value| !value.is_empty()) {
        None => None,
        Some(value) => match parse_go_duration(value) {
            Some(wait) => Some(wait),
            None => return text(400, "Invalid wait time"),
        },
    };
    let known = req.param("hash").filter(|hash| !hash.is_empty());
    let name = shared.read(|catalog| catalog.services.get(id).map(|s| s.spec.name.clone()));
    let mut wakes = shared
        .waiters
        .subscribe(Topic::Service(name.as_deref().unwrap_or(id)));
    let deadline = tokio::time::Instant::now() + effective_wait(wait, shared.opts.jitter);
    loop {
        let service = match hashed_service(shared, id, caller) {
            Ok(service) => service,
            Err(reply) => return *reply,
        };
        let unchanged = known == Some(service.content_hash.as_str());
        if unchanged && wait_for_wake(&mut wakes, deadline).await == Waited::Changed {
            continue;
        }
        let mut reply = json(&service, req.has("pretty"));
        set_header(&mut reply, "x-consul-contenthash", &service.content_hash);
        return reply;
    }
}
