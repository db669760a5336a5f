//! Range and consistency checks of one resolved [`Policy`].
//!
//! Policies fail quietly when they are inconsistent: a 5 s attempt timeout under a 3 s call
//! deadline never fires, a backoff base above its cap never grows, zero attempts never calls.
//! Each check names the field and the allowed range; paths are relative to the policy's owner
//! (`defaults` or `services.<name>`), which the caller prepends.

use std::time::Duration;

use super::error::{Problems, index, join};
use super::model::{CachePolicy, LimitPolicy, Policy};
use super::suggest;
use super::units::{format_duration as fd, format_size};

/// Methods a cache may store.
const METHODS: &[&str] = &["GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS"];

/// Checks `policy`, reporting paths under `base`.
pub(crate) fn check_policy(policy: &Policy, base: &str, p: &mut Problems) {
    let at = |key: &str| join(base, key);
    let t = &policy.timeout;
    positive(t.attempt, &at("timeout.attempt"), p);
    positive(t.total, &at("timeout.total"), p);
    if t.attempt > t.total {
        p.push(
            &at("timeout.attempt"),
            Some(fd(t.attempt)),
            format!(
                "longer than timeout.total ({}); an attempt cannot outlast the whole call",
                fd(t.total)
            ),
        );
    }
    let r = &policy.retry;
    if !(1..=100).contains(&r.max_attempts) {
        p.push(
            &at("retry.max_attempts"),
            Some(r.max_attempts.to_string()),
            "allowed: 1 to 100 (attempts include the first; 1 disables retries)",
        );
    }
    if r.budget.percent > 1000 {
        p.push(
            &at("retry.budget.percent"),
            Some(r.budget.percent.to_string()),
            "allowed: 0 to 1000 (retries as a percentage of first attempts)",
        );
    }
    at_least_a_second(r.budget.window, &at("retry.budget.window"), p);
    if r.backoff.base > r.backoff.max {
        p.push(
            &at("retry.backoff.base"),
            Some(fd(r.backoff.base)),
            format!("larger than retry.backoff.max ({})", fd(r.backoff.max)),
        );
    }
    let b = &policy.breaker;
    if b.consecutive_failures == 0 {
        p.push(
            &at("breaker.consecutive_failures"),
            Some("0".to_owned()),
            "allowed: 1 or more",
        );
    }
    if let Some(rate) = &b.failure_rate {
        if !(rate.threshold > 0.0 && rate.threshold <= 1.0) {
            p.push(
                &at("breaker.failure_rate.threshold"),
                Some(rate.threshold.to_string()),
                "allowed: a share greater than 0 and at most 1 (0.5 = 50 %); \
                 use `failure_rate: false` to disable",
            );
        }
        if rate.minimum_requests == 0 {
            p.push(
                &at("breaker.failure_rate.minimum_requests"),
                Some("0".to_owned()),
                "allowed: 1 or more",
            );
        }
        at_least_a_second(rate.window, &at("breaker.failure_rate.window"), p);
    }
    positive(b.open_for, &at("breaker.open_for"), p);
    if b.open_for > b.max_open_for {
        p.push(
            &at("breaker.open_for"),
            Some(fd(b.open_for)),
            format!("longer than breaker.max_open_for ({})", fd(b.max_open_for)),
        );
    }
    let threshold = policy.failover.healthy_threshold;
    if !(0.0..=1.0).contains(&threshold) {
        p.push(
            &at("failover.healthy_threshold"),
            Some(threshold.to_string()),
            "allowed: a share from 0 to 1 (0.5 = half the instances available)",
        );
    }
    if let Some(panic) = policy.failover.panic_threshold
        && !(0.0..=1.0).contains(&panic)
    {
        p.push(
            &at("failover.panic_threshold"),
            Some(panic.to_string()),
            "allowed: a share from 0 to 1 (0 = only when the breakers admit no instance); \
             use `panic_threshold: false` to disable",
        );
    }
    if let Some(cache) = &policy.cache {
        check_cache(cache, &at("cache"), p);
    }
    check_limits(&policy.limits, &at("limits"), p);
    if let Some(hedge) = &policy.hedge {
        super::hedge::check_hedge(hedge, t.attempt, &at("hedge"), p);
    }
    if let Some(spill) = &policy.spill {
        super::spill::check_spill(spill, &at("spill"), p);
    }
}

