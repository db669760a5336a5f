//! `federation sync status TYPE ID` and `federation sync replay`: the data sync from a shell.
//!
//! "Did my change reach looma?" and "the handler bug is fixed, now what about the events it
//! dead-lettered?" are operator questions at 3 a.m.; they should not need a Kafka client and the
//! topic naming scheme. `status` reads the acknowledgements of the local cluster's changes and
//! prints the latest change of the entity per target cluster: pending, completed (with what it
//! did there) or failed (with the reason). `replay` publishes this cluster's dead letters again
//! on the change topics they came from, so the service's subscriber receives them again (clusters
//! that applied them already ignore them). Exit codes: status 0 completed, 1 failed, 4 pending or
//! unknown; replay 0 when every dead letter was republished or skipped, 1 otherwise; 3 for a
//! configuration without a usable `sync` section.

use std::time::Duration;

use clap::{Args, Subcommand};
use federation_sync::{FederatedDataSync, Overall, ReplayReport, SyncStatus, TargetStatus};

use crate::cli::GlobalArgs;
use crate::config_source;
use crate::duration::parse_duration;
use crate::exit::{CliError, Exit};
use crate::output::print_json;

/// `federation sync ...`.
#[derive(Debug, Subcommand)]
pub enum SyncCommand {
    /// Show whether the latest change of an entity reached every other cluster.
    Status(StatusArgs),
    /// Publish this cluster's dead letters again on the change topics they came from.
    Replay(ReplayArgs),
}

/// Arguments of `federation sync status`.
#[derive(Debug, Args)]
pub struct StatusArgs {
    /// Entity type (as configured under `sync.entities`).
    pub entity_type: String,
    /// Entity id.
    pub entity_id: String,
    /// The cluster that published the change. Default: `sync.local_cluster`.
    #[arg(long, value_name = "NAME")]
    pub cluster: Option<String>,
    /// How long to wait for acknowledgements to arrive before reporting what is known.
    #[arg(long, default_value = "5s", value_parser = parse_duration)]
    pub wait: Duration,
}

/// Arguments of `federation sync replay`.
#[derive(Debug, Args)]
pub struct ReplayArgs {
    /// The cluster whose dead letters to replay. Default: `sync.local_cluster`.
    #[arg(long, value_name = "NAME")]
    pub cluster: Option<String>,
}

/// Runs a `sync` subcommand.
///
/// # Errors
/// A configuration without a usable `sync` section (exit 3), Kafka errors (exit 4).
pub async fn run(global: &GlobalArgs, command: SyncCommand) -> Result<Exit, CliError> {
    let config = config_source::load(global.config.as_deref())?;
    let cluster = match &command {
        SyncCommand::Status(args) => args.cluster.clone(),
        SyncCommand::Replay(args) => args.cluster.clone(),
    };
    let mut builder = FederatedDataSync::builder(&config);
    if let Some(cluster) = cluster {
        builder = builder.local_cluster(cluster);
    }
    let sync = builder.build().await.map_err(|e| {
        let exit = match e.kind() {
            federation_sync::SyncErrorKind::Config => Exit::Config,
            _ => Exit::Unavailable,
        };
        CliError::new(exit, "sync", e.to_string())
    })?;
    match command {
        SyncCommand::Status(args) => status(global, &sync, &args).await,
        SyncCommand::Replay(_) => replay(global, &sync).await,
    }
}

async fn status(
    global: &GlobalArgs,
    sync: &FederatedDataSync,
    args: &StatusArgs,
) -> Result<Exit, CliError> {
    let deadline = tokio::time::Instant::now() + args.wait;
    let mut known = sync.status(&args.entity_type, &args.entity_id);
    while known
        .as_ref()
        .is_none_or(|s| s.overall() == Overall::Pending)
        && tokio::time::Instant::now() < deadline
    {
        tokio::time::sleep(Duration::from_millis(50)).await;
        known = sync.status(&args.entity_type, &args.entity_id);
    }
    let exit = match known.as_ref().map(SyncStatus::overall) {
        Some(Overall::Completed) => Exit::Ok,
        Some(Overall::Failed) => Exit::Failure,
        Some(Overall::Pending) | None => Exit::Unavailable,
    };
    if global.json {
        print_json(&serde_json::json!({
            "entity_type": args.entity_type,
            "entity_id": args.entity_id,
            "origin": sync.local_cluster(),
            "overall": known.as_ref().map(SyncStatus::overall),
            "status": known,
        }))?;
        return Ok(exit);
    }
    let entity = format!("{}/{}", args.entity_type, args.entity_id);
    let Some(known) = known else {
        println!(
            "{entity}: no acknowledged change from {} within {:?} (never published there, or no other cluster has consumed it yet)",
            sync.local_cluster(),
            args.wait
        );
        return Ok(exit);
    };
    println!(
        "{entity}: {:?} (change {} from {})",
        known.overall(),
        known.event_id,
        sync.local_cluster()
    );
    for (cluster, state) in &known.targets {
        let line = match state {
            TargetStatus::Pending => "pending".to_string(),
            TargetStatus::Completed { effect } => format!("completed ({effect})"),
            TargetStatus::Failed { reason } => format!("failed: {reason}"),
        };
        println!("  {cluster}: {line}");
    }
    Ok(exit)
}

async fn replay(global: &GlobalArgs, sync: &FederatedDataSync) -> Result<Exit, CliError> {
    let report: ReplayReport = sync
        .republish_dead_letters()
        .await
        .map_err(|e| CliError::new(Exit::Unavailable, "sync", e.to_string()))?;
    if global.json {
        print_json(&report)?;
    } else {
        println!(
            "{}: {} dead letters read, {} published again, {} skipped (not JSON or oversized), {} failed",
            sync.config().dead_letter_topic(sync.local_cluster()),
            report.replayed,
            report.succeeded,
            report.skipped,
            report.failed_again
        );
    }
    Ok(if report.failed_again == 0 {
        Exit::Ok
    } else {
        Exit::Failure
    })
}
