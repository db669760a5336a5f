//! Read endpoints: `/health/service`, `/catalog/*`, `/agent/self`, `/status/leader`.
//!
//! The blocking contract is what watch loops are built on, and a double that answered too
//! early (busy loops) or too late (missed updates) would make SDK tests meaningless. Reads
//! follow Consul's `blockingquery.Query`: `index` absent or 0 answers at once; otherwise the
//! query re-runs on every wake of its topic and returns as soon as its index exceeds `index`,
//! or returns the current state when `wait` (default 5 m, cap 10 m, optional jitter) elapses.
//! A forced wake (spurious wake-up, index reset) returns the current state immediately. The
//! `?passing` and ACL filters run after the index is taken, so the index covers the unfiltered
//! set, as in Consul.

use serde::Serialize;

use super::acl::Caller;
use super::http::{Rejection, Reply, Req, json, json_with, reject, set_header};
use super::options::Fault;
use super::params::{ReadParams, parse_passing, parse_read};
use super::render;
use super::shared::Shared;
use super::state::Catalog;
use super::waiters::{Topic, Waited, effective_wait, wait_for_wake};

/// Rejects default-consistency reads while the `NoLeader` fault is on; returns the
/// `KnownLeader` value otherwise.
fn leader_gate(shared: &Shared, params: &ReadParams) -> Result<bool, Rejection> {
    if shared.fault() != Some(Fault::NoLeader) {
        return Ok(true);
    }
    if params.consistency == "stale" {
        return Ok(false);
    }
    let mut reply = reject(500, "No cluster leader");
    set_header(&mut reply, "x-consul-knownleader", "false");
    Err(reply)
}

/// Runs `query` under the blocking contract.
async fn blocking<T>(
    shared: &Shared,
    topic: Topic<'_>,
    params: &ReadParams,
    query: impl Fn(&Catalog) -> (u64, T),
) -> (u64, T) {
    let mut wakes = shared.waiters.subscribe(topic);
    let deadline = tokio::time::Instant::now() + effective_wait(params.wait, shared.opts.jitter);
    loop {
        let (index, value) = shared.read(&query);
        if params.index == 0 || index > params.index {
            return (index, value);
        }
        match wait_for_wake(&mut wakes, deadline).await {
            Waited::Changed => {}
            Waited::Forced | Waited::TimedOut => return shared.read(&query),
        }
    }
}

fn with_meta(mut reply: Reply, index: u64, known_leader: bool, consistency: &str) -> Reply {
    set_header(&mut reply, "x-consul-index", &index.max(1).to_string());
    set_header(
        &mut reply,
        "x-consul-knownleader",
        if known_leader { "true" } else { "false" },
    );
    set_header(&mut reply, "x-consul-lastcontact", "0");
    set_header(&mut reply, "x-consul-effective-consistency", consistency);
    set_header(&mut reply, "x-consul-query-backend", "blocking-query");
    reply
}

fn garbled(shared: &Shared) -> bool {
    shared.fault() == Some(Fault::Garbled)
}

/// The end of every list read: ACL filtering (with the header for authenticated callers),
/// the index headers, and `X-Cache`/`Age` for `?cached`.
fn finish<T: Serialize>(
    shared: &Shared,
    req: &Req,
    params: &ReadParams,
    caller: &Caller,
    known_leader: bool,
    (index, mut entries): (u64, Vec<T>),
) -> Reply {
    let filtered = !caller.read && !entries.is_empty();
    if !caller.read {
        entries.clear();
    }
    let mut reply = with_meta(
        json_with(&entries, params.pretty, garbled(shared)),
        index,
        known_leader,
        params.consistency,
    );
    if filtered && caller.token_given {
        set_header(&mut reply, "x-consul-results-filtered-by-acls", "true");
    }
    if params.cached {
        let hit = shared.cache_lookup(&req.path);
        set_header(&mut reply, "x-cache", if hit { "HIT" } else { "MISS" });
        set_header(&mut reply, "age", "0");
    }
    reply
}

fn prepare(shared: &Shared, req: &Req) -> Result<(ReadParams, bool), Rejection> {
    let params = parse_read(req)?;
    let known_leader = leader_gate(shared, &params)?;
    Ok((params, known_leader))
}

