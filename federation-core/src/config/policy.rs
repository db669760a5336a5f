//! Reading policy sections (`defaults` and per-service overrides) from the document tree.
//!
//! A service that overrides one number must not silently reset its other policies to the
//! built-in defaults. Overrides are therefore partial: each key present is applied onto a copy
//! of the already resolved `defaults`, field by field, and everything absent keeps the default.
//! Sections that can be switched off (`cache`, `breaker.failure_rate`, `limits.rate_limit`,
//! `limits.max_concurrent`) also accept `false`; `true` enables them with defaults.

use super::error::Problems;
use super::model::{
    CachePolicy, FailoverPolicy, FailureRatePolicy, LoadBalancing, Policy, RateLimitPolicy,
};
use super::read::{self, Fields, set};
use super::tree::Node;

/// Keys of a policy section, shared by `defaults` and services.
pub(crate) const POLICY_KEYS: &[&str] = &[
    "timeout",
    "retry",
    "breaker",
    "failover",
    "load_balancing",
    "cache",
    "limits",
    "hedge",
    "spill",
];

/// Spellings of [`LoadBalancing`] in files.
pub(crate) const LOAD_BALANCING: &[(&str, LoadBalancing)] = &[
    ("peak_ewma", LoadBalancing::PeakEwma),
    ("least_request", LoadBalancing::LeastRequest),
    ("round_robin", LoadBalancing::RoundRobin),
];

/// Opens the sub-map `key` of `f` with the given allowed keys.
fn section<'a>(
    f: &Fields<'a>,
    key: &str,
    allowed: &[&str],
    p: &mut Problems,
) -> Option<Fields<'a>> {
    let (node, path) = f.get(key)?;
    read::fields(node, &path, allowed, p)
}

/// Applies the policy keys present in `f` onto `policy`. Returns whether any was present.
pub(crate) fn apply(policy: &mut Policy, f: &Fields<'_>, p: &mut Problems) -> bool {
    if let Some(t) = section(f, "timeout", &["attempt", "total"], p) {
        set(
            &t,
            "attempt",
            p,
            read::duration,
            &mut policy.timeout.attempt,
        );
        set(&t, "total", p, read::duration, &mut policy.timeout.total);
    }
    if let Some(r) = section(f, "retry", &["max_attempts", "budget", "backoff"], p) {
        let retry = &mut policy.retry;
        set(
            &r,
            "max_attempts",
            p,
            read::u32_value,
            &mut retry.max_attempts,
        );
        if let Some(b) = section(&r, "budget", &["percent", "min_per_second", "window"], p) {
            set(&b, "percent", p, read::u32_value, &mut retry.budget.percent);
            set(
                &b,
                "min_per_second",
                p,
                read::u32_value,
                &mut retry.budget.min_per_second,
            );
            set(&b, "window", p, read::duration, &mut retry.budget.window);
        }
        if let Some(b) = section(&r, "backoff", &["base", "max"], p) {
            set(&b, "base", p, read::duration, &mut retry.backoff.base);
            set(&b, "max", p, read::duration, &mut retry.backoff.max);
        }
    }
    let breaker_keys = [
        "consecutive_failures",
        "failure_rate",
        "open_for",
        "max_open_for",
    ];
    if let Some(b) = section(f, "breaker", &breaker_keys, p) {
        let breaker = &mut policy.breaker;
        set(
            &b,
            "consecutive_failures",
            p,
            read::u32_value,
            &mut breaker.consecutive_failures,
        );
        if let Some((node, path)) = b.get("failure_rate") {
            apply_failure_rate(&mut breaker.failure_rate, node, &path, p);
        }
        set(&b, "open_for", p, read::duration, &mut breaker.open_for);
        set(
            &b,
            "max_open_for",
            p,
            read::duration,
            &mut breaker.max_open_for,
        );
    }
    apply_failover(f, &mut policy.failover, p);
    if let Some((node, path)) = f.get("load_balancing")
        && let Some(lb) = read::choice(node, &path, LOAD_BALANCING, p)
    {
        policy.load_balancing = Some(lb);
    }
    if let Some((node, path)) = f.get("cache") {
        apply_cache(&mut policy.cache, node, &path, p);
    }
    if let Some(l) = section(
        f,
        "limits",
        &["max_concurrent", "rate_limit", "max_response_bytes"],
        p,
    ) {
        let limits = &mut policy.limits;
        if let Some((node, path)) = l.get("max_concurrent") {
            match node {
                Node::Bool(false) => limits.max_concurrent = None,
                _ => {
                    if let Some(n) = read::u32_value(node, &path, p) {
                        limits.max_concurrent = Some(n);
                    }
                }
            }
        }
        if let Some((node, path)) = l.get("rate_limit") {
            apply_rate_limit(&mut limits.rate_limit, node, &path, p);
        }
        set(
            &l,
            "max_response_bytes",
            p,
            read::size,
            &mut limits.max_response_bytes,
        );
    }
    if let Some((node, path)) = f.get("hedge") {
        super::hedge::apply_hedge(&mut policy.hedge, node, &path, p);
    }
    if let Some((node, path)) = f.get("spill") {
        super::spill::apply_spill(&mut policy.spill, node, &path, p);
    }
    f.has_any(POLICY_KEYS)
}

