//! The demo's script: which failure happens when, and what recovery is measured.
//!
//! A resilience demo is only convincing when every failure is named, timed and followed by a
//! measured recovery. The story is a fixed list of phases; each has a share of `--duration`
//! and a minimum length, so a short run still shows every effect: the fail-back phase always
//! lasts longer than the configured dwell time, because traffic only returns to the preferred
//! cluster after it has stayed healthy that long.

use std::time::Duration;

use serde::Serialize;

/// What happens in a phase (the fault it injects or repairs).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum PhaseKind {
    /// Everything healthy: steady traffic on user, resume and ai.
    Steady,
    /// One zervigo user-service instance is killed, then revived half-way through.
    InstanceKill,
    /// Every zervigo user-service instance is down: user traffic fails over to looma.
    Failover,
    /// The zervigo instances are back: traffic returns after the dwell time.
    Failback,
    /// looma's Consul is unreachable: calls continue from the last known instances.
    ConsulDown,
    /// Repeated inference requests on the ai service are answered from the cache.
    Cache,
}

/// How the ai service's inference prompts are chosen in a phase.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Prompts {
    /// Every request asks something new (always goes upstream).
    Unique,
    /// Requests repeat from a pool of this many prompts (repeats can hit the cache).
    Pool(u32),
}

/// One step of the story.
#[derive(Clone, Debug)]
pub struct Phase {
    /// Short stable name used in JSON (`failover`).
    pub name: &'static str,
    /// One line for people.
    pub title: &'static str,
    /// The fault.
    pub kind: PhaseKind,
    /// How long the phase runs.
    pub length: Duration,
    /// How ai prompts are drawn.
    pub prompts: Prompts,
}

/// Share of the total duration and minimum length of each phase, in story order.
const SCRIPT: [(PhaseKind, &str, &str, f64, u64, Prompts); 6] = [
    (
        PhaseKind::Steady,
        "steady",
        "steady traffic on user, resume and ai",
        0.15,
        2,
        Prompts::Pool(500),
    ),
    (
        PhaseKind::InstanceKill,
        "instance-kill",
        "one zervigo user-service instance killed, revived half-way",
        0.15,
        2,
        Prompts::Pool(500),
    ),
    (
        PhaseKind::Failover,
        "failover",
        "all zervigo user-service instances down: fail over to looma",
        0.20,
        2,
        Prompts::Pool(500),
    ),
    (
        PhaseKind::Failback,
        "failback",
        "zervigo user-service back: traffic returns after the dwell time",
        0.20,
        3,
        Prompts::Pool(500),
    ),
    (
        PhaseKind::ConsulDown,
        "consul-down",
        "looma's Consul unreachable: calls continue from last known instances",
        0.15,
        2,
        Prompts::Unique,
    ),
    (
        PhaseKind::Cache,
        "cache",
        "repeated ai inference requests answered from the cache",
        0.15,
        2,
        Prompts::Pool(4),
    ),
];

/// Extra time the fail-back phase gets beyond the dwell time, so the return is visible.
const FAILBACK_MARGIN: Duration = Duration::from_secs(3);

/// The story for a run of about `total`, given the fail-back `dwell` of the user service.
///
/// The fail-back phase gets its share of `total` but at least `dwell` + 3 s; the other phases
/// share what is left in proportion to their shares, each at least its minimum. The real total
/// therefore exceeds `total` only when `total` is too short for every minimum (about 18 s with
/// the default 5 s dwell).
pub fn plan(total: Duration, dwell: Duration) -> Vec<Phase> {
    let failback_share: f64 = SCRIPT
        .iter()
        .filter(|s| s.0 == PhaseKind::Failback)
        .map(|s| s.3)
        .sum();
    let failback = total.mul_f64(failback_share).max(dwell + FAILBACK_MARGIN);
    let rest = total.saturating_sub(failback);
    let other_shares = (1.0 - failback_share).max(f64::EPSILON);
    SCRIPT
        .iter()
        .map(|&(kind, name, title, share, min_secs, prompts)| {
            let length = if kind == PhaseKind::Failback {
                failback
            } else {
                rest.mul_f64(share / other_shares)
                    .max(Duration::from_secs(min_secs))
            };
            // Whole tenths of a second keep the progress lines and chart columns tidy.
            let length = Duration::from_millis(length.as_millis().div_ceil(100) as u64 * 100);
            Phase {
                name,
                title,
                kind,
                length,
                prompts,
            }
        })
        .collect()
}

/// The start offset of each phase and the end of the last one.
pub fn boundaries(phases: &[Phase]) -> Vec<Duration> {
    let mut at = Duration::ZERO;
    let mut out = vec![at];
    for phase in phases {
        at += phase.length;
        out.push(at);
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn default_story_takes_about_a_minute() {
        let phases = plan(Duration::from_secs(60), Duration::from_secs(5));
        let total: Duration = phases.iter().map(|p| p.length).sum();
        assert_eq!(phases.len(), 6);
        assert!(total >= Duration::from_secs(60) && total <= Duration::from_secs(62));
    }

    #[test]
    fn short_story_keeps_close_to_the_requested_length() {
        let phases = plan(Duration::from_secs(20), Duration::from_secs(5));
        let total: Duration = phases.iter().map(|p| p.length).sum();
        assert!(total <= Duration::from_millis(20_600), "{total:?}");
        assert!(phases.iter().all(|p| p.length >= Duration::from_secs(2)));
    }

    #[test]
    fn failback_outlasts_the_dwell_time() {
        let phases = plan(Duration::from_secs(20), Duration::from_secs(5));
        let failback = phases
            .iter()
            .find(|p| p.kind == PhaseKind::Failback)
            .expect("story has a failback phase");
        assert!(failback.length >= Duration::from_secs(8));
    }

    #[test]
    fn boundaries_accumulate() {
        let phases = plan(Duration::from_secs(60), Duration::from_secs(5));
        let b = boundaries(&phases);
        assert_eq!(b.len(), phases.len() + 1);
        assert_eq!(b[1], phases[0].length);
    }
}
