//! `federation health [--watch]`: is every service reachable, and from which clusters?
//!
//! One line per service and cluster — available instances out of those discovered, ejections,
//! cluster score, the cluster the next call would use, registry freshness — answers "can this client serve X right now" at a glance; `--watch` repeats it
//! until Ctrl-C so an operator can follow a failover or a registry outage live (with `--json`,
//! one JSON document per line). Exit 4 when some service has no available instance anywhere.

use std::time::Duration;

use clap::Args;

use crate::cli::GlobalArgs;
use federation_core::telemetry::{ConfigGeneration, ServiceHealth};

use crate::commands::snapshot::{Collector, FIRST_ANSWER, exit_for, registry_label};
use crate::config_source;
use crate::duration::parse_duration;
use crate::exit::{CliError, Exit};
use crate::output::{Table, print_json};

/// Arguments of `federation health`.
#[derive(Debug, Args)]
pub struct HealthArgs {
    /// Refresh until Ctrl-C instead of printing once.
    #[arg(long)]
    pub watch: bool,
    /// Refresh period with --watch.
    #[arg(long, default_value = "2s", value_parser = parse_duration)]
    pub interval: Duration,
}

/// Prints the health once, or repeatedly with `--watch`.
///
/// # Errors
/// Exit 3 for a missing or invalid configuration.
pub async fn run(global: &GlobalArgs, args: HealthArgs) -> Result<Exit, CliError> {
    let (config, path) = config_source::load_with_path(global.config.as_deref())?;
    // With --watch, edits of the file are applied (and shown as a new generation).
    let collector = if args.watch {
        Collector::watching(config, path, args.interval.max(Duration::from_millis(100)))?
    } else {
        Collector::new(config)?
    };
    let mut views = collector
        .snapshot(&collector.services(None)?, FIRST_ANSWER)
        .await;
    loop {
        let generation = collector.generation();
        if global.json {
            let doc = serde_json::json!({ "config": generation, "services": health_json(&views) });
            if args.watch {
                println!("{doc}");
            } else {
                print_json(&doc)?;
            }
        } else {
            print!("{}{}", render_generation(&generation), render(&views));
        }
        if !args.watch {
            return Ok(exit_for(&views));
        }
        tokio::select! {
            _ = tokio::time::sleep(args.interval.max(Duration::from_millis(100))) => {}
            _ = tokio::signal::ctrl_c() => return Ok(exit_for(&views)),
        }
        views = collector
            .snapshot(&collector.services(None)?, FIRST_ANSWER)
            .await;
        if !global.json {
            println!();
        }
    }
}

fn status(view: &ServiceHealth) -> &'static str {
    let serving = view.clusters.iter().filter(|c| c.available > 0).count();
    if serving == 0 {
        "down"
    } else if serving < view.clusters.len() || view.clusters.iter().any(|c| c.stale) {
        "degraded"
    } else {
        "ok"
    }
}

fn health_json(views: &[ServiceHealth]) -> serde_json::Value {
    views
        .iter()
        .map(|v| {
            let mut doc = serde_json::to_value(v).unwrap_or_default();
            if let Some(map) = doc.as_object_mut() {
                map.insert("status".to_owned(), status(v).into());
            }
            doc
        })
        .collect()
}

/// `config generation N (source, loaded at T)`, then what it changed and the last rejection.
fn render_generation(g: &ConfigGeneration) -> String {
    let mut out = format!(
        "config generation {} ({}, loaded at {:.0} s since the epoch)\n",
        g.generation, g.source, g.loaded_at
    );
    if !g.changes.is_empty() {
        out.push_str(&format!("  changed: {}\n", g.changes.join("; ")));
    }
    if let Some(rejected) = &g.last_rejected {
        out.push_str(&format!("  last reload REJECTED: {rejected}\n"));
    }
    out
}

fn render(views: &[ServiceHealth]) -> String {
    let mut table = Table::new([
        "service",
        "status",
        "next",
        "cluster",
        "consul service",
        "available",
        "ejected",
        "score",
        "registry",
    ]);
    for v in views {
        for (i, c) in v.clusters.iter().enumerate() {
            let (service, state, next) = if i == 0 {
                (
                    v.service.clone(),
                    status(v).to_owned(),
                    v.selected.clone().unwrap_or_else(|| "-".to_owned()),
                )
            } else {
                (String::new(), String::new(), String::new())
            };
            table.row([
                service,
                state,
                next,
                c.cluster.clone(),
                c.consul_service.clone(),
                format!("{}/{}", c.available, c.discovered),
                c.ejected.to_string(),
                format!("{:.2}", c.score),
                registry_label(c).to_owned(),
            ]);
        }
    }
    let mut out = table.render(0);
    // Load-aware spill: each service's share leaving its preferred cluster, and why.
    for v in views {
        if let Some(spill) = &v.spill {
            let to = spill.to.as_deref().unwrap_or("-");
            let share = spill.share * 100.0;
            out.push_str(&format!(
                "{} spill {} -> {to}: {share:.0} % ({})\n",
                v.service, spill.from, spill.reason
            ));
        }
    }
    out
}