/// `failover`: hysteresis and panic routing (`panic_threshold: false` turns it off).
fn apply_failover(f: &Fields<'_>, failover: &mut FailoverPolicy, p: &mut Problems) {
    let keys = ["healthy_threshold", "dwell", "panic_threshold"];
    let Some(fo) = section(f, "failover", &keys, p) else {
        return;
    };
    set(
        &fo,
        "healthy_threshold",
        p,
        read::number,
        &mut failover.healthy_threshold,
    );
    set(&fo, "dwell", p, read::duration, &mut failover.dwell);
    if let Some((node, path)) = fo.get("panic_threshold") {
        match node {
            Node::Bool(false) => failover.panic_threshold = None,
            _ => {
                if let Some(share) = read::number(node, &path, p) {
                    failover.panic_threshold = Some(share);
                }
            }
        }
    }
}

/// `failure_rate`: a map merged onto the current setting, `true` (defaults) or `false` (off).
fn apply_failure_rate(
    target: &mut Option<FailureRatePolicy>,
    node: &Node,
    path: &str,
    p: &mut Problems,
) {
    let allowed = ["threshold", "minimum_requests", "window"];
    read::switchable(target, node, path, &allowed, p, |f, rate, p| {
        set(f, "threshold", p, read::number, &mut rate.threshold);
        let minimum = &mut rate.minimum_requests;
        set(f, "minimum_requests", p, read::u32_value, minimum);
        set(f, "window", p, read::duration, &mut rate.window);
    });
}

/// `cache`: a map merged onto the current setting, `true` (defaults) or `false` (off).
fn apply_cache(target: &mut Option<CachePolicy>, node: &Node, path: &str, p: &mut Problems) {
    let allowed = [
        "ttl",
        "methods",
        "vary_headers",
        "max_bytes",
        "stale_while_revalidate",
        "stale_if_error",
        "respect_cache_control",
        "l2",
        "warm",
        "warm_concurrency",
        "entities",
    ];
    read::switchable(target, node, path, &allowed, p, |f, cache, p| {
        set(f, "ttl", p, read::duration, &mut cache.ttl);
        set(f, "methods", p, read::string_list, &mut cache.methods);
        let vary = &mut cache.vary_headers;
        set(f, "vary_headers", p, read::string_list, vary);
        set(f, "max_bytes", p, read::size, &mut cache.max_bytes);
        let swr = &mut cache.stale_while_revalidate;
        set(f, "stale_while_revalidate", p, optional_duration, swr);
        let sie = &mut cache.stale_if_error;
        set(f, "stale_if_error", p, optional_duration, sie);
        let respect = &mut cache.respect_cache_control;
        set(f, "respect_cache_control", p, read::boolean, respect);
        if let Some((node, path)) = f.get("l2") {
            super::cache_l2::apply_l2(&mut cache.l2, node, &path, p);
        }
        apply_coherence(f, cache, p);
    });
}

/// A duration, or `false` for "none".
fn optional_duration(
    node: &Node,
    path: &str,
    p: &mut Problems,
) -> Option<Option<std::time::Duration>> {
    match node {
        Node::Bool(false) => Some(None),
        _ => read::duration(node, path, p).map(Some),
    }
}

/// `rate_limit`: a map merged onto the current setting, or `false` (off).
fn apply_rate_limit(
    target: &mut Option<RateLimitPolicy>,
    node: &Node,
    path: &str,
    p: &mut Problems,
) {
    match node {
        Node::Bool(false) => *target = None,
        Node::Map(_) => {
            let Some(f) = read::fields(node, path, &["per_second", "burst"], p) else {
                return;
            };
            let per_second = f
                .get("per_second")
                .and_then(|(n, path)| read::number(n, &path, p));
            let burst = f
                .get("burst")
                .and_then(|(n, path)| read::u32_value(n, &path, p));
            let base_rate = target.as_ref().map(|r| r.per_second);
            let Some(rate) = per_second.or(base_rate) else {
                if f.get("per_second").is_none() {
                    p.push(
                        path,
                        None,
                        "`per_second` is required to enable a rate limit",
                    );
                }
                return;
            };
            let burst = burst
                .or_else(|| {
                    // Keep an inherited burst only when the rate itself was inherited.
                    per_second
                        .is_none()
                        .then(|| target.as_ref().map(|r| r.burst))
                        .flatten()
                })
                .unwrap_or_else(|| RateLimitPolicy::default_burst(rate));
            *target = Some(RateLimitPolicy {
                per_second: rate,
                burst,
            });
        }
        other => read::wrong_type(other, path, "a map or false", p),
    }
}

/// `cache.warm`, `cache.warm_concurrency` and `cache.entities`.
fn apply_coherence(f: &Fields<'_>, cache: &mut CachePolicy, p: &mut Problems) {
    set(f, "warm", p, read::string_list, &mut cache.warm);
    set(
        f,
        "warm_concurrency",
        p,
        read::u32_value,
        &mut cache.warm_concurrency,
    );
    if let Some((node, path)) = f.get("entities")
        && let Some(entries) = read::entries(node, &path, "a map: entity type → path templates", p)
    {
        if read::duplicates(entries, &path, p) {
            return;
        }
        for (name, value) in entries {
            if let Some(list) = read::string_list(value, &super::error::join(&path, name), p) {
                cache.entities.insert(name.clone(), list);
            }
        }
    }
}
