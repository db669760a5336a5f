//! Routing: path and method matching, the common checks every Consul endpoint makes, dispatch.
//!
//! Clients must see Consul's answers for requests it does not serve, not a generic 404 page:
//! unknown `/v1/` paths get 404 `Invalid URL path: not a recognized HTTP API endpoint` (other
//! paths the text asking for `/v1/`), a wrong
//! verb gets 405 `method X not allowed` with an `Allow` header, `?ns=` gets CE's 400, `?dc=`
//! naming another datacenter gets 500 `No path to datacenter`. Order per request: route, count
//! health requests, request faults, method, body, `ns`/`dc`, ACL token, handler; every reply
//! gets `X-Consul-Default-Acl-Policy` and `Vary: Accept-Encoding`.

use std::sync::{Arc, Weak};

use http::{Method, Request};
use http_body_util::{BodyExt as _, Limited};
use hyper::body::Incoming;

use super::http::{Reply, Req, decode_path, empty_ok, parse_query, set_header, text};
use super::options::CheckStatus;
use super::shared::Shared;
use super::{acl, agent, agent_reads, faults, reads};

/// Largest request body accepted (registrations are small).
const MAX_BODY: usize = 1 << 20;

enum Route {
    Health(String),
    HealthChecks(String),
    CatalogService(String),
    CatalogServices,
    Datacenters,
    AgentSelf,
    AgentServices,
    AgentChecks,
    AgentService(String),
    Leader,
    Register,
    Deregister(String),
    Ttl(CheckStatus, String),
    CheckUpdate(String),
    Maintenance(String),
    MissingName,
    Unknown,
}

impl Route {
    fn parse(path: &str) -> Self {
        let tail = |prefix: &str| path.strip_prefix(prefix).map(decode_path);
        fn named(name: String, route: impl FnOnce(String) -> Route) -> Route {
            if name.is_empty() {
                Route::MissingName
            } else {
                route(name)
            }
        }
        if let Some(name) = tail("/v1/health/service/") {
            return named(name, Route::Health);
        }
        if let Some(name) = tail("/v1/health/checks/") {
            return named(name, Route::HealthChecks);
        }
        if let Some(name) = tail("/v1/catalog/service/") {
            return named(name, Route::CatalogService);
        }
        if let Some(id) = tail("/v1/agent/service/deregister/") {
            return named(id, Route::Deregister);
        }
        if let Some(id) = tail("/v1/agent/service/maintenance/") {
            return named(id, Route::Maintenance);
        }
        if let Some(id) = tail("/v1/agent/check/update/") {
            return named(id, Route::CheckUpdate);
        }
        for (verb, status) in [
            ("pass", CheckStatus::Passing),
            ("warn", CheckStatus::Warning),
            ("fail", CheckStatus::Critical),
        ] {
            if let Some(id) = tail(&format!("/v1/agent/check/{verb}/")) {
                return named(id, |id| Route::Ttl(status, id));
            }
        }
        match path {
            "/v1/catalog/services" => Route::CatalogServices,
            "/v1/catalog/datacenters" => Route::Datacenters,
            "/v1/agent/self" => Route::AgentSelf,
            "/v1/status/leader" => Route::Leader,
            "/v1/agent/service/register" => Route::Register,
            "/v1/agent/services" => Route::AgentServices,
            "/v1/agent/checks" => Route::AgentChecks,
            _ => match tail("/v1/agent/service/") {
                Some(id) => named(id, Route::AgentService),
                None => Route::Unknown,
            },
        }
    }

    /// The methods the route accepts and its `Allow` header (`None`: any method).
    fn allow(&self) -> Option<(Method, &'static str)> {
        match self {
            Route::Health(_)
            | Route::HealthChecks(_)
            | Route::CatalogService(_)
            | Route::CatalogServices
            | Route::Datacenters
            | Route::AgentSelf
            | Route::AgentServices
            | Route::AgentChecks
            | Route::AgentService(_)
            | Route::Leader
            | Route::MissingName => Some((Method::GET, "GET,OPTIONS")),
            Route::Register
            | Route::Deregister(_)
            | Route::Ttl(..)
            | Route::CheckUpdate(_)
            | Route::Maintenance(_) => Some((Method::PUT, "OPTIONS,PUT")),
            Route::Unknown => None,
        }
    }
}

/// Serves one HTTP request.
pub(crate) async fn handle(shared: Weak<Shared>, request: Request<Incoming>) -> Reply {
    let Some(shared) = shared.upgrade() else {
        return text(503, "Consul double is shutting down");
    };
    let mut reply = dispatch(&shared, request).await;
    set_header(
        &mut reply,
        "x-consul-default-acl-policy",
        acl::default_policy(&shared.opts),
    );
    set_header(&mut reply, "vary", "Accept-Encoding");
    reply
}

