//! The agent registration body (`PUT /v1/agent/service/register`) and its validation.
//!
//! A double that accepted what Consul rejects (`0.0.0.0` addresses, zero weights, checks without
//! an interval) would let an SDK ship registrations that fail in production. The body is decoded
//! with Consul's PascalCase keys (snake_case accepted too, as the agent does), then validated
//! into a [`ServiceSpec`] with Consul's defaults applied: `ID` = `Name`, weights `{1,1}`,
//! check ids `service:<id>` / `service:<id>:<n>`, check names `Service '<name>' check`, and
//! `lan_ipv4`/`wan_ipv4` (or `*_ipv6`) tagged addresses derived from an IP `Address`.

use std::collections::BTreeMap;
use std::net::IpAddr;
use std::time::Duration;

use serde::{Deserialize, Serialize};

use super::duration::parse_go_duration;
use super::error::ConsulDoubleError;
use super::options::CheckStatus;

/// Body of `PUT /v1/agent/service/register`, as Consul's Go client sends it.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase", default)]
pub struct ServiceRegistration {
    /// Instance id; defaults to `name`. Re-registering the same id replaces the definition.
    #[serde(rename = "ID", alias = "id", skip_serializing_if = "Option::is_none")]
    pub id: Option<String>,
    /// Logical service name (required).
    #[serde(alias = "name")]
    pub name: String,
    /// Tags.
    #[serde(alias = "tags")]
    pub tags: Vec<String>,
    /// Address of the instance; `""` makes consumers fall back to the node address.
    #[serde(alias = "address")]
    pub address: String,
    /// Port; 0 is omitted from health responses.
    #[serde(alias = "port")]
    pub port: u16,
    /// Extra addresses; `lan_ipv4`/`wan_ipv4` (or `*_ipv6`) are added from an IP `address`.
    #[serde(alias = "tagged_addresses", skip_serializing_if = "BTreeMap::is_empty")]
    pub tagged_addresses: BTreeMap<String, ServiceAddress>,
    /// Metadata; `None` is rendered as `null`.
    #[serde(alias = "meta", skip_serializing_if = "Option::is_none")]
    pub meta: Option<BTreeMap<String, String>>,
    /// DNS SRV weights; `{1,1}` when omitted.
    #[serde(alias = "weights", skip_serializing_if = "Option::is_none")]
    pub weights: Option<Weights>,
    /// Consul's tag-override flag (stored and echoed only).
    #[serde(alias = "enable_tag_override")]
    pub enable_tag_override: bool,
    /// A single check.
    #[serde(alias = "check", skip_serializing_if = "Option::is_none")]
    pub check: Option<CheckDefinition>,
    /// Several checks; generated ids are numbered `service:<id>:1`, `:2`, ….
    #[serde(alias = "checks", skip_serializing_if = "Vec::is_empty")]
    pub checks: Vec<CheckDefinition>,
}

/// A service tagged address: `{"Address": "...", "Port": 8000}` (PascalCase on the wire).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase", default)]
pub struct ServiceAddress {
    /// Address.
    #[serde(alias = "address")]
    pub address: String,
    /// Port.
    #[serde(alias = "port")]
    pub port: u16,
}

/// DNS SRV weights of an instance.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct Weights {
    /// Weight while every check passes (1..=65535).
    #[serde(alias = "passing")]
    pub passing: u32,
    /// Weight while some check warns (0..=65535).
    #[serde(alias = "warning")]
    pub warning: u32,
}

