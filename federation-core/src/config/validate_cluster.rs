//! Checks of one cluster: its discovery source, static instances, default headers and TLS.
//!
//! A cluster that cannot be reached looks, at run time, exactly like a cluster whose instances
//! are all down; these checks catch the configuration causes (an address without a scheme,
//! a half-configured mTLS pair, a header the HTTP stack rejects) before the client starts.

use std::collections::HashSet;

use super::error::{Problems, index, join};
use super::model::{
    ClusterConfig, ConsulSource, DefaultHeader, DiscoverySource, HeaderValueSource, StaticInstance,
};
use super::validate::check_name;

pub(crate) fn check_cluster(cluster: &ClusterConfig, path: &str, p: &mut Problems) {
    check_name(&cluster.name, "cluster", path, p);
    match &cluster.source {
        DiscoverySource::Consul(consul) => check_consul(consul, &join(path, "consul"), p),
        DiscoverySource::Static(services) => {
            let path = join(path, "static");
            if services.is_empty() {
                p.push(
                    &path,
                    None,
                    "a static source must list at least one service",
                );
            }
            for (service, instances) in services {
                let service_path = join(&path, service);
                if service.trim().is_empty() {
                    p.push(&service_path, None, "empty Consul service name");
                }
                let mut ids = HashSet::new();
                for (i, instance) in instances.iter().enumerate() {
                    let path = index(&service_path, i);
                    check_instance(instance, &path, p);
                    let id = instance
                        .id
                        .clone()
                        .unwrap_or_else(|| format!("{}:{}", instance.address, instance.port));
                    if !ids.insert(id.clone()) {
                        p.push(
                            &path,
                            Some(format!("\"{id}\"")),
                            "two instances of this service have the same id (default id: address:port)",
                        );
                    }
                }
            }
        }
    }
    let mut names = HashSet::new();
    for header in &cluster.headers {
        let path = join(&join(path, "headers"), &header.name);
        if !names.insert(header.name.to_ascii_lowercase()) {
            p.push(
                &path,
                None,
                "header given more than once (names are case-insensitive)",
            );
        }
        check_header(header, &path, p);
    }
    let connections = join(path, "connections");
    for (key, value) in [
        ("idle_timeout", cluster.connections.idle_timeout),
        ("connect_timeout", cluster.connections.connect_timeout),
    ] {
        if value.is_some_and(|d| d.is_zero()) {
            p.push(
                &join(&connections, key),
                Some("0s".to_owned()),
                "must be more than 0 (to keep no idle connections, set `max_idle_per_instance: 0`)",
            );
        }
    }
    if let Some(tls) = &cluster.tls {
        let path = join(path, "tls");
        for (key, file) in [
            ("ca_file", &tls.ca_file),
            ("client_cert", &tls.client_cert),
            ("client_key", &tls.client_key),
        ] {
            if file.as_ref().is_some_and(|f| f.as_os_str().is_empty()) {
                p.push(
                    &join(&path, key),
                    Some("\"\"".to_owned()),
                    "empty file path",
                );
            }
        }
        match (&tls.client_cert, &tls.client_key) {
            (Some(_), None) => p.push(
                &join(&path, "client_key"),
                None,
                "`client_cert` is set without `client_key`; mutual TLS needs both",
            ),
            (None, Some(_)) => p.push(
                &join(&path, "client_cert"),
                None,
                "`client_key` is set without `client_cert`; mutual TLS needs both",
            ),
            _ => {}
        }
    }
}

fn check_consul(consul: &ConsulSource, path: &str, p: &mut Problems) {
    let address_path = join(path, "address");
    if let Err(message) = check_http_url(&consul.address) {
        // Credentials in the address are secret: do not echo the value then.
        let value = (!consul.address.contains('@')).then(|| format!("\"{}\"", consul.address));
        p.push(&address_path, value, message);
    }
    if consul.datacenter.as_deref().is_some_and(str::is_empty) {
        p.push(
            &join(path, "datacenter"),
            Some("\"\"".to_owned()),
            "empty datacenter; omit it to accept the agent's own",
        );
    }
    if consul.token.is_some() && consul.token_env.is_some() {
        p.push(path, None, "give either `token` or `token_env`, not both");
    }
    if consul.token.as_ref().is_some_and(|t| t.expose().is_empty()) {
        p.push(
            &join(path, "token"),
            None,
            "empty token; omit it for anonymous access",
        );
    }
    if let Some(var) = &consul.token_env {
        check_env_name(var, &join(path, "token_env"), p);
    }
    if consul
        .ca_file
        .as_ref()
        .is_some_and(|f| f.as_os_str().is_empty())
    {
        p.push(
            &join(path, "ca_file"),
            Some("\"\"".to_owned()),
            "empty file path",
        );
    }
    let max_wait = std::time::Duration::from_secs(600);
    if consul.wait.is_zero() || consul.wait > max_wait {
        p.push(
            &join(path, "wait"),
            Some(super::units::format_duration(consul.wait)),
            "allowed: more than 0s and at most 10m (Consul's cap)",
        );
    }
}

