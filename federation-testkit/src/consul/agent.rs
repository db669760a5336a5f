//! Agent write endpoints (`PUT /v1/agent/...`).
//!
//! SDK registration code is only as good as the double it was tested against: Consul's
//! validation, its 404/500 texts (tools match `does not have associated TTL` to re-register
//! after an agent restart) and the empty 200 body on success must all be reproduced. Each
//! handler decodes the request, checks `service:write` for the service concerned, and applies
//! the change through [`Shared`], which bumps the service's index and wakes its watchers.

use serde::Deserialize;

use super::acl::Caller;
use super::error::ConsulDoubleError;
use super::http::{Reply, Req, empty_ok, text};
use super::options::CheckStatus;
use super::registration::decode_registration;
use super::registration::keys::canonical_value;
use super::shared::Shared;

fn reply(result: Result<(), ConsulDoubleError>) -> Reply {
    match result {
        Ok(()) => empty_ok(),
        Err(error) => text(error.status(), error.to_string()),
    }
}

/// Go's `strconv.ParseBool`.
fn parse_go_bool(text: &str) -> Option<bool> {
    match text {
        "1" | "t" | "T" | "true" | "TRUE" | "True" => Some(true),
        "0" | "f" | "F" | "false" | "FALSE" | "False" => Some(false),
        _ => None,
    }
}

/// The name of the service owning `service_id`, or the 404 for an unknown id.
fn service_name(shared: &Shared, service_id: &str) -> Result<String, ConsulDoubleError> {
    shared
        .read(|catalog| {
            catalog
                .services
                .get(service_id)
                .map(|entry| entry.spec.name.clone())
        })
        .ok_or_else(|| ConsulDoubleError::unknown_service(service_id))
}

fn require_write(caller: &Caller, service: &str) -> Result<(), ConsulDoubleError> {
    if caller.write {
        Ok(())
    } else {
        Err(caller.write_denied(service))
    }
}

/// `PUT /v1/agent/service/register[?replace-existing-checks]`.
pub(crate) fn register(shared: &Shared, req: &Req, caller: &Caller) -> Reply {
    let registration = match decode_registration(&req.body) {
        Ok(registration) => registration,
        Err(error) => return text(error.status(), error.to_string()),
    };
    // Consul: present and empty or exactly `true` (other spellings mean false).
    let replace = matches!(req.param("replace-existing-checks"), Some("" | "true"));
    reply(
        require_write(caller, &registration.name)
            .and_then(|()| shared.register(&registration, replace)),
    )
}

/// `PUT /v1/agent/service/deregister/:service_id`.
pub(crate) fn deregister(shared: &Shared, service_id: &str, caller: &Caller) -> Reply {
    reply(
        service_name(shared, service_id)
            .and_then(|name| require_write(caller, &name))
            .and_then(|()| shared.deregister(service_id)),
    )
}

/// Authorises a write on the service owning `check_id` (unknown checks fall through to the
/// update, which reports them).
fn check_write(shared: &Shared, check_id: &str, caller: &Caller) -> Result<(), ConsulDoubleError> {
    let service = shared.read(|catalog| {
        let check = catalog.checks.get(check_id)?;
        catalog
            .services
            .get(&check.service_id)
            .map(|entry| entry.spec.name.clone())
    });
    match service {
        Some(name) => require_write(caller, &name),
        None if caller.write => Ok(()),
        None => Err(caller.write_denied(check_id)),
    }
}

/// `PUT /v1/agent/check/{pass,warn,fail}/:check_id?note=…`.
pub(crate) fn ttl_update(
    shared: &Shared,
    req: &Req,
    check_id: &str,
    status: CheckStatus,
    caller: &Caller,
) -> Reply {
    let note = req.param("note").unwrap_or("");
    reply(
        check_write(shared, check_id, caller)
            .and_then(|()| shared.update_ttl(check_id, status, note)),
    )
}

#[derive(Deserialize, Default)]
#[serde(rename_all = "PascalCase", default)]
struct CheckUpdate {
    status: String,
    output: String,
}

/// `PUT /v1/agent/check/update/:check_id` with `{"Status": …, "Output": …}`.
pub(crate) fn check_update(shared: &Shared, req: &Req, check_id: &str, caller: &Caller) -> Reply {
    let decoded = serde_json::from_slice(&req.body)
        .map(|body| canonical_value(body, &["Status", "Output"]))
        .and_then(serde_json::from_value::<CheckUpdate>);
    let update = match decoded {
        Ok(update) => update,
        Err(error) => return text(400, format!("Request decode failed: {error}")),
    };
    let Some(status) = CheckStatus::parse(&update.status) else {
        return text(400, format!("Invalid check status: '{}'", update.status));
    };
    reply(
        check_write(shared, check_id, caller)
            .and_then(|()| shared.update_ttl(check_id, status, &update.output)),
    )
}

/// `PUT /v1/agent/service/maintenance/:service_id?enable=…&reason=…`.
pub(crate) fn maintenance(shared: &Shared, req: &Req, service_id: &str, caller: &Caller) -> Reply {
    let enable = match req.param("enable") {
        None | Some("") => return text(400, "Missing value for enable"),
        Some(value) => match parse_go_bool(value) {
            Some(enable) => enable,
            None => return text(400, format!("Invalid value for enable: \"{value}\"")),
        },
    };
    let reason = req.param("reason");
    let result = shared
        .read(|catalog| {
            catalog
                .services
                .get(service_id)
                .map(|entry| entry.spec.name.clone())
        })
        .ok_or_else(|| {
            ConsulDoubleError::NotFound(format!("No service registered with ID \"{service_id}\""))
        })
        .and_then(|name| require_write(caller, &name))
        .and_then(|()| shared.set_maintenance(service_id, enable, reason));
    reply(result)
}
