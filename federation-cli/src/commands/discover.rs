//! `federation discover [SERVICE]`: the instances of each logical service, per cluster.
//!
//! When a call goes to the "wrong" cluster, the first question is what the client can see. This
//! prints, for each service and each cluster it maps to, the Consul service name, the cluster's
//! score, whether its registry answered or the list is stale, and every instance with its
//! address, Consul health, breaker state and EWMA latency — from the client's own health
//! snapshot. Exit 4 when a shown service has no available instance in any cluster.

use clap::Args;
use federation_core::telemetry::ServiceHealth;

use crate::cli::GlobalArgs;
use crate::commands::snapshot::{Collector, FIRST_ANSWER, exit_for, health_label, registry_label};
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
pub fn render(views: &[ServiceHealth]) -> String {
    let mut out = String::new();
    for view in views {
        let prefer = view
            .preferred
            .as_deref()
            .map_or(String::new(), |p| format!(", prefers {p}"));
        let next = view.selected.as_deref().unwrap_or("none");
        out.push_str(&format!("{} (next call: {next}{prefer})\n", view.service));
        for c in &view.clusters {
            out.push_str(&format!(
                "  {} → {}: {} available of {}, {} ejected, score {:.2}, registry {}\n",
                c.cluster,
                c.consul_service,
                c.available,
                c.discovered,
                c.ejected,
                c.score,
                registry_label(c)
            ));
            if let Some(e) = &c.last_error {
                out.push_str(&format!("    error: {e}\n"));
            }
            if c.instances.is_empty() {
                continue;
            }
            let mut table = Table::new(["instance", "address", "consul health", "breaker", "ewma"]);
            for i in &c.instances {
                table.row([
                    i.id.clone(),
                    i.address.clone(),
                    health_label(i.health).to_owned(),
                    i.breaker.as_str().to_owned(),
                    if i.ewma_ms > 0.0 {
                        format!("{:.1}ms", i.ewma_ms)
                    } else {
                        "-".to_owned()
                    },
                ]);
            }
            out.push_str(&table.render(4));
        }
    }
    out
}
