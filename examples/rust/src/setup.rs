//! Where the examples get their federation from: a configuration file or the sandbox.
//!
//! A first run must work with nothing installed, so `--sandbox` starts both clusters on
//! `127.0.0.1` (Consul doubles and instances from `federation-testkit`) and builds the client from
//! the sandbox's configuration; `--config PATH` uses a real federation instead. A fresh client
//! routes as soon as one registry answers, so the examples wait for every cluster first
//! (`FederatedServiceClient::wait_ready`): otherwise the first call could go to the non-preferred cluster only because its
//! Consul answered a few milliseconds earlier.

use std::path::PathBuf;
use std::time::Duration;

use clap::Parser;
use federation_core::client::FederatedServiceClient;
use federation_core::config::Config;
use federation_testkit::sandbox::{Sandbox, SandboxOptions};

use crate::BoxError;

/// Command line of both examples.
#[derive(Debug, Parser)]
#[command(group(clap::ArgGroup::new("source").required(true).args(["config", "sandbox"])))]
pub struct Args {
    /// Client configuration file (YAML, TOML or JSON; see docs/configuration.md).
    #[arg(long, value_name = "PATH", env = "FEDERATION_CONFIG")]
    pub config: Option<PathBuf>,
    /// Start the embedded two-cluster sandbox and demonstrate failover by killing instances.
    #[arg(long)]
    pub sandbox: bool,
}

/// How long to wait for every registry to answer once before calling anyway.
pub const DISCOVERY_WAIT: Duration = Duration::from_secs(10);

/// A running federation for an example: the client, and the sandbox when one was started.
#[derive(Debug)]
pub struct Federation {
    /// The client every call goes through.
    pub client: FederatedServiceClient,
    /// The sandbox, with `--sandbox` (the example may kill its instances).
    pub sandbox: Option<Sandbox>,
}

impl Federation {
    /// Builds the client from `args`. With `--sandbox`, starts the sandbox and lets `adjust`
    /// change its configuration first (an example enables the policies it demonstrates).
    ///
    /// # Errors
    /// An unreadable or invalid configuration, or a sandbox that cannot start.
    pub async fn start(args: &Args, adjust: impl FnOnce(&mut Config)) -> Result<Self, BoxError> {
        if let Some(path) = &args.config {
            let config = Config::from_file(path)?;
            let client = FederatedServiceClient::from_config(config)?;
            return Ok(Self {
                client,
                sandbox: None,
            });
        }
        let sandbox = Sandbox::start(SandboxOptions::default())
            .await
            .map_err(|e| format!("cannot start the sandbox: {e}"))?;
        let mut config = sandbox.config();
        adjust(&mut config);
        let client = FederatedServiceClient::from_config(config)?;
        Ok(Self {
            client,
            sandbox: Some(sandbox),
        })
    }

    /// Stops the sandbox, if one was started.
    pub async fn shutdown(self) {
        if let Some(sandbox) = self.sandbox {
            sandbox.shutdown().await;
        }
    }
}

/// Waits (at most `wait`) until the client itself sees `available(n)` hold for the number of
/// instances of `service` it may pick in `cluster` (discovery and breakers applied). Returns
/// whether it did. A registry's view changes first; this is the client's.
pub async fn wait_for_available(
    client: &FederatedServiceClient,
    service: &str,
    cluster: &str,
    available: impl Fn(usize) -> bool,
    wait: Duration,
) -> bool {
    let give_up = tokio::time::Instant::now() + wait;
    loop {
        let health = client.health();
        let now = health
            .service(service)
            .and_then(|s| s.cluster(cluster))
            .map(|c| c.available);
        if now.is_some_and(&available) {
            return true;
        }
        if tokio::time::Instant::now() >= give_up {
            return false;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}
