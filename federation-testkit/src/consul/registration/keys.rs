//! Decoding a registration body the way Consul's agent does, before serde sees it.
//!
//! Real clients send what Go's decoder tolerates and serde does not: HashiCorp's Go client
//! marshals `"Check": null` and `"Checks": null` when no check is given, py-consul writes
//! lower-case keys (`"name"`, `"enabletagoverride"`, `"ttl"`), and others write snake_case
//! (`"tagged_addresses"`, `"deregister_critical_service_after"`). Consul accepts all of them: a
//! JSON `null` leaves a Go field at its zero value, `lib.TranslateKeys` maps the snake_case
//! spellings, and mapstructure matches field names case-insensitively. A double that refused
//! them would reject every Go service with `Request decode failed: invalid type: null`. So the
//! body is first rewritten: `null` members are dropped and the keys of the known objects
//! (service, checks, weights, tagged-address values) are renamed to Consul's PascalCase names
//! when they match ignoring case and underscores. Keys inside free-form maps (`Meta`, `Header`,
//! `TaggedAddresses`, `Proxy`, `Connect`) are data and stay as sent.

use serde_json::{Map, Value};

/// The fields of `structs.ServiceDefinition` the double reads or echoes.
const SERVICE_KEYS: &[&str] = &[
    "ID",
    "Name",
    "Tags",
    "Address",
    "Port",
    "TaggedAddresses",
    "Meta",
    "Weights",
    "EnableTagOverride",
    "Check",
    "Checks",
    "Kind",
    "Proxy",
    "Connect",
    "SocketPath",
];

/// The fields of `structs.CheckType` the double reads.
const CHECK_KEYS: &[&str] = &[
    "CheckID",
    "Name",
    "Notes",
    "Status",
    "TTL",
    "HTTP",
    "Method",
    "Header",
    "Body",
    "TLSSkipVerify",
    "TCP",
    "Interval",
    "Timeout",
    "DeregisterCriticalServiceAfter",
    "ScriptArgs",
    "GRPC",
    "H2PING",
    "UDP",
    "AliasService",
    "AliasNode",
    "DockerContainerID",
    "OSService",
];

const WEIGHT_KEYS: &[&str] = &["Passing", "Warning"];
const ADDRESS_KEYS: &[&str] = &["Address", "Port"];

/// `enable_tag_override`, `EnableTagOverride` and `enabletagoverride` all compare equal.
fn folded(key: &str) -> String {
    key.chars()
        .filter(|c| *c != '_')
        .flat_map(char::to_lowercase)
        .collect()
}

/// Drops `null` members and renames keys matching one of `known` to its canonical spelling.
/// Unknown keys are kept as sent (serde ignores them, as Consul ignores unknown fields).
fn canonical(object: Map<String, Value>, known: &[&str]) -> Map<String, Value> {
    let mut out = Map::with_capacity(object.len());
    for (key, value) in object {
        if value.is_null() {
            continue;
        }
        let wanted = folded(&key);
        let name = known
            .iter()
            .find(|candidate| folded(candidate) == wanted)
            .map_or(key, |candidate| (*candidate).to_owned());
        out.insert(name, value);
    }
    out
}

/// [`canonical`] applied to an object value (other values are returned unchanged).
pub(crate) fn canonical_value(value: Value, known: &[&str]) -> Value {
    match value {
        Value::Object(object) => Value::Object(canonical(object, known)),
        other => other,
    }
}

/// Rewrites a `PUT /v1/agent/service/register` body (any JSON value; non-objects are left for
/// serde to reject with its own message).
pub(crate) fn canonical_registration(body: Value) -> Value {
    let Value::Object(object) = body else {
        return body;
    };
    let mut service = canonical(object, SERVICE_KEYS);
    if let Some(check) = service.remove("Check") {
        service.insert("Check".to_owned(), canonical_value(check, CHECK_KEYS));
    }
    if let Some(Value::Array(checks)) = service.remove("Checks") {
        let checks = checks
            .into_iter()
            .filter(|check| !check.is_null())
            .map(|check| canonical_value(check, CHECK_KEYS))
            .collect();
        service.insert("Checks".to_owned(), Value::Array(checks));
    }
    if let Some(weights) = service.remove("Weights") {
        service.insert("Weights".to_owned(), canonical_value(weights, WEIGHT_KEYS));
    }
    if let Some(Value::Object(addresses)) = service.remove("TaggedAddresses") {
        let addresses = addresses
            .into_iter()
            .filter(|(_, address)| !address.is_null())
            .map(|(tag, address)| (tag, canonical_value(address, ADDRESS_KEYS)))
            .collect();
        service.insert("TaggedAddresses".to_owned(), Value::Object(addresses));
    }
    Value::Object(service)
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    #[test]
    fn nulls_are_dropped_and_keys_take_consul_spelling() {
        let body = json!({
            "name": "web", "enabletagoverride": true, "Checks": null, "Check": null,
            "tagged_addresses": {"lan_ipv4": {"address": "10.0.0.1", "port": 80}},
            "meta": {"some_key": "v"},
            "checks": [{"ttl": "10s", "deregister_critical_service_after": "1m", "Notes": null}],
        });
        let out = canonical_registration(body);
        assert_eq!(
            out,
            json!({
                "Name": "web", "EnableTagOverride": true,
                "TaggedAddresses": {"lan_ipv4": {"Address": "10.0.0.1", "Port": 80}},
                "Meta": {"some_key": "v"},
                "Checks": [{"TTL": "10s", "DeregisterCriticalServiceAfter": "1m"}],
            })
        );
    }
}