async fn dispatch(shared: &Arc<Shared>, request: Request<Incoming>) -> Reply {
    let (parts, body) = request.into_parts();
    let path = parts.uri.path().to_owned();
    let route = Route::parse(&path);
    if let (Route::Health(name), &Method::GET) = (&route, &parts.method) {
        shared.count_health_request(name);
    }
    if let Some(reply) = faults::before_request(shared).await {
        return reply;
    }
    if let Some((method, allow)) = route.allow()
        && (parts.method == Method::OPTIONS || parts.method != method)
    {
        let mut reply = if parts.method == Method::OPTIONS {
            empty_ok()
        } else {
            text(405, format!("method {} not allowed", parts.method))
        };
        set_header(&mut reply, "allow", allow);
        return reply;
    }
    let body = match Limited::new(body, MAX_BODY).collect().await {
        Ok(collected) => collected.to_bytes(),
        Err(error) => return text(400, format!("Request decode failed: {error}")),
    };
    let req = Req {
        query: parse_query(parts.uri.query().unwrap_or("")),
        path,
        headers: parts.headers,
        body,
    };
    if req.path.contains('\n') {
        return text(400, "Invalid URL path: contains a newline");
    }
    if let Some(reply) = enterprise_only(&req) {
        return reply;
    }
    if req
        .param("dc")
        .is_some_and(|dc| !dc.is_empty() && dc != shared.opts.datacenter)
    {
        return text(500, "No path to datacenter");
    }
    let caller = match acl::resolve(&shared.opts, &req) {
        Ok(caller) => caller,
        Err(reply) => return *reply,
    };
    match &route {
        Route::Health(name) => reads::health_service(shared, &req, name, &caller).await,
        Route::HealthChecks(name) => reads::health_checks(shared, &req, name, &caller).await,
        Route::CatalogService(name) => reads::catalog_service(shared, &req, name, &caller).await,
        Route::CatalogServices => reads::catalog_services(shared, &req, &caller).await,
        Route::Datacenters => reads::datacenters(shared, &req),
        Route::AgentSelf => reads::agent_self(shared, &req),
        Route::AgentServices => agent_reads::services(shared, &req, &caller),
        Route::AgentChecks => agent_reads::checks(shared, &req, &caller),
        Route::AgentService(id) => agent_reads::service(shared, &req, id, &caller).await,
        Route::Leader => reads::status_leader(shared),
        Route::Register => agent::register(shared, &req, &caller),
        Route::Deregister(id) => agent::deregister(shared, id, &caller),
        Route::Ttl(status, id) => agent::ttl_update(shared, &req, id, *status, &caller),
        Route::CheckUpdate(id) => agent::check_update(shared, &req, id, &caller),
        Route::Maintenance(id) => agent::maintenance(shared, &req, id, &caller),
        Route::MissingName => text(400, "Missing service name"),
        Route::Unknown => unknown_path(&req.path),
    }
}

/// Consul's index handler: `/` names the agent, any other path is a 404 whose text (with
/// `Fprintln`'s newline) depends on whether it contains `/v1/`.
fn unknown_path(path: &str) -> Reply {
    if path == "/" {
        text(
            200,
            "Consul Agent: UI disabled. To enable, set ui_config.enabled=true in the agent configuration and restart.",
        )
    } else if path.contains("/v1/") {
        text(
            404,
            "Invalid URL path: not a recognized HTTP API endpoint\n",
        )
    } else {
        text(
            404,
            "Invalid URL path: if attempting to use the HTTP API, ensure the path starts with '/v1/'\n",
        )
    }
}

/// CE refuses the Enterprise scoping headers and parameters (any non-empty value) with 400,
/// checking them in Consul's order: namespace header, `ns`, partition header, `partition`.
fn enterprise_only(req: &Req) -> Option<Reply> {
    for (param, header, feature) in [
        ("ns", "X-Consul-Namespace", "Namespaces"),
        ("partition", "X-Consul-Partition", "Partitions"),
    ] {
        if req.header(header).is_some_and(|value| !value.is_empty()) {
            return Some(text(
                400,
                format!("Invalid header: \"{header}\" - {feature} are a Consul Enterprise feature"),
            ));
        }
        if req.param(param).is_some_and(|value| !value.is_empty()) {
            return Some(text(
                400,
                format!(
                    "Invalid query parameter: \"{param}\" - {feature} are a Consul Enterprise feature"
                ),
            ));
        }
    }
    None
}
