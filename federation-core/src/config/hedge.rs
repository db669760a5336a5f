//! The `hedge` policy section: backup requests for slow answers.
//!
//! **Failure prevented.** One slow instance sets the tail latency of every call it receives,
//! while a retry only starts after the attempt timeout. A hedge sends the same idempotent request
//! to another instance once the first has not answered within a delay (fixed, or a percentile of
//! the service's recent attempts). A badly set hedge doubles the load or never fires, so the
//! section is validated like the rest: a delay of zero, a percentile outside 0–100, a delay no
//! attempt lives to see, or more extra requests than instances could take are field-path errors.

use std::time::Duration;

use serde::Serialize;

use super::error::{Problems, join};
use super::read::{self, set};
use super::tree::Node;
use super::units::format_duration as fd;

/// Most extra requests one call may send.
pub(crate) const MAX_EXTRA: u32 = 4;

/// Backup requests of one service. Present = enabled (`hedge: true` takes the defaults).
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct HedgePolicy {
    /// How long the first attempt may go unanswered before a hedge is sent; with `percentile`,
    /// the delay used until the service has enough recent attempts. Default: 50 ms.
    #[serde(serialize_with = "super::units::ser_duration")]
    pub delay: Duration,
    /// Use this percentile (e.g. 95.0 for `p95`) of the service's recent successful attempt
    /// durations as the delay. Default: `None` (the fixed `delay`).
    pub percentile: Option<f64>,
    /// Extra requests per call at most (1–4), sent one `delay` apart. Default: 1.
    pub max_extra: u32,
    /// Whether a hedge may go to another cluster when the first attempt's cluster has no other
    /// instance. Default: false.
    pub cross_cluster: bool,
}

impl Default for HedgePolicy {
    fn default() -> Self {
        Self {
            delay: Duration::from_millis(50),
            percentile: None,
            max_extra: 1,
            cross_cluster: false,
        }
    }
}

/// `hedge`: a map merged onto the current setting, `true` (defaults) or `false` (off).
pub(crate) fn apply_hedge(
    target: &mut Option<HedgePolicy>,
    node: &Node,
    path: &str,
    p: &mut Problems,
) {
    let allowed = ["delay", "percentile", "max_extra", "cross_cluster"];
    read::switchable(target, node, path, &allowed, p, |f, hedge, p| {
        set(f, "delay", p, read::duration, &mut hedge.delay);
        set(f, "percentile", p, percentile, &mut hedge.percentile);
        set(f, "max_extra", p, read::u32_value, &mut hedge.max_extra);
        set(
            f,
            "cross_cluster",
            p,
            read::boolean,
            &mut hedge.cross_cluster,
        );
    });
}

/// `p95`, `p99.9`, a number such as `95`, or `false` (a fixed delay).
fn percentile(node: &Node, path: &str, p: &mut Problems) -> Option<Option<f64>> {
    let what = "a percentile such as p95 or p99.9, or false for the fixed delay";
    match node {
        Node::Bool(false) => Some(None),
        Node::Int(_) | Node::Float(_) => read::number(node, path, p).map(Some),
        Node::Str(s) => match s.strip_prefix('p').map(str::parse::<f64>) {
            Some(Ok(x)) if x.is_finite() => Some(Some(x)),
            _ => {
                p.push(path, Some(node.render()), format!("expected {what}"));
                None
            }
        },
        other => {
            read::wrong_type(other, path, what, p);
            None
        }
    }
}

/// Checks a resolved hedge policy at `path`; `attempt` is the service's `timeout.attempt`.
pub(crate) fn check_hedge(hedge: &HedgePolicy, attempt: Duration, path: &str, p: &mut Problems) {
    if hedge.delay.is_zero() {
        p.push(
            &join(path, "delay"),
            Some(fd(hedge.delay)),
            "allowed: a duration greater than 0s (a zero delay doubles every call)",
        );
    } else if hedge.delay >= attempt {
        p.push(
            &join(path, "delay"),
            Some(fd(hedge.delay)),
            format!(
                "not shorter than timeout.attempt ({}); the first attempt times out before \
                 a hedge could start",
                fd(attempt)
            ),
        );
    }
    if let Some(x) = hedge.percentile
        && !(x > 0.0 && x < 100.0)
    {
        p.push(
            &join(path, "percentile"),
            Some(format!("p{x}")),
            "allowed: a percentile greater than p0 and below p100, e.g. p95",
        );
    }
    if !(1..=MAX_EXTRA).contains(&hedge.max_extra) {
        p.push(
            &join(path, "max_extra"),
            Some(hedge.max_extra.to_string()),
            format!(
                "allowed: 1 to {MAX_EXTRA} (extra requests per call); use `hedge: false` to disable"
            ),
        );
    }
}
