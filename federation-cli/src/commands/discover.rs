//! `federation discover [SERVICE]`: the instances of each logical service, per cluster.
//!
//! When a call goes to the "wrong" cluster, the first question is what the client can see. This
//! prints, for each service and each cluster it maps to, the Consul service name, every
//! instance with its address, Consul health and whether it is routable (health and tag filter),
//! and whether the registry answered or the list is stale. Exit 4 when a shown service has no
//! routable instance in any cluster.

use clap::Args;

use crate::cli::GlobalArgs;
use crate::commands::snapshot::{Collector, FIRST_ANSWER, ServiceView, exit_for, health_label};
use crate::config_source;
use crate::exit::{CliError, Exit};
use crate::output::{Table, print_json};

/// Arguments of `federation discover`.
#[derive(Debug, Args)]
pub struct DiscoverArgs {
    /// Only this logical service (default: every configured service).
    #[arg(value_name = "SERVICE")]
    pub service: Option<String>,
}

/// Runs discovery once and prints the result.
///
/// # Errors
/// Exit 3 for a missing or invalid configuration, 2 for an unknown service.
pub async fn run(global: &GlobalArgs, args: DiscoverArgs) -> Result<Exit, CliError> {
    let config = config_source::load(global.config.as_deref())?;
    let collector = Collector::new(config)?;
    let services = collector.services(args.service.as_deref())?;
    let views = collector.snapshot(&services, FIRST_ANSWER).await;
    if global.json {
        print_json(&serde_json::json!({ "services": views }))?;
    } else {
        print!("{}", render(&views));
    }
    Ok(exit_for(&views))
}

/// The human form: one block per service, one table per cluster.
pub fn render(views: &[ServiceView]) -> String {
    let mut out = String::new();
    for view in views {
        let prefer = view
            .prefer
            .as_deref()
            .map_or(String::new(), |p| format!(" (prefers {p})"));
        out.push_str(&format!("{}{prefer}\n", view.service));
        for c in &view.clusters {
            let mut state = format!("{} routable of {}", c.routable, c.instances.len());
            if !c.initialized {
                state.push_str(", registry never answered");
            } else if c.stale {
                state.push_str(", STALE (registry unreachable; last known instances)");
            }
            out.push_str(&format!(
                "  {} → {}: {state}\n",
                c.cluster, c.consul_service
            ));
            if let Some(e) = &c.error {
                out.push_str(&format!("    error: {e}\n"));
            }
            if c.instances.is_empty() {
                continue;
            }
            let mut table =
                Table::new(["instance", "address", "consul health", "routable", "tags"]);
            for i in &c.instances {
                table.row([
                    i.id.clone(),
                    i.address.clone(),
                    health_label(i.health).to_owned(),
                    if i.routable { "yes" } else { "no" }.to_owned(),
                    i.tags.join(","),
                ]);
            }
            out.push_str(&table.render(4));
        }
    }
    out
}
