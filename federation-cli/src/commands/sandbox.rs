//! `federation sandbox`: the demo federation, running until Ctrl-C, for trying clients by hand.
//!
//! Trying the Python or Go client against two real clusters needs Consul and a dozen services;
//! this starts the embedded ones (one Consul double per cluster, three instances of each
//! service on 127.0.0.1), prints where everything listens and writes the matching client
//! configuration, then waits for Ctrl-C and shuts everything down.

use std::future::Future;
use std::path::PathBuf;
use std::task::Poll;

use clap::Args;
use federation_core::config::{Config, DiscoverySource};
use federation_testkit::kafka::{KafkaBroker, java_available};
use federation_testkit::redis::RedisServer;
use federation_testkit::sandbox::{Sandbox, SandboxOptions};
use serde::Serialize;

use crate::cli::GlobalArgs;
use crate::exit::{CliError, Exit};
use crate::output::print_json;

/// Arguments of `federation sandbox`.
#[derive(Debug, Args)]
pub struct SandboxArgs {
    /// Write the client configuration (YAML) for the running sandbox to this file.
    #[arg(long, value_name = "PATH")]
    pub write_config: Option<PathBuf>,
    /// Seed for the instances' randomness (latency, errors).
    #[arg(long, default_value_t = 42)]
    pub seed: u64,
    /// Instances do not echo trace and deadline headers into their answers, so every client
    /// gets byte-identical answers (what a benchmark comparing clients needs).
    #[arg(long)]
    pub no_echo: bool,
    /// Also start a Kafka broker (needs Java) and add a `sync` section for it to the written
    /// configuration: both clusters share the broker (the plan's simple setup).
    #[arg(long)]
    pub sync: bool,
    /// Also start a Redis server (`redis-server` must be installed) and give the cached
    /// services a shared `cache.l2` tier on it in the written configuration.
    #[arg(long)]
    pub redis: bool,
}

/// Where things listen (printed at start).
#[derive(Debug, Serialize)]
struct Addresses {
    config: Option<String>,
    kafka: Option<String>,
    redis: Option<String>,
    clusters: Vec<ClusterAddresses>,
}

#[derive(Debug, Serialize)]
struct ClusterAddresses {
    cluster: String,
    consul: Option<String>,
    services: Vec<ServiceAddresses>,
}

#[derive(Debug, Serialize)]
struct ServiceAddresses {
    consul_service: String,
    instances: Vec<String>,
}

/// Runs the sandbox until Ctrl-C.
///
/// # Errors
/// Exit 1 when the sandbox cannot start or the configuration cannot be written.
pub async fn run(global: &GlobalArgs, args: SandboxArgs) -> Result<Exit, CliError> {
    // Listening for Ctrl-C starts before anything is printed: a script or test that sends it as
    // soon as it reads the addresses must find the handler installed (a SIGINT that arrives
    // before it is lost, and the sandbox then never stops).
    let mut interrupted = std::pin::pin!(tokio::signal::ctrl_c());
    let early = std::future::poll_fn(|cx| Poll::Ready(interrupted.as_mut().poll(cx))).await;
    let sandbox = Sandbox::start(SandboxOptions {
        seed: args.seed,
        ..SandboxOptions::default()
    })
    .await
    .map_err(|e| CliError::failure(format!("cannot start the sandbox: {e}")))?;
    if args.no_echo {
        for instance in sandbox.all_instances() {
            instance.set_echo_propagation(false);
        }
    }
    let broker = if args.sync {
        Some(start_broker().await?)
    } else {
        None
    };
    let kafka = broker.as_ref().map(KafkaBroker::bootstrap_servers);
    let redis =
        if args.redis {
            Some(RedisServer::start().await.map_err(|e| {
                CliError::failure(format!("--redis: cannot start redis-server: {e}"))
            })?)
        } else {
            None
        };
    let redis_addr = redis
        .as_ref()
        .and_then(RedisServer::port)
        .map(|p| format!("127.0.0.1:{p}"));
    if let Some(path) = &args.write_config {
        let mut yaml = match &redis_addr {
            Some(addr) => sandbox.config_yaml_with_l2(addr),
            None => sandbox.config_yaml(),
        };
        if let Some(bootstrap) = &kafka {
            yaml.push_str(&sync_yaml(bootstrap));
        }
        std::fs::write(path, yaml).map_err(|e| {
            CliError::failure(format!(
                "cannot write the configuration to {}: {e}",
                path.display()
            ))
        })?;
    }
    let mut addresses = addresses(&sandbox, &sandbox.config(), args.write_config.as_ref());
    addresses.kafka = kafka;
    addresses.redis = redis_addr;
    if global.json {
        print_json(&addresses)?;
    } else {
        print_human(&addresses);
    }
    eprintln!("sandbox running; press Ctrl-C to stop");
    let stopped = match early {
        Poll::Ready(result) => result,
        Poll::Pending => interrupted.await,
    };
    stopped.map_err(|e| CliError::failure(format!("cannot wait for Ctrl-C: {e}")))?;
    eprintln!("stopping the sandbox");
    drop(sandbox);
    if let Some(broker) = broker {
        broker.stop().await;
    }
    drop(redis);
    Ok(Exit::Ok)
}