/// Checks an agent base URL: `http(s)://host[:port][/path]`, no credentials, query or fragment.
fn check_http_url(address: &str) -> Result<(), String> {
    let example =
        "expected an http:// or https:// URL of the agent, e.g. \"http://consul-zervigo:8500\"";
    let rest = address
        .strip_prefix("http://")
        .or_else(|| address.strip_prefix("https://"))
        .ok_or_else(|| example.to_owned())?;
    let authority = rest.split('/').next().unwrap_or_default();
    if authority.contains('@') {
        return Err("do not put credentials in the address; use `token` or `token_env`".to_owned());
    }
    if rest.contains(['?', '#']) || rest.contains(char::is_whitespace) {
        return Err("the agent address must not contain a query, fragment or spaces".to_owned());
    }
    let (host, port) = if let Some(v6) = authority.strip_prefix('[') {
        let (inside, after) = v6.split_once(']').ok_or_else(|| example.to_owned())?;
        if inside.parse::<std::net::Ipv6Addr>().is_err() {
            return Err(example.to_owned());
        }
        (inside, after.strip_prefix(':'))
    } else {
        match authority.split_once(':') {
            Some((host, port)) => (host, Some(port)),
            None => (authority, None),
        }
    };
    let host_ok = !host.is_empty()
        && host
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '-' | '.' | '_' | ':'));
    let port_ok = port.is_none_or(|p| p.parse::<u16>().is_ok_and(|p| p > 0));
    if host_ok && port_ok {
        Ok(())
    } else {
        Err(example.to_owned())
    }
}

fn check_env_name(var: &str, path: &str, p: &mut Problems) {
    if var.is_empty() || var.contains(['=', '\0']) {
        p.push(
            path,
            Some(format!("\"{var}\"")),
            "invalid environment variable name (empty or containing `=`)",
        );
    }
}

fn check_instance(instance: &StaticInstance, path: &str, p: &mut Problems) {
    let address = &instance.address;
    let address_ok = !address.is_empty()
        && !address.contains("://")
        && !address.contains(['/', ' '])
        && (!address.contains(':') || address.parse::<std::net::Ipv6Addr>().is_ok());
    if !address_ok {
        p.push(
            &join(path, "address"),
            Some(format!("\"{address}\"")),
            "expected a host name or IP address without scheme or port (the port goes in `port`)",
        );
    }
    if instance.port == 0 {
        p.push(
            &join(path, "port"),
            Some("0".to_owned()),
            "allowed: 1 to 65535",
        );
    }
    if !(1..=65535).contains(&instance.weight) {
        p.push(
            &join(path, "weight"),
            Some(instance.weight.to_string()),
            "allowed: 1 to 65535",
        );
    }
    if instance.id.as_deref().is_some_and(str::is_empty) {
        p.push(
            &join(path, "id"),
            Some("\"\"".to_owned()),
            "empty id; omit it to use address:port",
        );
    }
    for (i, tag) in instance.tags.iter().enumerate() {
        if tag.is_empty() {
            p.push(
                &index(&join(path, "tags"), i),
                Some("\"\"".to_owned()),
                "empty tag",
            );
        }
    }
}

/// Headers the client manages itself; overriding them breaks framing or routing.
const RESERVED_HEADERS: &[&str] = &[
    "host",
    "content-length",
    "transfer-encoding",
    "connection",
    "upgrade",
    "te",
    "trailer",
];

fn check_header(header: &DefaultHeader, path: &str, p: &mut Problems) {
    let name = &header.name;
    match http::HeaderName::from_bytes(name.as_bytes()) {
        Ok(parsed) if RESERVED_HEADERS.contains(&parsed.as_str()) => p.push(
            path,
            None,
            format!("`{name}` is set by the client itself and cannot be configured"),
        ),
        Ok(_) => {}
        Err(_) => p.push(
            path,
            None,
            "invalid header name; use letters, digits and `-` (e.g. X-Api-Key)",
        ),
    }
    match &header.value {
        HeaderValueSource::Value(secret) => {
            if http::HeaderValue::from_str(secret.expose()).is_err() {
                p.push(
                    path,
                    None,
                    "the header value contains characters not allowed in HTTP headers \
                     (control characters or non-ASCII)",
                );
            }
        }
        HeaderValueSource::Env(var) => check_env_name(var, &join(path, "env"), p),
    }
}