/// A check inside `Check`/`Checks`. The double runs `HTTP`, `TCP` and `TTL` checks.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase", default)]
pub struct CheckDefinition {
    /// Check id; generated when absent.
    #[serde(
        rename = "CheckID",
        alias = "check_id",
        alias = "ID",
        skip_serializing_if = "Option::is_none"
    )]
    pub check_id: Option<String>,
    /// Name; defaults to `Service '<name>' check`.
    #[serde(alias = "name", skip_serializing_if = "Option::is_none")]
    pub name: Option<String>,
    /// Free text.
    #[serde(alias = "notes", skip_serializing_if = "String::is_empty")]
    pub notes: String,
    /// Initial status (`passing`, `warning`, `critical`); new checks start `critical` without it.
    #[serde(alias = "status", skip_serializing_if = "Option::is_none")]
    pub status: Option<String>,
    /// TTL check: time-to-live as a Go duration (`15s`).
    #[serde(rename = "TTL", alias = "ttl", skip_serializing_if = "Option::is_none")]
    pub ttl: Option<String>,
    /// HTTP check: URL probed every `interval`.
    #[serde(
        rename = "HTTP",
        alias = "http",
        skip_serializing_if = "Option::is_none"
    )]
    pub http: Option<String>,
    /// HTTP method (default `GET`).
    #[serde(alias = "method", skip_serializing_if = "Option::is_none")]
    pub method: Option<String>,
    /// HTTP request headers.
    #[serde(alias = "header", skip_serializing_if = "BTreeMap::is_empty")]
    pub header: BTreeMap<String, Vec<String>>,
    /// HTTP request body.
    #[serde(alias = "body", skip_serializing_if = "Option::is_none")]
    pub body: Option<String>,
    /// Skip TLS verification for `https` checks.
    #[serde(rename = "TLSSkipVerify", alias = "tls_skip_verify")]
    pub tls_skip_verify: bool,
    /// TCP check: `host:port` connected to every `interval`.
    #[serde(rename = "TCP", alias = "tcp", skip_serializing_if = "Option::is_none")]
    pub tcp: Option<String>,
    /// Probe interval as a Go duration (required for HTTP and TCP).
    #[serde(alias = "interval", skip_serializing_if = "Option::is_none")]
    pub interval: Option<String>,
    /// Probe timeout as a Go duration (default 10 s).
    #[serde(alias = "timeout", skip_serializing_if = "Option::is_none")]
    pub timeout: Option<String>,
    /// Deregister the service once this check has been critical this long.
    #[serde(
        alias = "deregister_critical_service_after",
        skip_serializing_if = "Option::is_none"
    )]
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

const DEFAULT_CHECK_TIMEOUT: Duration = Duration::from_secs(10);

impl ServiceRegistration {
    /// Validates the body and applies Consul's defaults.
    pub(crate) fn validate(&self) -> Result<ServiceSpec, ConsulDoubleError> {
        let invalid = |text: String| ConsulDoubleError::Invalid(text);
        if self.name.is_empty() {
            return Err(invalid("Missing service name".to_owned()));
        }
        let id = self
            .id
            .clone()
            .filter(|id| !id.is_empty())
            .unwrap_or_else(|| self.name.clone());
        if self.address == "0.0.0.0" || self.address == "::" || self.address == "[::]" {
            return Err(invalid("Invalid service address".to_owned()));
        }
        let weights = self.weights.unwrap_or(Weights {
            passing: 1,
            warning: 1,
        });
        if weights.passing < 1 {
            return Err(invalid(
                "Invalid Weights: Passing must be greater than 0".to_owned(),
            ));
        }
        if weights.passing > 65535 || weights.warning > 65535 {
            return Err(invalid(
                "Invalid Weights: Weight must be smaller than 65536".to_owned(),
            ));
        }
        if let Some(meta) = &self.meta {
            validate_meta(meta)?;
        }
        let mut tagged_addresses = self.tagged_addresses.clone();
        if let Ok(ip) = self.address.parse::<IpAddr>() {
            let (lan, wan) = if ip.is_ipv4() {
                ("lan_ipv4", "wan_ipv4")
            } else {
                ("lan_ipv6", "wan_ipv6")
            };
            for key in [lan, wan] {
                tagged_addresses
                    .entry(key.to_owned())
                    .or_insert_with(|| ServiceAddress {
                        address: self.address.clone(),
                        port: self.port,
                    });
            }
        }
        let definitions: Vec<&CheckDefinition> =
            self.check.iter().chain(self.checks.iter()).collect();
        let numbered = definitions.len() > 1;
        let mut checks = Vec::with_capacity(definitions.len());
        for (position, definition) in definitions.into_iter().enumerate() {
            let default_id = if numbered {
                format!("service:{id}:{}", position + 1)
            } else {
                format!("service:{id}")
            };
            checks.push(definition.validate(default_id, &self.name)?);
        }
        Ok(ServiceSpec {
            id,
            name: self.name.clone(),
            tags: self.tags.clone(),
            address: self.address.clone(),
            port: self.port,
            tagged_addresses,
            meta: self.meta.clone(),
            weights,
            enable_tag_override: self.enable_tag_override,
            checks,
        })
    }
}

