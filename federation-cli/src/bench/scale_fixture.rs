//! The scale scenario's world: two Consul doubles holding a thousand services each, and the
//! generated client configuration that names every one of them.
//!
//! A scale claim measured on a hand-typed configuration of three services proves nothing; the
//! services, instances and configuration here are generated from one [`Shape`], so the full run
//! and the smoke run differ only in their numbers. The first [`Shape::real`] services of each
//! cluster point at live loopback servers (they are the ones called); the others point at
//! closed ports and are only discovered, never called.

use std::fmt::Write as _;

use federation_core::config::{Config, ConfigFormat};
use federation_testkit::consul::{ConsulDouble, ConsulOptions, ServiceRegistration};

use crate::exit::CliError;

/// Cluster names (and their datacenters).
pub const CLUSTERS: [&str; 2] = ["scale-a", "scale-b"];
/// A port nothing listens on (instances that are discovered but never called).
const DEAD_PORT: u16 = 9;

/// How big the generated world is.
#[derive(Clone, Copy, Debug)]
pub struct Shape {
    /// Services per cluster (the client configures all of them).
    pub services: usize,
    /// Instances of every service in every cluster.
    pub instances: usize,
    /// Leading services whose instances are live loopback servers.
    pub real: usize,
    /// Blocking-query wait of the client, in seconds.
    pub wait_secs: u64,
}

impl Shape {
    /// Instances known to a client watching every service of both clusters.
    pub fn total_instances(&self) -> usize {
        CLUSTERS.len() * self.services * self.instances
    }
}

/// The name of service `i` (the same in Consul and in the client configuration).
pub fn service_name(i: usize) -> String {
    format!("svc-{i:04}")
}

/// The Consul id of instance `k` of service `i`.
pub fn instance_id(i: usize, k: usize) -> String {
    format!("svc-{i:04}-{k:02}")
}

/// Starts one double per cluster and registers every instance of `shape`; the first
/// `shape.real` services point at the live servers on `ports` (round robin), the rest at a
/// closed port.
///
/// # Errors
/// When a double cannot start or refuses a registration.
pub async fn start_doubles(shape: &Shape, ports: &[u16]) -> Result<Vec<ConsulDouble>, CliError> {
    let mut doubles = Vec::with_capacity(CLUSTERS.len());
    for dc in CLUSTERS {
        let double = ConsulDouble::start(ConsulOptions::new(dc))
            .await
            .map_err(|e| CliError::failure(format!("bench: scale: Consul double: {e}")))?;
        for i in 0..shape.services {
            for k in 0..shape.instances {
                let port = match ports.get(k % ports.len().max(1)) {
                    Some(&port) if i < shape.real => port,
                    _ => DEAD_PORT,
                };
                double
                    .register(ServiceRegistration {
                        id: Some(instance_id(i, k)),
                        name: service_name(i),
                        address: "127.0.0.1".to_owned(),
                        port,
                        ..ServiceRegistration::default()
                    })
                    .map_err(|e| CliError::failure(format!("bench: scale: register: {e}")))?;
            }
        }
        doubles.push(double);
    }
    Ok(doubles)
}

/// A client for a scale configuration, with lazy discovery watches (a service is watched from
/// its first call, or `wait_ready`): the setting the scale goals are measured with.
pub fn lazy_client(
    config: Config,
) -> Result<federation_core::client::FederatedServiceClient, federation_core::Error> {
    federation_core::client::FederatedServiceClient::builder()
        .config(config)
        .lazy_discovery_watches(true)
        .build()
}

