//! Validation of a decoded registration into a [`ServiceSpec`], with Consul's defaults and
//! Consul's error texts.

use std::collections::BTreeMap;
use std::net::IpAddr;
use std::time::Duration;

use super::{
    CheckDefinition, CheckKind, CheckSpec, HttpProbe, ServiceAddress, ServiceRegistration,
    ServiceSpec, Weights,
};
use crate::consul::duration::parse_go_duration;
use crate::consul::error::ConsulDoubleError;
use crate::consul::options::CheckStatus;

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
        check_weights(i64::from(weights.passing), i64::from(weights.warning))?;
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
        // An all-empty `Check` is no check (Consul's `CheckType.Empty()`).
        let single = self
            .check
            .iter()
            .filter(|check| **check != CheckDefinition::default());
        let definitions: Vec<&CheckDefinition> = single.chain(self.checks.iter()).collect();
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
            kind: self.kind.clone(),
            proxy: self.proxy.clone(),
            connect: self.connect.clone(),
            socket_path: self.socket_path.clone(),
            checks,
        })
    }
}

/// Consul's `structs.ValidateWeights`, in its order and with its texts.
pub(super) fn check_weights(passing: i64, warning: i64) -> Result<(), ConsulDoubleError> {
    let invalid = |text: &str| {
        Err(ConsulDoubleError::Invalid(format!(
            "Invalid Weights: {text}"
        )))
    };
    if passing < 1 {
        return invalid("Passing must be greater than 0");
    }
    if warning < 0 {
        return invalid("Warning must be greater or equal than 0");
    }
    if passing > 65535 || warning > 65535 {
        return invalid("DNS Weight must be between 0 and 65535");
    }
    Ok(())
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
            // Go's wording: a bare number lacks its unit (`wait=10`, `TTL: "10"`).
            let missing_unit = text
                .trim_start_matches(['-', '+'])
                .chars()
                .all(|c| c.is_ascii_digit() || c == '.');
            let what = if missing_unit {
                "missing unit in duration"
            } else {
                "invalid duration"
            };
            ConsulDoubleError::Invalid(format!("Request decode failed: time: {what} \"{text}\""))
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
