//! Weighted and canary splits: which arm (tag set and/or cluster) a call goes to.
//!
//! **Failure prevented.** A canary that reshuffles users on every weight change (a user sees
//! v3, then v2, then v3 as the rollout moves from 5 % to 10 %), and a canary arm with no
//! healthy instance that fails its share of calls. Each call gets a 64-bit key — the hash of
//! its sticky header's value, or a random draw — and the arms are ordered by weighted
//! rendezvous hashing: arm `a` scores `-ln(u(key, a)) / weight(a)` with `u` uniform in (0, 1]
//! from the key and the arm's name, lowest first. The first arm takes the call with
//! probability weight / total, and raising one arm's weight only lowers that arm's scores: a
//! key changes arm only to move *into* the growing arm (with two arms always; with more, as
//! long as the shrinking arms keep their ratios to each other — otherwise some keys also move
//! between the shrinking arms). When an arm has no available instance
//! (none carries its tags, or all are ejected) the call goes to the next arm in its order,
//! then to the service's usual routing; the response reports the assigned arm and why it was
//! left, and `federation_split_fallbacks_total` counts it. The hash (FNV-1a and a 64-bit
//! finalizer) is written out here so assignments stay the same across versions and platforms.

use std::sync::Arc;

use http::{HeaderMap, HeaderName};
use rand::Rng;

use super::rank::{Order, RankPolicy, rank};
use super::table::ClusterRoute;
use crate::client::response::SplitOutcome;
use crate::config::{SplitArm, SplitConfig};
use crate::error::{Error, ErrorKind, UnavailableReason};
use crate::telemetry::Metrics;

/// The split of one service, resolved against its routes.
#[derive(Debug)]
pub(crate) struct SplitRoute {
    sticky: Option<HeaderName>,
    arms: Vec<ArmRoute>,
}

#[derive(Debug)]
struct ArmRoute {
    name: Arc<str>,
    /// The service's tags plus the arm's (`None`: the arm names no tags).
    tags: Option<Vec<String>>,
    /// The route of the arm's cluster.
    route: Option<usize>,
    weight: u32,
    /// FNV-1a of the name, mixed into each key.
    salt: u64,
}

/// Where one split call goes.
pub(crate) struct Decision<'a> {
    pub(crate) order: Order,
    pub(crate) tags: Option<&'a [String]>,
    pub(crate) outcome: SplitOutcome,
}

impl SplitRoute {
    /// Resolves `split` for a service with default tags `service_tags` and `routes`.
    /// Configuration validation guarantees every arm's cluster is one of the routes.
    pub(crate) fn new(
        split: &SplitConfig,
        service_tags: &[String],
        routes: &[ClusterRoute],
    ) -> Self {
        let arms = split
            .arms
            .iter()
            .map(|arm| arm_route(arm, service_tags, routes))
            .collect();
        let sticky = split
            .sticky_header
            .as_deref()
            .and_then(|h| HeaderName::from_bytes(h.as_bytes()).ok());
        Self { sticky, arms }
    }

    /// The key of a call: its sticky header's value hashed, else a random draw.
    pub(crate) fn key(&self, headers: &HeaderMap, rng: &mut impl Rng) -> u64 {
        match self.sticky.as_ref().and_then(|h| headers.get(h)) {
            Some(value) => fnv1a(value.as_bytes()),
            None => rng.next_u64(),
        }
    }

    /// The arms with a positive weight, in the order key `key` tries them.
    fn order(&self, key: u64) -> Vec<&ArmRoute> {
        let mut arms: Vec<(f64, &ArmRoute)> = self
            .arms
            .iter()
            .filter(|a| a.weight > 0)
            .map(|a| (score(key, a.salt, a.weight), a))
            .collect();
        arms.sort_by(|a, b| a.0.total_cmp(&b.0));
        arms.into_iter().map(|(_, a)| a).collect()
    }