/// A client configuration with both clusters and `services` logical services, each served by
/// both clusters under the same name and preferring the first.
///
/// # Errors
/// When the generated configuration does not validate (a bug in the harness).
pub fn config(urls: &[String], services: usize, wait_secs: u64) -> Result<Config, CliError> {
    let mut yaml = String::from("clusters:\n");
    for (dc, url) in CLUSTERS.iter().zip(urls) {
        let _ = writeln!(
            yaml,
            "  {dc}:\n    consul: {{ address: \"{url}\", datacenter: {dc}, wait: {wait_secs}s }}"
        );
    }
    yaml.push_str("services:\n");
    for i in 0..services {
        let name = service_name(i);
        let _ = writeln!(
            yaml,
            "  {name}:\n    prefer: {}\n    names: {{ {}: {name}, {}: {name} }}",
            CLUSTERS[0], CLUSTERS[0], CLUSTERS[1]
        );
    }
    Config::parse(&yaml, ConfigFormat::Yaml)
        .map_err(|e| CliError::failure(format!("bench: scale: generated configuration: {e}")))
}

/// Health requests both doubles received for the first `services` services.
pub fn health_requests(doubles: &[ConsulDouble], services: usize) -> u64 {
    let mut total = 0;
    for double in doubles {
        for i in 0..services {
            total += double.health_requests(&service_name(i));
        }
    }
    total
}

/// This process's resident set (`VmRSS` of `/proc/self/status`), in KiB.
pub fn rss_kib() -> Option<u64> {
    let status = std::fs::read_to_string("/proc/self/status").ok()?;
    status_field(&status, "VmRSS:")
}

/// The KiB value of `field` in a `/proc/<pid>/status` text.
fn status_field(status: &str, field: &str) -> Option<u64> {
    let line = status.lines().find(|l| l.starts_with(field))?;
    line[field.len()..]
        .trim()
        .trim_end_matches("kB")
        .trim()
        .parse()
        .ok()
}

/// CPU time (user + system) this process used so far, in seconds (`getrusage` via
/// `/proc/self/stat`, clock ticks of 10 ms on Linux).
pub fn cpu_seconds() -> Option<f64> {
    cpu_seconds_of("self")
}

/// Seconds the threads of process `pid` (a number, or `self`) spent runnable but waiting for a
/// CPU so far (the second field of every `/proc/<pid>/task/*/schedstat`; threads that ended are
/// not counted).
pub fn run_queue_seconds_of(pid: &str) -> f64 {
    let Ok(tasks) = std::fs::read_dir(format!("/proc/{pid}/task")) else {
        return 0.0;
    };
    let waited: u64 = tasks
        .flatten()
        .filter_map(|t| std::fs::read_to_string(t.path().join("schedstat")).ok())
        .filter_map(|line| line.split_whitespace().nth(1)?.parse::<u64>().ok())
        .sum();
    waited as f64 / 1e9
}

/// CPU time (user + system) process `pid` (a number, or `self`) used so far, in seconds.
pub fn cpu_seconds_of(pid: &str) -> Option<f64> {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    // Fields after the command name (which may contain spaces) start after the last `)`.
    let rest = &stat[stat.rfind(')')? + 2..];
    let fields: Vec<&str> = rest.split_whitespace().collect();
    // utime and stime are fields 14 and 15 of the whole line: 11 and 12 after the name.
    let utime: f64 = fields.get(11)?.parse().ok()?;
    let stime: f64 = fields.get(12)?.parse().ok()?;
    Some((utime + stime) / 100.0)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rss_lines_are_parsed() {
        let text = "Name:\tfederation\nVmRSS:\t   12345 kB\nVmSwap:\t0 kB\n";
        assert_eq!(status_field(text, "VmRSS:"), Some(12345));
        assert_eq!(status_field(text, "VmHWM:"), None);
        assert!(rss_kib().is_some_and(|kib| kib > 0));
        assert!(cpu_seconds().is_some());
    }

    #[test]
    fn the_generated_configuration_names_every_service() {
        let urls = vec!["http://127.0.0.1:1".to_owned(), "http://127.0.0.1:2".into()];
        let config = config(&urls, 12, 5).expect("valid");
        assert_eq!(config.services.len(), 12);
        assert_eq!(config.clusters.len(), 2);
    }
}
