//! The `spill` policy section: load-aware spill from the preferred cluster to another.
//!
//! **Failure prevented.** A preferred cluster that takes every call while it is merely slow or
//! overloaded (healthy by the breakers, so failover never starts) although another cluster
//! answers much faster — and the opposite failure, a spill rule that flaps between clusters at
//! its threshold. The section sets when a bounded share of calls moves (`enter_factor`), when it
//! comes back (`exit_factor`, lower), how long each state lasts at least (`min_dwell`) and the
//! largest share that moves (`max_share`). Thresholds that cannot give hysteresis (an exit
//! factor not below the enter factor) are field-path errors.

use std::time::Duration;

use serde::Serialize;

use super::error::{Problems, join};
use super::read::{self, set};
use super::tree::Node;
use super::units::format_duration as fd;

/// What "load" compares between clusters.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Default, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum SpillSignal {
    /// The average duration of recent successful attempts in each cluster (EWMA over samples).
    #[default]
    Latency,
    /// Requests in flight per available instance (plus one, so idle clusters compare as equal).
    InFlight,
}

/// Load-aware spill of one service. Present = enabled (`spill: true` takes the defaults).
/// Applies to services with `prefer`.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct SpillPolicy {
    /// The load signal. Default: latency.
    pub signal: SpillSignal,
    /// Spill starts when the preferred cluster's load is at least this many times the other's.
    /// Default: 2.0.
    pub enter_factor: f64,
    /// Spill ends when the ratio falls below this (lower than `enter_factor`). Default: 1.5.
    pub exit_factor: f64,
    /// Share of calls that spill while spilling (0–1). Default: 0.25.
    pub max_share: f64,
    /// Least time between two changes of the spill state. Default: 10 s.
    #[serde(serialize_with = "super::units::ser_duration")]
    pub min_dwell: Duration,
}

impl Default for SpillPolicy {
    fn default() -> Self {
        Self {
            signal: SpillSignal::Latency,
            enter_factor: 2.0,
            exit_factor: 1.5,
            max_share: 0.25,
            min_dwell: Duration::from_secs(10),
        }
    }
}

const SIGNALS: &[(&str, SpillSignal)] = &[
    ("latency", SpillSignal::Latency),
    ("in_flight", SpillSignal::InFlight),
];

/// `spill`: a map merged onto the current setting, `true` (defaults) or `false` (off).
pub(crate) fn apply_spill(
    target: &mut Option<SpillPolicy>,
    node: &Node,
    path: &str,
    p: &mut Problems,
) {
    let allowed = [
        "signal",
        "enter_factor",
        "exit_factor",
        "max_share",
        "min_dwell",
    ];
    read::switchable(target, node, path, &allowed, p, |f, spill, p| {
        if let Some((node, path)) = f.get("signal")
            && let Some(signal) = read::choice(node, &path, SIGNALS, p)
        {
            spill.signal = signal;
        }
        set(f, "enter_factor", p, read::number, &mut spill.enter_factor);
        set(f, "exit_factor", p, read::number, &mut spill.exit_factor);
        set(f, "max_share", p, read::number, &mut spill.max_share);
        set(f, "min_dwell", p, read::duration, &mut spill.min_dwell);
    });
}

/// Checks a resolved spill policy at `path`.
pub(crate) fn check_spill(spill: &SpillPolicy, path: &str, p: &mut Problems) {
    if spill.enter_factor <= 1.0 {
        p.push(
            &join(path, "enter_factor"),
            Some(spill.enter_factor.to_string()),
            "allowed: a factor greater than 1 (the preferred cluster's load over the other's)",
        );
    }
    if spill.exit_factor < 1.0 || spill.exit_factor >= spill.enter_factor {
        p.push(
            &join(path, "exit_factor"),
            Some(spill.exit_factor.to_string()),
            format!(
                "allowed: at least 1 and below enter_factor ({}), so spill does not flap at \
                 one threshold",
                spill.enter_factor
            ),
        );
    }
    if !(spill.max_share > 0.0 && spill.max_share <= 1.0) {
        p.push(
            &join(path, "max_share"),
            Some(spill.max_share.to_string()),
            "allowed: a share greater than 0 and at most 1",
        );
    }
    if spill.min_dwell.is_zero() {
        p.push(
            &join(path, "min_dwell"),
            Some(fd(spill.min_dwell)),
            "allowed: a duration greater than 0s (a zero dwell lets spill flap)",
        );
    }
}