/// The sandbox's Kafka broker, or why it cannot run (how to enable it).
async fn start_broker() -> Result<KafkaBroker, CliError> {
    if let Err(reason) = java_available() {
        return Err(CliError::failure(format!(
            "--sync needs a Kafka broker, which needs Java: {reason}"
        )));
    }
    eprintln!("starting the Kafka broker (first run downloads ~45 MB of jars from Maven Central)");
    KafkaBroker::start()
        .await
        .map_err(|e| CliError::failure(format!("cannot start the Kafka broker: {e}")))
}

/// The `sync` section for a sandbox whose clusters share the broker at `bootstrap`.
fn sync_yaml(bootstrap: &str) -> String {
    format!(
        "sync:\n  clusters:\n    zervigo: {{ bootstrap_servers: \"{bootstrap}\" }}\n    \
         looma: {{ bootstrap_servers: \"{bootstrap}\" }}\n  entities:\n    \
         user: {{ policy: prefer_cluster, owner: zervigo }}\n    \
         resume: {{ policy: merge_fields }}\n    company: {{}}\n"
    )
}

fn addresses(sandbox: &Sandbox, config: &Config, written: Option<&PathBuf>) -> Addresses {
    let clusters = config
        .clusters
        .iter()
        .map(|cluster| {
            let consul = match &cluster.source {
                DiscoverySource::Consul(c) => Some(c.address.clone()),
                DiscoverySource::Static(_) => None,
            };
            let mut names: Vec<String> = config
                .services
                .iter()
                .flat_map(|s| s.targets.iter())
                .filter(|t| t.cluster == cluster.name)
                .map(|t| t.consul_name.clone())
                .collect();
            names.sort();
            names.dedup();
            let services = names
                .into_iter()
                .map(|name| ServiceAddresses {
                    instances: sandbox
                        .instances(&cluster.name, &name)
                        .iter()
                        .map(|i| i.url())
                        .collect(),
                    consul_service: name,
                })
                .collect();
            ClusterAddresses {
                cluster: cluster.name.clone(),
                consul,
                services,
            }
        })
        .collect();
    Addresses {
        config: written.map(|p| p.display().to_string()),
        kafka: None,
        redis: None,
        clusters,
    }
}

fn print_human(a: &Addresses) {
    for c in &a.clusters {
        println!(
            "{}: consul {}",
            c.cluster,
            c.consul.as_deref().unwrap_or("(static instances)")
        );
        for s in &c.services {
            println!("  {:<20} {}", s.consul_service, s.instances.join("  "));
        }
    }
    if let Some(kafka) = &a.kafka {
        println!("kafka (sync, both clusters): {kafka}");
    }
    if let Some(redis) = &a.redis {
        println!("redis: {redis} (cache.l2 of the cached services)");
    }
    match &a.config {
        Some(path) => println!("client configuration written to {path}"),
        None => println!("(pass --write-config PATH to write the client configuration)"),
    }
}
