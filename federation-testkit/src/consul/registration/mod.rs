//! The agent registration body (`PUT /v1/agent/service/register`) and its validation.
//!
//! A double that accepted what Consul rejects (`0.0.0.0` addresses, zero weights, checks without
//! an interval) would let an SDK ship registrations that fail in production. The body is decoded
//! with Consul's PascalCase keys (snake_case accepted too, as the agent does), then validated
//! into a [`ServiceSpec`] with Consul's defaults applied: `ID` = `Name`, weights `{1,1}`,
//! check ids `service:<id>` / `service:<id>:<n>`, check names `Service '<name>' check`, and
//! `lan_ipv4`/`wan_ipv4` (or `*_ipv6`) tagged addresses derived from an IP `Address`.

use std::collections::BTreeMap;
use std::time::Duration;

use serde::{Deserialize, Serialize};
use serde_json::Value;

use super::error::ConsulDoubleError;
use super::options::CheckStatus;

pub(crate) mod keys;
mod validate;

/// Body of `PUT /v1/agent/service/register`, as Consul's Go client sends it.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase", default)]
pub struct ServiceRegistration {
    /// Instance id; defaults to `name`. Re-registering the same id replaces the definition.
    #[serde(rename = "ID", skip_serializing_if = "Option::is_none")]
    pub id: Option<String>,
    /// Logical service name (required).
    pub name: String,
    /// Tags.
    pub tags: Vec<String>,
    /// Address of the instance; `""` makes consumers fall back to the node address.
    pub address: String,
    /// Port; 0 is omitted from health responses.
    pub port: u16,
    /// Extra addresses; `lan_ipv4`/`wan_ipv4` (or `*_ipv6`) are added from an IP `address`.
    #[serde(skip_serializing_if = "BTreeMap::is_empty")]
    pub tagged_addresses: BTreeMap<String, ServiceAddress>,
    /// Metadata; `None` is rendered as `null`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub meta: Option<BTreeMap<String, String>>,
    /// DNS SRV weights; `{1,1}` when omitted.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub weights: Option<Weights>,
    /// Consul's tag-override flag (stored and echoed only).
    pub enable_tag_override: bool,
    /// A single check.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub check: Option<CheckDefinition>,
    /// Several checks; generated ids are numbered `service:<id>:1`, `:2`, ….
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub checks: Vec<CheckDefinition>,
    /// `Kind` of a mesh service (`connect-proxy`, `mesh-gateway`, …); `""` for an ordinary
    /// service. Stored and echoed only.
    #[serde(skip_serializing_if = "String::is_empty")]
    pub kind: String,
    /// `Proxy` configuration of a proxy service, echoed as sent (merged over Consul's defaults).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub proxy: Option<Value>,
    /// `Connect` settings (e.g. `{"Native": true}`), echoed as sent.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub connect: Option<Value>,
    /// Unix socket path instead of an address and port; stored and echoed only.
    #[serde(skip_serializing_if = "String::is_empty")]
    pub socket_path: String,
}

/// A service tagged address: `{"Address": "...", "Port": 8000}` (PascalCase on the wire).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase", default)]
pub struct ServiceAddress {
    /// Address.
    pub address: String,
    /// Port.
    pub port: u16,
}

/// DNS SRV weights of an instance.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct Weights {
    /// Weight while every check passes (1..=65535).
    pub passing: u32,
    /// Weight while some check warns (0..=65535).
    pub warning: u32,
}

/// A check inside `Check`/`Checks`. The double runs `HTTP`, `TCP` and `TTL` checks.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase", default)]
pub struct CheckDefinition {
    /// Check id; generated when absent.
    #[serde(rename = "CheckID", skip_serializing_if = "Option::is_none")]
    pub check_id: Option<String>,
    /// Name; defaults to `Service '<name>' check`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub name: Option<String>,
    /// Free text.
    #[serde(skip_serializing_if = "String::is_empty")]
    pub notes: String,
    /// Initial status (`passing`, `warning`, `critical`); new checks start `critical` without it.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub status: Option<String>,
    /// TTL check: time-to-live as a Go duration (`15s`).
    #[serde(rename = "TTL", skip_serializing_if = "Option::is_none")]
    pub ttl: Option<String>,
    /// HTTP check: URL probed every `interval`.
    #[serde(rename = "HTTP", skip_serializing_if = "Option::is_none")]
    pub http: Option<String>,
    /// HTTP method (default `GET`).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub method: Option<String>,
    /// HTTP request headers.
    #[serde(skip_serializing_if = "BTreeMap::is_empty")]
    pub header: BTreeMap<String, Vec<String>>,
    /// HTTP request body.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub body: Option<String>,
    /// Skip TLS verification for `https` checks.
    #[serde(rename = "TLSSkipVerify")]
    pub tls_skip_verify: bool,
    /// TCP check: `host:port` connected to every `interval`.
    #[serde(rename = "TCP", skip_serializing_if = "Option::is_none")]
    pub tcp: Option<String>,
    /// Probe interval as a Go duration (required for HTTP and TCP).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub interval: Option<String>,
    /// Probe timeout as a Go duration (default 10 s).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub timeout: Option<String>,
    /// Deregister the service once this check has been critical this long.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub deregister_critical_service_after: Option<String>,
}

