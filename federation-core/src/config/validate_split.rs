//! Semantic checks of a service's `split` against the rest of the configuration: weights that add
//! up, non-empty tags, arm clusters that serve the service, no result cache beside a split.
//!
//! **Failure prevented.** A split that parses but cannot route as written (an arm naming a
//! cluster without the service, weights of 90 + 5) would silently send a different share than
//! the operator declared. Kept apart from `split.rs` (the section's types and reader) so the
//! types do not import the whole configuration model.

use super::error::{Problems, index, join};
use super::model::{Config, ServiceConfig};
use super::split::{SPLIT_TOTAL, SplitConfig};
use super::suggest;

/// Semantic checks of a service's split at `path` (`services.<name>.split`).
pub(crate) fn check_split(
    config: &Config,
    service: &ServiceConfig,
    split: &SplitConfig,
    path: &str,
    p: &mut Problems,
) {
    let arms_path = join(path, "arms");
    if split.arms.is_empty() {
        p.push(
            &arms_path,
            Some("{}".to_owned()),
            "a split needs at least one arm",
        );
        return;
    }
    let total: u64 = split.arms.iter().map(|a| u64::from(a.weight)).sum();
    if total != u64::from(SPLIT_TOTAL) {
        p.push(
            &arms_path,
            Some(format!("weights add up to {total}")),
            format!("the arms' weights must add up to {SPLIT_TOTAL} (percent)"),
        );
    }
    let serving: Vec<&str> = config
        .clusters
        .iter()
        .map(|c| c.name.as_str())
        .filter(|c| service.target_in(c).is_some())
        .collect();
    for arm in &split.arms {
        let arm_path = join(&arms_path, &arm.name);
        for (i, tag) in arm.tags.iter().enumerate() {
            if tag.is_empty() {
                let tag_path = index(&join(&arm_path, "tags"), i);
                p.push(&tag_path, Some("\"\"".to_owned()), "empty tag");
            }
        }
        if let Some(cluster) = &arm.cluster
            && !serving.contains(&cluster.as_str())
        {
            p.push(
                &join(&arm_path, "cluster"),
                Some(format!("\"{cluster}\"")),
                format!(
                    "not a cluster serving this service{}; allowed: {}",
                    suggest::hint(cluster, serving.iter().copied()),
                    suggest::list(serving.iter().copied())
                ),
            );
        }
    }
    if config.policy_for(service).cache.is_some() {
        p.push(
            path,
            None,
            "`split` and `cache` on the same service are not supported: cached answers are not \
             kept apart by arm; turn the service's cache off (`cache: false`)",
        );
    }
}