    /// Ranks a call with key `key` onto its arm, or the next arm that can serve, or the
    /// service's usual routing; records the split metrics.
    pub(crate) fn decide<'a>(
        &'a self,
        policy: &RankPolicy<'_>,
        key: u64,
        service: &str,
        metrics: &Metrics,
    ) -> Result<Decision<'a>, Error> {
        let arms = self.order(key);
        let assigned = arms.first().map(|a| Arc::clone(&a.name));
        let Some(assigned) = assigned else {
            // Validation keeps at least one positive weight; nothing to split otherwise.
            let order = rank(policy, None, None)?;
            let outcome = SplitOutcome::new(Arc::from(""), None, None);
            return Ok(Decision {
                order,
                tags: None,
                outcome,
            });
        };
        metrics.split_call(service, &assigned);
        let mut left = None;
        for arm in arms {
            match arm_order(policy, arm)? {
                Ok(order) => {
                    let outcome = SplitOutcome::new(assigned, Some(Arc::clone(&arm.name)), left);
                    return Ok(Decision {
                        order,
                        tags: arm.tags.as_deref(),
                        outcome,
                    });
                }
                Err((label, detail)) => {
                    if left.is_none() {
                        metrics.split_fallback(service, &assigned, label);
                        left = Some(format!("{label}: {detail}"));
                    }
                }
            }
        }
        let order = rank(policy, None, None)?;
        let outcome = SplitOutcome::new(assigned, None, left);
        Ok(Decision {
            order,
            tags: None,
            outcome,
        })
    }
}

fn arm_route(arm: &SplitArm, service_tags: &[String], routes: &[ClusterRoute]) -> ArmRoute {
    let tags = (!arm.tags.is_empty()).then(|| {
        let mut tags: Vec<String> = service_tags.iter().chain(&arm.tags).cloned().collect();
        tags.sort_unstable();
        tags.dedup();
        tags
    });
    ArmRoute {
        name: Arc::from(arm.name.as_str()),
        tags,
        route: arm
            .cluster
            .as_deref()
            .and_then(|c| routes.iter().position(|r| &*r.cluster == c)),
        weight: arm.weight,
        salt: fnv1a(arm.name.as_bytes()),
    }
}

