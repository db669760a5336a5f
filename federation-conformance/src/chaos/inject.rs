//! Applying a drawn [`Fault`] to the testkit world.
//!
//! The schedule only says what goes wrong; this is where it happens, through the same
//! [`World`] operations the conformance scenarios use, so a fault means the same thing here as
//! in a scenario file.

use crate::driver::{InstanceRef, World};
use crate::schema::{BehaviorSpec, ConsulFaultSpec};
use crate::testkit_world::TestkitWorld;

use super::schedule::Fault;

pub(super) fn label(fault: &Fault) -> &'static str {
    match fault {
        Fault::Kill(_) => "kill",
        Fault::Revive(_) => "revive",
        Fault::Unavailable(_) => "status_503",
        Fault::Slow(_) => "slow",
        Fault::Heal(_) => "heal",
        Fault::ConsulDown(_) => "consul_down",
        Fault::ConsulUp(_) => "consul_up",
        Fault::ClusterDown(_) => "cluster_down",
        Fault::ClusterUp(_) => "cluster_up",
    }
}

pub(super) async fn inject(
    world: &TestkitWorld,
    all: &[InstanceRef],
    fault: &Fault,
) -> Result<(), String> {
    let clusters = ["zervigo", "looma"];
    let behave = |i: usize, spec: BehaviorSpec| {
        world.set_behavior(
            &all[i],
            &BehaviorSpec {
                target: String::new(),
                ..spec
            },
        )
    };
    match fault {
        Fault::Kill(i) => world.kill(&all[*i]).await,
        Fault::Revive(i) => world.revive(&all[*i]).await,
        Fault::Unavailable(i) => behave(
            *i,
            BehaviorSpec {
                status: Some(503),
                ..BehaviorSpec::default()
            },
        ),
        Fault::Slow(i) => behave(
            *i,
            BehaviorSpec {
                latency_ms: Some(600),
                ..BehaviorSpec::default()
            },
        ),
        Fault::Heal(i) => behave(*i, BehaviorSpec::default()),
        Fault::ConsulDown(c) | Fault::ConsulUp(c) => world.consul_fault(&ConsulFaultSpec {
            cluster: clusters[*c].to_owned(),
            fault: if matches!(fault, Fault::ConsulDown(_)) {
                "down"
            } else {
                "clear"
            }
            .to_owned(),
            delay_ms: None,
        }),
        Fault::ClusterDown(c) | Fault::ClusterUp(c) => {
            for (i, r) in all
                .iter()
                .enumerate()
                .filter(|(_, r)| r.cluster == clusters[*c])
            {
                if matches!(fault, Fault::ClusterDown(_)) {
                    world.kill(r).await?;
                } else {
                    if !world.instance(r)?.is_running() {
                        world.revive(r).await?;
                    }
                    behave(i, BehaviorSpec::default())?;
                }
            }
            Ok(())
        }
    }
}
