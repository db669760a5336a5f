//! The `split` section of a service: weighted and canary splits between tag sets and clusters.
//!
//! **Failure prevented.** A canary rollout done by hand (a second service name, a flag in every
//! caller) that sends the wrong share, moves users back and forth between versions on every
//! weight change, or silently sends nothing when the canary has no instance. A split declares
//! its arms once: each arm names a tag set (`model=v3`) and/or a cluster and a weight; weights
//! must add up to 100. A misspelt or impossible split (an empty tag set, a cluster that does not
//! serve the service, weights that do not add up, a sticky key that is not `header:<name>`) is a
//! field-path error, never a split that routes somewhere else.
//!
//! ```yaml
//! services:
//!   chat:
//!     split:
//!       sticky_key: header:X-User-Id
//!       arms:
//!         stable: { tags: [model=v2], weight: 95 }
//!         canary: { tags: [model=v3], weight: 5 }
//! ```

use serde::Serialize;

use super::error::{Problems, join};
use super::read;
use super::tree::Node;

/// The total every split's weights must add up to.
pub const SPLIT_TOTAL: u32 = 100;

/// How calls of one service are divided between arms.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct SplitConfig {
    /// The request header whose value keeps a caller on one arm (`sticky_key: header:X-User-Id`).
    /// `None`: every call draws its arm at random. A call without the header draws at random.
    pub sticky_header: Option<String>,
    /// The arms, in declaration order (weights add up to [`SPLIT_TOTAL`]).
    pub arms: Vec<SplitArm>,
}

/// One arm of a split.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct SplitArm {
    /// The arm's name, as the response report and metrics show it.
    pub name: String,
    /// Tags the arm's instances must carry (instead of the service's `tags`). Empty: the
    /// service's tags.
    pub tags: Vec<String>,
    /// The cluster the arm prefers. `None`: ranking as usual.
    pub cluster: Option<String>,
    /// Share of calls in percent (0–100).
    pub weight: u32,
}

const SPLIT_KEYS: &[&str] = &["sticky_key", "arms"];
const ARM_KEYS: &[&str] = &["tags", "cluster", "weight"];

/// Reads `split` (a service key).
pub(crate) fn read_split(node: &Node, path: &str, p: &mut Problems) -> Option<SplitConfig> {
    let f = read::fields(node, path, SPLIT_KEYS, p)?;
    let sticky_header = f
        .get("sticky_key")
        .and_then(|(node, path)| sticky(node, &path, p));
    let Some((arms_node, arms_path)) = f.get("arms") else {
        p.push(
            &join(path, "arms"),
            None,
            "missing required field `arms`: a map of arm name to { tags, cluster, weight }",
        );
        return None;
    };
    let what = "a map of arm name to { tags, cluster, weight }";
    let entries = read::entries(arms_node, &arms_path, what, p)?;
    let arms = entries
        .iter()
        .filter_map(|(name, node)| read_arm(name, node, &join(&arms_path, name), p))
        .collect();
    Some(SplitConfig {
        sticky_header,
        arms,
    })
}

/// `header:<name>`.
fn sticky(node: &Node, path: &str, p: &mut Problems) -> Option<String> {
    let text = read::string(node, path, p)?;
    match text.strip_prefix("header:").map(str::trim) {
        Some(name) if http::HeaderName::from_bytes(name.as_bytes()).is_ok() => {
            Some(name.to_owned())
        }
        _ => {
            p.push(
                path,
                Some(node.render()),
                "allowed: `header:<name>` with a valid HTTP header name, e.g. header:X-User-Id",
            );
            None
        }
    }
}

fn read_arm(name: &str, node: &Node, path: &str, p: &mut Problems) -> Option<SplitArm> {
    let f = read::fields(node, path, ARM_KEYS, p)?;
    let Some((weight_node, weight_path)) = f.get("weight") else {
        p.push(
            &join(path, "weight"),
            None,
            format!(
                "missing required field `weight`: the arm's share in percent (0–{SPLIT_TOTAL})"
            ),
        );
        return None;
    };
    let weight = read::u32_value(weight_node, &weight_path, p)?;
    let mut arm = SplitArm {
        name: name.to_owned(),
        tags: Vec::new(),
        cluster: None,
        weight,
    };
    if let Some((node, tags_path)) = f.get("tags") {
        arm.tags = read::string_list(node, &tags_path, p)?;
        if arm.tags.is_empty() {
            p.push(
                &tags_path,
                Some("[]".to_owned()),
                "empty tag set: list the tags the arm's instances carry, or leave `tags` out",
            );
        }
    }
    if let Some((node, cluster_path)) = f.get("cluster") {
        arm.cluster = Some(read::string(node, &cluster_path, p)?);
    }
    if f.get("tags").is_none() && arm.cluster.is_none() {
        p.push(
            path,
            None,
            "an arm needs `tags`, `cluster` or both (otherwise it is the same as every other arm)",
        );
    }
    Some(arm)
}
