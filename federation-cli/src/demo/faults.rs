//! Applying the story to the sandbox: kill and revive instances, take Consul down, and record
//! each fault with the recovery it should be followed by.
//!
//! Every fault is something a production federation sees: a process dying under pooled
//! connections (instances are killed, not paused, and restarted on the same port), a whole
//! cluster losing a service, a registry becoming unreachable. Each event carries a [`Probe`]:
//! the first call matching it after the event measures the time to recover.

use std::time::Duration;

use federation_testkit::consul::Fault;
use federation_testkit::sandbox::Sandbox;
use tokio::time::Instant;

use super::driver::Sample;
use super::story::{Phase, PhaseKind};
use super::traffic::Target;

/// The cluster and Consul service the story breaks.
const ZERVIGO: &str = "zervigo";
const LOOMA: &str = "looma";
const USER_SERVICE: &str = "user-service";

/// Something the story did.
#[derive(Clone, Debug)]
pub struct Event {
    /// When, from the start of the run.
    pub at: Duration,
    /// The phase index.
    pub phase: usize,
    /// What happened.
    pub what: String,
    /// The recovery to measure from this event, if any.
    pub probe: Option<Probe>,
}

/// "The first successful call of `target` served by `cluster` (and `instance`)".
#[derive(Clone, Debug)]
pub struct Probe {
    /// Description for the report.
    pub what: String,
    /// The service.
    pub target: Target,
    /// The cluster that must serve.
    pub cluster: String,
    /// The instance that must serve, if a specific one.
    pub instance: Option<String>,
}

impl Probe {
    /// Whether `sample` is the awaited call.
    pub fn matches(&self, sample: &Sample) -> bool {
        sample.ok
            && sample.target == self.target
            && sample.cluster.as_deref() == Some(self.cluster.as_str())
            && self
                .instance
                .as_deref()
                .is_none_or(|i| sample.instance.as_deref() == Some(i))
    }
}

/// Runs the fault script of one phase (returns when the phase is over).
pub async fn run_phase(
    sandbox: &Sandbox,
    index: usize,
    phase: &Phase,
    start: Instant,
    mut on_event: impl FnMut(Event),
) -> Result<(), String> {
    let phase_start = Instant::now();
    let end = phase_start + phase.length;
    let mut event = |what: String, probe: Option<Probe>| {
        on_event(Event {
            at: start.elapsed(),
            phase: index,
            what,
            probe,
        });
    };
    let user_instances = sandbox.instances(ZERVIGO, USER_SERVICE);
    match phase.kind {
        PhaseKind::Steady | PhaseKind::Cache => {}
        PhaseKind::InstanceKill => {
            let victim = user_instances
                .first()
                .ok_or("the sandbox has no zervigo user-service instance")?;
            let id = victim.identity().instance.clone();
            victim.kill().await;
            event(format!("killed zervigo {USER_SERVICE} instance {id}"), None);
            tokio::time::sleep_until(phase_start + phase.length / 2).await;
            victim
                .restart()
                .await
                .map_err(|e| format!("cannot restart {id}: {e}"))?;
            event(
                format!("revived {id} on the same port"),
                Some(Probe {
                    what: format!("revived instance {id} serving again"),
                    target: Target::User,
                    cluster: ZERVIGO.to_owned(),
                    instance: Some(id),
                }),
            );
        }
        PhaseKind::Failover => {
            for instance in user_instances.iter() {
                instance.kill().await;
            }
            event(
                format!(
                    "killed all {} zervigo {USER_SERVICE} instances",
                    user_instances.len()
                ),
                Some(Probe {
                    what: "user served by looma".to_owned(),
                    target: Target::User,
                    cluster: LOOMA.to_owned(),
                    instance: None,
                }),
            );
        }
        PhaseKind::Failback => {
            for instance in user_instances.iter() {
                let id = instance.identity().instance.clone();
                instance
                    .restart()
                    .await
                    .map_err(|e| format!("cannot restart {id}: {e}"))?;
            }
            event(
                format!("restarted the zervigo {USER_SERVICE} instances"),
                Some(Probe {
                    what: "user served by zervigo again (after the dwell time)".to_owned(),
                    target: Target::User,
                    cluster: ZERVIGO.to_owned(),
                    instance: None,
                }),
            );
        }
        PhaseKind::ConsulDown => {
            let consul = sandbox.consul(LOOMA);
            consul.set_fault(Fault::Down);
            event("looma Consul unreachable".to_owned(), None);
            tokio::time::sleep_until(end).await;
            consul.clear_fault();
            event("looma Consul back".to_owned(), None);
        }
    }
    tokio::time::sleep_until(end).await;
    Ok(())
}