/// A validated service definition with Consul's defaults applied.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct ServiceSpec {
    pub(crate) id: String,
    pub(crate) name: String,
    pub(crate) tags: Vec<String>,
    pub(crate) address: String,
    pub(crate) port: u16,
    pub(crate) tagged_addresses: BTreeMap<String, ServiceAddress>,
    pub(crate) meta: Option<BTreeMap<String, String>>,
    pub(crate) weights: Weights,
    pub(crate) enable_tag_override: bool,
    pub(crate) kind: String,
    pub(crate) proxy: Option<Value>,
    pub(crate) connect: Option<Value>,
    pub(crate) socket_path: String,
    pub(crate) checks: Vec<CheckSpec>,
}

/// A validated check definition.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct CheckSpec {
    pub(crate) id: String,
    pub(crate) name: String,
    pub(crate) notes: String,
    pub(crate) initial_status: Option<CheckStatus>,
    pub(crate) kind: CheckKind,
    pub(crate) deregister_after: Option<Duration>,
}

/// What the double runs for a check.
#[derive(Debug, Clone, PartialEq)]
pub(crate) enum CheckKind {
    /// Goes critical unless updated within the TTL.
    Ttl(Duration),
    /// Probed by HTTP.
    Http(HttpProbe),
    /// Probed by a TCP connect.
    Tcp {
        address: String,
        interval: Duration,
        timeout: Duration,
    },
}

/// An HTTP probe.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct HttpProbe {
    pub(crate) url: String,
    pub(crate) method: String,
    pub(crate) header: BTreeMap<String, Vec<String>>,
    pub(crate) body: Option<String>,
    pub(crate) tls_skip_verify: bool,
    pub(crate) interval: Duration,
    pub(crate) timeout: Duration,
    pub(crate) timeout_given: bool,
}

impl CheckKind {
    /// The `Type` field of the rendered check.
    pub(crate) fn type_name(&self) -> &'static str {
        match self {
            Self::Ttl(_) => "ttl",
            Self::Http(_) => "http",
            Self::Tcp { .. } => "tcp",
        }
    }
}

/// Check kinds Consul runs and the double does not (keys of `structs.CheckType`).
const UNSUPPORTED_CHECKS: &[(&str, &str)] = &[
    ("ScriptArgs", "script"),
    ("DockerContainerID", "Docker"),
    ("GRPC", "gRPC"),
    ("H2PING", "H2PING"),
    ("UDP", "UDP"),
    ("AliasService", "alias"),
    ("AliasNode", "alias"),
    ("OSService", "OS service"),
];

impl ServiceRegistration {
    /// Decodes a JSON registration body exactly as the double's
    /// `PUT /v1/agent/service/register` does (and as Consul's agent does): `null` is a zero
    /// value, key case and snake_case spelling are free, unknown fields are ignored. Use this
    /// rather than `serde_json` directly for bodies written by hand or by other clients: the
    /// serde derive only knows Consul's exact PascalCase keys.
    ///
    /// # Errors
    /// [`ConsulDoubleError::Invalid`] with the text Consul answers (`Request decode failed: …`,
    /// `Invalid Weights: …`, `Invalid check: …`).
    pub fn from_json(body: &[u8]) -> Result<Self, ConsulDoubleError> {
        decode_registration(body)
    }
}

/// Decodes a register body as Consul's agent does (see `keys`): `null`s are zero values, key
/// spelling is free, unknown fields are ignored; a check kind the double cannot run is refused
/// by name rather than silently never run.
pub(crate) fn decode_registration(body: &[u8]) -> Result<ServiceRegistration, ConsulDoubleError> {
    let decode_failed = |error: serde_json::Error| {
        ConsulDoubleError::Invalid(format!("Request decode failed: {error}"))
    };
    let raw: Value = serde_json::from_slice(body).map_err(decode_failed)?;
    let canonical = keys::canonical_registration(raw);
    let checks = canonical.get("Check").into_iter().chain(
        canonical
            .get("Checks")
            .and_then(Value::as_array)
            .into_iter()
            .flatten(),
    );
    for check in checks {
        for (key, kind) in UNSUPPORTED_CHECKS {
            if check
                .get(key)
                .is_some_and(|value| value != "" && !value.is_null())
            {
                return Err(ConsulDoubleError::Invalid(format!(
                    "Invalid check: the Consul double runs TTL, HTTP and TCP checks only, not {kind} checks (`{key}`)"
                )));
            }
        }
    }
    check_numbers(&canonical)?;
    serde_json::from_value(canonical).map_err(decode_failed)
}

/// Numbers Go decodes into an `int` and the double keeps narrower: refused with Consul's weight
/// errors, or naming the port and the range the double supports, never with serde's words.
fn check_numbers(service: &Value) -> Result<(), ConsulDoubleError> {
    let number = |value: Option<&Value>| match value {
        Some(Value::Number(n)) => n.as_i64().or_else(|| n.as_u64().map(|_| i64::MAX)),
        _ => None,
    };
    if let Some(weights) = service.get("Weights").filter(|w| w.is_object()) {
        let passing = number(weights.get("Passing")).unwrap_or(0);
        let warning = number(weights.get("Warning")).unwrap_or(0);
        validate::check_weights(passing, warning)?;
    }
    let tagged = service
        .get("TaggedAddresses")
        .and_then(Value::as_object)
        .into_iter()
        .flatten()
        .map(|(tag, address)| (format!("TaggedAddresses.{tag}.Port"), address.get("Port")));
    for (field, value) in std::iter::once(("Port".to_owned(), service.get("Port"))).chain(tagged) {
        if let Some(port) = number(value).filter(|port| !(0..=65535).contains(port)) {
            return Err(ConsulDoubleError::Invalid(format!(
                "Invalid service port: {field} is {port}; the Consul double supports 0-65535"
            )));
        }
    }
    Ok(())
}
