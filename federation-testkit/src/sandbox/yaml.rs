//! The sandbox configuration as YAML text, for `federation sandbox --write-config`.
//!
//! Written from the same tables as the typed configuration (see `topology.rs`), in the layout
//! of the brief's example, so a person can read and edit it. Every value written here is a
//! plain identifier, URL or duration, so no YAML quoting rules beyond double quotes are needed.

use std::fmt::Write as _;
use std::time::Duration;

use federation_core::config::LoadBalancing;
use federation_core::config::units::format_duration;

use super::topology::{AI_CACHE_TTL, CLUSTERS, LOGICAL};

/// YAML for doubles at `consul_urls` (same order as the seed clusters).
pub(crate) fn render(consul_urls: &[String], wait: Duration) -> String {
    render_with_l2(consul_urls, wait, None)
}

/// [`render`], with the cached services sharing the Redis at `l2` (`host:port`) when given.
pub(crate) fn render_with_l2(consul_urls: &[String], wait: Duration, l2: Option<&str>) -> String {
    let mut out = String::new();
    out.push_str(
        "# federation sandbox: two clusters on 127.0.0.1, each with its own Consul double.\n",
    );
    out.push_str("# Valid only while `federation sandbox` runs (the ports are ephemeral).\n");
    out.push_str("clusters:\n");
    for (seed, url) in CLUSTERS.iter().zip(consul_urls) {
        let _ = writeln!(out, "  {}:", seed.name);
        let _ = writeln!(
            out,
            "    consul: {{ address: \"{url}\", datacenter: {}, wait: {} }}",
            seed.datacenter,
            format_duration(wait)
        );
        let _ = writeln!(
            out,
            "    load_balancing: {}",
            balancing(seed.load_balancing)
        );
    }
    out.push_str("services:\n");
    for logical in &LOGICAL {
        let _ = writeln!(out, "  {}:", logical.name);
        if let Some(prefer) = logical.prefer {
            let _ = writeln!(out, "    prefer: {prefer}");
        }
        let names: Vec<String> = logical
            .names
            .iter()
            .map(|(cluster, name)| format!("{cluster}: {name}"))
            .collect();
        let _ = writeln!(out, "    names: {{ {} }}", names.join(", "));
        if !logical.tags.is_empty() {
            let tags: Vec<String> = logical.tags.iter().map(|t| format!("\"{t}\"")).collect();
            let _ = writeln!(out, "    tags: [{}]", tags.join(", "));
        }
        if logical.cached {
            let shared = l2
                .map(|addr| format!(", l2: {{ address: \"{addr}\", timeout: 20ms }}"))
                .unwrap_or_default();
            let _ = writeln!(
                out,
                "    cache: {{ ttl: {}, methods: [GET, POST]{shared} }}",
                format_duration(AI_CACHE_TTL)
            );
        }
    }
    out
}

fn balancing(lb: LoadBalancing) -> &'static str {
    match lb {
        LoadBalancing::PeakEwma => "peak_ewma",
        LoadBalancing::LeastRequest => "least_request",
        LoadBalancing::RoundRobin => "round_robin",
    }
}