fn validate_meta(meta: &BTreeMap<String, String>) -> Result<(), ConsulDoubleError> {
    let invalid = |text: String| {
        Err(ConsulDoubleError::Invalid(format!(
            "Invalid Service Meta: {text}"
        )))
    };
    if meta.len() > 64 {
        return invalid("Node metadata cannot contain more than 64 key/value pairs".to_owned());
    }
    for (key, value) in meta {
        let pair = format!("Couldn't load metadata pair ('{key}', '{value}')");
        if key.is_empty() {
            return invalid(format!("{pair}: Key cannot be blank"));
        }
        if !key
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || c == '_' || c == '-')
        {
            return invalid(format!("{pair}: Key contains invalid characters"));
        }
        if key.len() > 128 {
            return invalid(format!("{pair}: Key is too long (limit: 128 characters)"));
        }
        if key.starts_with("consul-") {
            return invalid(format!(
                "{pair}: Key prefix 'consul-' is reserved for internal use"
            ));
        }
        if value.len() > 512 {
            return invalid(format!("{pair}: Value is too long (limit: 512 characters)"));
        }
    }
    Ok(())
}

fn parse_field(value: &Option<String>) -> Result<Option<Duration>, ConsulDoubleError> {
    match value.as_deref() {
        None | Some("") => Ok(None),
        Some(text) => parse_go_duration(text).map(Some).ok_or_else(|| {
            ConsulDoubleError::Invalid(format!(
                "Request decode failed: time: invalid duration \"{text}\""
            ))
        }),
    }
}

impl CheckDefinition {
    fn validate(
        &self,
        default_id: String,
        service_name: &str,
    ) -> Result<CheckSpec, ConsulDoubleError> {
        let invalid = |text: &str| ConsulDoubleError::Invalid(format!("Invalid check: {text}"));
        let initial_status = match self.status.as_deref() {
            None | Some("") => None,
            Some(text) => Some(CheckStatus::parse(text).ok_or_else(|| {
                ConsulDoubleError::Invalid(
                    "Status for checks must 'passing', 'warning', 'critical'".to_owned(),
                )
            })?),
        };
        let ttl = parse_field(&self.ttl)?;
        let interval = parse_field(&self.interval)?.filter(|d| !d.is_zero());
        let timeout = parse_field(&self.timeout)?.filter(|d| !d.is_zero());
        let deregister_after = parse_field(&self.deregister_critical_service_after)?;
        let http = self.http.as_deref().filter(|url| !url.is_empty());
        let tcp = self.tcp.as_deref().filter(|address| !address.is_empty());
        let kinds = usize::from(self.ttl.is_some())
            + usize::from(http.is_some())
            + usize::from(tcp.is_some());
        if kinds != 1 {
            return Err(invalid(
                "exactly one of TTL, HTTP or TCP must be set (the Consul double runs only these kinds)",
            ));
        }
        let kind = if let Some(url) = http {
            let interval = interval.ok_or_else(|| {
                invalid("Interval must be > 0 for Script, HTTP, H2PING, or TCP checks")
            })?;
            CheckKind::Http(HttpProbe {
                url: url.to_owned(),
                method: self
                    .method
                    .clone()
                    .filter(|m| !m.is_empty())
                    .unwrap_or_else(|| "GET".to_owned()),
                header: self.header.clone(),
                body: self.body.clone(),
                tls_skip_verify: self.tls_skip_verify,
                interval,
                timeout: timeout.unwrap_or(DEFAULT_CHECK_TIMEOUT),
                timeout_given: timeout.is_some(),
            })
        } else if let Some(address) = tcp {
            let interval = interval.ok_or_else(|| {
                invalid("Interval must be > 0 for Script, HTTP, H2PING, or TCP checks")
            })?;
            CheckKind::Tcp {
                address: address.to_owned(),
                interval,
                timeout: timeout.unwrap_or(DEFAULT_CHECK_TIMEOUT),
            }
        } else {
            match ttl {
                Some(ttl) if !ttl.is_zero() => CheckKind::Ttl(ttl),
                _ => return Err(invalid("TTL must be > 0 for TTL checks")),
            }
        };
        Ok(CheckSpec {
            id: self
                .check_id
                .clone()
                .filter(|id| !id.is_empty())
                .unwrap_or(default_id),
            name: self
                .name
                .clone()
                .filter(|name| !name.is_empty())
                .unwrap_or_else(|| format!("Service '{service_name}' check")),
            notes: self.notes.clone(),
            initial_status,
            kind,
            deregister_after,
        })
    }
}