fn check_cache(cache: &CachePolicy, path: &str, p: &mut Problems) {
    if let Some(l2) = &cache.l2 {
        super::cache_l2::check_l2(l2, &join(path, "l2"), p);
    }
    check_coherence(cache, path, p);
    positive(cache.ttl, &join(path, "ttl"), p);
    if cache.methods.is_empty() {
        p.push(
            &join(path, "methods"),
            Some("[]".to_owned()),
            "list at least one method, or disable the cache with `cache: false`",
        );
    }
    for (i, method) in cache.methods.iter().enumerate() {
        if !METHODS.contains(&method.as_str()) {
            p.push(
                &index(&join(path, "methods"), i),
                Some(format!("\"{method}\"")),
                format!(
                    "not a cacheable HTTP method{}; allowed: {}",
                    suggest::hint(method, METHODS.iter().copied()),
                    suggest::list(METHODS.iter().copied())
                ),
            );
        }
    }
    for (i, header) in cache.vary_headers.iter().enumerate() {
        if http::HeaderName::from_bytes(header.as_bytes()).is_err() {
            p.push(
                &index(&join(path, "vary_headers"), i),
                Some(format!("\"{header}\"")),
                "invalid header name; use letters, digits and `-` (e.g. Accept-Language)",
            );
        }
    }
    if cache.max_bytes == 0 {
        p.push(
            &join(path, "max_bytes"),
            Some("0".to_owned()),
            "allowed: at least 1 byte, e.g. 64MiB",
        );
    }
}

fn check_limits(limits: &LimitPolicy, path: &str, p: &mut Problems) {
    if limits.max_concurrent == Some(0) {
        p.push(
            &join(path, "max_concurrent"),
            Some("0".to_owned()),
            "allowed: 1 or more; use `false` (or omit it) for no limit",
        );
    }
    if let Some(rate) = &limits.rate_limit {
        if !(rate.per_second.is_finite() && rate.per_second > 0.0) {
            p.push(
                &join(path, "rate_limit.per_second"),
                Some(rate.per_second.to_string()),
                "allowed: a number greater than 0; use `rate_limit: false` to disable",
            );
        }
        if rate.burst == 0 {
            p.push(
                &join(path, "rate_limit.burst"),
                Some("0".to_owned()),
                "allowed: 1 or more",
            );
        }
    }
    if limits.max_response_bytes == 0 {
        p.push(
            &join(path, "max_response_bytes"),
            Some(format_size(0)),
            "allowed: at least 1 byte, e.g. 32MiB",
        );
    }
}

fn positive(d: Duration, path: &str, p: &mut Problems) {
    if d.is_zero() {
        p.push(path, Some(fd(d)), "allowed: a duration greater than 0s");
    }
}

fn at_least_a_second(d: Duration, path: &str, p: &mut Problems) {
    if d < Duration::from_secs(1) {
        p.push(path, Some(fd(d)), "allowed: 1s or more");
    }
}

/// Checks the warm-up list and the entity templates of a cache at `path`.
fn check_coherence(cache: &CachePolicy, path: &str, p: &mut Problems) {
    for (i, warm) in cache.warm.iter().enumerate() {
        if !warm.starts_with('/') {
            p.push(
                &index(&join(path, "warm"), i),
                Some(format!("\"{warm}\"")),
                "a request path starting with `/`, e.g. /api/v1/config",
            );
        }
    }
    if !(1..=64).contains(&cache.warm_concurrency) {
        p.push(
            &join(path, "warm_concurrency"),
            Some(cache.warm_concurrency.to_string()),
            "allowed: 1 to 64",
        );
    }
    for (entity, templates) in &cache.entities {
        for (i, t) in templates.iter().enumerate() {
            let star = t.find('*');
            let ok =
                t.starts_with('/') && t.contains("{id}") && star.is_none_or(|at| at + 1 == t.len());
            if !ok {
                p.push(
                    &index(&join(&join(path, "entities"), entity), i),
                    Some(format!("\"{t}\"")),
                    "a path starting with `/` containing `{id}`, optionally ending in `*` for a \
                     prefix, e.g. /api/v1/users/{id}",
                );
            }
        }
    }
}