/// Why an arm cannot serve: (`empty` | `ejected`, the clusters' reasons).
type Unusable = (&'static str, String);

/// The ranked clusters of `arm` (its cluster first), `Ok(Err(why))` when it has no available
/// instance, or an error ranking cannot recover from.
fn arm_order(policy: &RankPolicy<'_>, arm: &ArmRoute) -> Result<Result<Order, Unusable>, Error> {
    let tags = arm.tags.as_deref();
    let routes = policy.routes;
    let candidates: Vec<usize> = match arm.route {
        Some(i) => vec![i],
        None => (0..routes.len()).collect(),
    };
    let mut reasons = Vec::new();
    for &i in &candidates {
        let snapshot = routes[i].current();
        let h = routes[i].health(&snapshot, tags);
        if h.available > 0 {
            reasons.clear();
            break;
        }
        reasons.push((
            Arc::clone(&routes[i].cluster),
            routes[i].unavailable_reason(&snapshot, &h),
        ));
    }
    if !reasons.is_empty() {
        return Ok(Err(unusable(&reasons)));
    }
    let mut order = match rank(policy, None, tags) {
        Ok(order) => order,
        Err(e) if e.kind() == ErrorKind::NoHealthyInstance => {
            let detail = e
                .unavailable()
                .iter()
                .map(|u| (Arc::from(u.cluster.as_str()), u.reason.clone()))
                .collect::<Vec<_>>();
            return Ok(Err(unusable(&detail)));
        }
        Err(e) => return Err(e),
    };
    if let Some(i) = arm.route
        && let Some(pos) = order.iter().position(|r| r.route == i && !r.probe_only)
    {
        let entry = order.remove(pos);
        order.insert(0, entry);
    }
    Ok(Ok(order))
}

fn unusable(reasons: &[(Arc<str>, UnavailableReason)]) -> Unusable {
    let ejected = reasons
        .iter()
        .any(|(_, r)| matches!(r, UnavailableReason::AllEjected { .. }));
    let detail = reasons
        .iter()
        .map(|(cluster, reason)| format!("{cluster}: {reason}"))
        .collect::<Vec<_>>()
        .join("; ");
    (if ejected { "ejected" } else { "empty" }, detail)
}

/// Weighted rendezvous score of an arm for `key` (lower wins).
fn score(key: u64, salt: u64, weight: u32) -> f64 {
    let h = mix(key ^ salt);
    // 53 random bits, shifted off zero: u in (0, 1].
    let u = ((h >> 11) as f64 + 1.0) / (1u64 << 53) as f64;
    -u.ln() / f64::from(weight)
}

/// FNV-1a, 64 bit.
fn fnv1a(bytes: &[u8]) -> u64 {
    bytes.iter().fold(0xcbf2_9ce4_8422_2325, |h, &b| {
        (h ^ u64::from(b)).wrapping_mul(0x0000_0100_0000_01b3)
    })
}

/// The splitmix64 finalizer: spreads FNV's low-entropy output over all bits.
fn mix(mut z: u64) -> u64 {
    z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
    z ^ (z >> 31)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn split(weights: &[(&str, u32)]) -> SplitRoute {
        let arms = weights
            .iter()
            .map(|(name, weight)| SplitArm {
                name: (*name).to_owned(),
                tags: vec![format!("model={name}")],
                cluster: None,
                weight: *weight,
            })
            .collect();
        let config = SplitConfig {
            sticky_header: Some("x-user-id".to_owned()),
            arms,
        };
        SplitRoute::new(&config, &[], &[])
    }

    fn assign(s: &SplitRoute, user: u32) -> Arc<str> {
        let key = fnv1a(format!("user-{user}").as_bytes());
        Arc::clone(&s.order(key)[0].name)
    }

    const USERS: u32 = 20_000;

    fn share(s: &SplitRoute, arm: &str) -> f64 {
        let n = (0..USERS).filter(|&u| &*assign(s, u) == arm).count();
        n as f64 / f64::from(USERS)
    }

    #[test]
    fn shares_follow_the_weights() {
        let s = split(&[("v2", 95), ("v3", 5)]);
        assert!((share(&s, "v3") - 0.05).abs() < 0.01, "{}", share(&s, "v3"));
        let s = split(&[("a", 50), ("b", 30), ("c", 20)]);
        assert!((share(&s, "b") - 0.30).abs() < 0.015, "{}", share(&s, "b"));
        assert!((share(&s, "c") - 0.20).abs() < 0.015, "{}", share(&s, "c"));
    }

    /// With two arms, and with more whose other arms keep their ratios to each other.
    #[test]
    fn growing_an_arm_moves_users_only_into_it() {
        for (before, after, growing) in [
            (
                vec![("v2", 95), ("v3", 5)],
                vec![("v2", 90), ("v3", 10)],
                "v3",
            ),
            (
                vec![("a", 50), ("b", 25), ("c", 25)],
                vec![("a", 40), ("b", 20), ("c", 40)],
                "c",
            ),
        ] {
            let (old, new) = (split(&before), split(&after));
            let mut moved = 0;
            for user in 0..USERS {
                let (was, is) = (assign(&old, user), assign(&new, user));
                if was != is {
                    assert_eq!(&*is, growing, "user {user} moved from {was} to {is}");
                    moved += 1;
                }
            }
            let grown = share(&new, growing) - share(&old, growing);
            let moved = f64::from(moved) / f64::from(USERS);
            assert!(
                (moved - grown).abs() < 1e-9 && moved > 0.03,
                "moved {moved}"
            );
        }
    }

    #[test]
    fn a_zero_weight_arm_gets_no_calls() {
        let s = split(&[("v2", 100), ("v3", 0)]);
        assert_eq!(share(&s, "v3"), 0.0);
        assert_eq!(s.order(7).len(), 1);
    }
}