/// `GET /v1/health/service/:name`.
pub(crate) async fn health_service(
    shared: &Shared,
    req: &Req,
    name: &str,
    caller: &Caller,
) -> Reply {
    let ((params, known_leader), passing) =
        match prepare(shared, req).and_then(|prepared| Ok((prepared, parse_passing(req)?))) {
            Ok(parsed) => parsed,
            Err(reply) => return *reply,
        };
    let (index, mut entries) = blocking(shared, Topic::Service(name), &params, |catalog| {
        (
            catalog.service_index(name),
            render::health_entries(catalog, name, &params.tags),
        )
    })
    .await;
    if passing {
        entries.retain(render::HealthEntry::all_passing);
    }
    params.retain(&mut entries, |json| json.get("Node")?.get("Meta").cloned());
    finish(shared, req, &params, caller, known_leader, (index, entries))
}

/// `GET /v1/health/checks/:name`: the checks of every instance, blocking on the service index.
pub(crate) async fn health_checks(
    shared: &Shared,
    req: &Req,
    name: &str,
    caller: &Caller,
) -> Reply {
    let (params, known_leader) = match prepare(shared, req) {
        Ok(prepared) => prepared,
        Err(reply) => return *reply,
    };
    let (index, mut checks) = blocking(shared, Topic::Service(name), &params, |catalog| {
        (
            catalog.service_index(name),
            render::service_checks(catalog, name),
        )
    })
    .await;
    // `node-meta` selects by the metadata of the (one) node the checks run on.
    let node_meta = serde_json::to_value(render::node_meta()).unwrap_or_default();
    params.retain(&mut checks, |_| Some(node_meta.clone()));
    finish(shared, req, &params, caller, known_leader, (index, checks))
}

/// `GET /v1/catalog/service/:name`.
pub(crate) async fn catalog_service(
    shared: &Shared,
    req: &Req,
    name: &str,
    caller: &Caller,
) -> Reply {
    let (params, known_leader) = match prepare(shared, req) {
        Ok(prepared) => prepared,
        Err(reply) => return *reply,
    };
    let (index, mut entries) = blocking(shared, Topic::Service(name), &params, |catalog| {
        (
            catalog.service_index(name),
            render::catalog_entries(catalog, name, &params.tags),
        )
    })
    .await;
    params.retain(&mut entries, |json| json.get("NodeMeta").cloned());
    finish(shared, req, &params, caller, known_leader, (index, entries))
}

/// `GET /v1/catalog/services`: the map of every service name to its tags. `filter` and
/// `node-meta` select the instances the map is built from.
pub(crate) async fn catalog_services(shared: &Shared, req: &Req, caller: &Caller) -> Reply {
    let (params, known_leader) = match prepare(shared, req) {
        Ok(prepared) => prepared,
        Err(reply) => return *reply,
    };
    let (index, mut entries) = blocking(shared, Topic::Catalog, &params, |catalog| {
        (
            catalog.catalog_index(),
            render::all_catalog_entries(catalog),
        )
    })
    .await;
    params.retain(&mut entries, |json| json.get("NodeMeta").cloned());
    let services = render::catalog_services(&entries);
    let filtered = !caller.read && !services.is_empty();
    let mut reply = with_meta(
        json_with(
            &if caller.read {
                services
            } else {
                Default::default()
            },
            params.pretty,
            garbled(shared),
        ),
        index,
        known_leader,
        params.consistency,
    );
    if filtered && caller.token_given {
        set_header(&mut reply, "x-consul-results-filtered-by-acls", "true");
    }
    reply
}

/// `GET /v1/catalog/datacenters`: only the own datacenter (no federation), no index headers.
pub(crate) fn datacenters(shared: &Shared, req: &Req) -> Reply {
    json_with(
        &[shared.opts.datacenter.as_str()],
        req.has("pretty"),
        garbled(shared),
    )
}

/// `GET /v1/agent/self`.
pub(crate) fn agent_self(shared: &Shared, req: &Req) -> Reply {
    let port = shared.server.addr().port();
    shared.read(|catalog| json(&render::agent_self(&catalog.node, port), req.has("pretty")))
}

/// `GET /v1/status/leader`: `"127.0.0.1:8300"`, or `""` while the `NoLeader` fault is on.
pub(crate) fn status_leader(shared: &Shared) -> Reply {
    let leader = if shared.fault() == Some(Fault::NoLeader) {
        ""
    } else {
        "127.0.0.1:8300"
    };
    json(&leader, false)
}
