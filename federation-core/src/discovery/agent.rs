//! Agent writes of a cluster: register, deregister, TTL updates and the heartbeat task.
//!
//! Failure this prevents: a self-announced service silently turning critical because its TTL
//! lapsed. [`ClusterDiscovery::spawn_heartbeat`] passes the check at once and then every
//! `every` (choose well under the TTL), logs failures without stopping, and ends when its
//! [`HeartbeatHandle`] is dropped.

use std::time::Duration;

use tokio::task::AbortHandle;
use tokio::time::MissedTickBehavior;

use super::{ClusterDiscovery, DiscoveryError, DiscoveryErrorKind, Health, Registration};

impl ClusterDiscovery {
    /// Registers (or re-registers: an upsert) an instance with the cluster's agent
    /// (`PUT /v1/agent/service/register`). Invalid registrations fail with `Config` before any
    /// request.
    pub async fn register(&self, reg: &Registration) -> Result<(), DiscoveryError> {
        let what = format!("registering `{}`", reg.service_id());
        let http = self.consul(&what)?;
        let body = reg
            .to_body()
            .map_err(|e| self.error(DiscoveryErrorKind::Config, format!("{what}: {e}")))?;
        http.put(&what, &["agent", "service", "register"], &[], Some(body))
            .await
    }

    /// Removes an instance and its checks (`PUT /v1/agent/service/deregister/<id>`). Must go to
    /// the agent that registered it; an unknown id is a `Status { code: 404, .. }` error.
    pub async fn deregister(&self, service_id: &str) -> Result<(), DiscoveryError> {
        let what = format!("deregistering `{service_id}`");
        let http = self.consul(&what)?;
        http.put(
            &what,
            &["agent", "service", "deregister", service_id],
            &[],
            None,
        )
        .await
    }

    /// Reports a TTL check's status (`PUT /v1/agent/check/{pass,warn,fail}/<id>?note=`), which
    /// also restarts its TTL clock.
    pub async fn update_ttl(
        &self,
        check_id: &str,
        status: Health,
        note: Option<&str>,
    ) -> Result<(), DiscoveryError> {
        let verb = match status {
            Health::Passing => "pass",
            Health::Warning => "warn",
            Health::Critical => "fail",
        };
        let what = format!("reporting `{verb}` for check `{check_id}`");
        let http = self.consul(&what)?;
        let query: Vec<(&str, &str)> = note.map(|n| vec![("note", n)]).unwrap_or_default();
        http.put(&what, &["agent", "check", verb, check_id], &query, None)
            .await
    }

    /// Passes `check_id` now and then every `every` until the handle is dropped. Needs a tokio
    /// runtime; without one the handle is inert and an error is logged.
    pub fn spawn_heartbeat(&self, check_id: &str, every: Duration) -> HeartbeatHandle {
        let Some(runtime) = crate::driven::spawn_handle() else {
            tracing::error!(cluster = %self.cluster(), check_id, "spawn_heartbeat() was called outside a tokio runtime");
            return HeartbeatHandle { task: None };
        };
        let this = self.clone();
        let check_id = check_id.to_owned();
        let every = every.max(Duration::from_millis(10));
        let task = runtime.spawn(async move {
            let mut ticker = tokio::time::interval(every);
            ticker.set_missed_tick_behavior(MissedTickBehavior::Delay);
            let mut failing = false;
            loop {
                ticker.tick().await;
                match this.update_ttl(&check_id, Health::Passing, None).await {
                    Ok(()) if failing => {
                        failing = false;
                        tracing::info!(check_id, "heartbeat recovered");
                    }
                    Ok(()) => {}
                    Err(error) => {
                        failing = true;
                        tracing::warn!(%error, "heartbeat failed; retrying at the next tick");
                    }
                }
            }
        });
        HeartbeatHandle {
            task: Some(task.abort_handle()),
        }
    }
}

/// Keeps a heartbeat running; dropping it (or [`stop`](Self::stop)) ends the heartbeat.
#[derive(Debug)]
#[must_use = "the heartbeat stops when the handle is dropped"]
pub struct HeartbeatHandle {
    task: Option<AbortHandle>,
}

impl HeartbeatHandle {
    /// Stops the heartbeat (the TTL check then lapses to critical).
    pub fn stop(mut self) {
        self.abort();
    }

    /// Whether the heartbeat task is still running.
    pub fn is_running(&self) -> bool {
        self.task.as_ref().is_some_and(|t| !t.is_finished())
    }

    fn abort(&mut self) {
        if let Some(task) = self.task.take() {
            task.abort();
        }
    }
}

impl Drop for HeartbeatHandle {
    fn drop(&mut self) {
        self.abort();
    }
}
