//! Deciding whether and for how long an upstream response may be stored.
//!
//! Serving a response that upstream marked `no-store`, or keeping it longer than its `max-age`,
//! shows users data the owning service said was not reusable. The rules, applied in order:
//! only 2xx statuses (except `206 Partial Content`) are stored; with `respect_cache_control`,
//! `no-store`, `no-cache` and `private` (this cache is shared by every caller of the client) mean
//! "do not store", `max-age=N` shortens the configured TTL (it never lengthens it), and
//! `Vary: *` means "do not store". The configured TTL is the upper bound in every case.

use std::time::Duration;

use http::HeaderMap;
use http::header::{CACHE_CONTROL, VARY};

/// How long a response with this status and these headers stays fresh, or `None` when it must
/// not be stored.
pub(crate) fn freshness(
    status: u16,
    headers: &HeaderMap,
    ttl: Duration,
    respect_cache_control: bool,
) -> Option<Duration> {
    if !(200..300).contains(&status) || status == 206 {
        return None;
    }
    if !respect_cache_control {
        return Some(ttl);
    }
    if headers.get_all(VARY).iter().any(|v| {
        v.to_str()
            .is_ok_and(|s| s.split(',').any(|t| t.trim() == "*"))
    }) {
        return None;
    }
    let mut fresh = ttl;
    for value in headers.get_all(CACHE_CONTROL) {
        let Ok(value) = value.to_str() else {
            continue;
        };
        for directive in value.split(',') {
            let directive = directive.trim();
            let (name, arg) = match directive.split_once('=') {
                Some((n, a)) => (n.trim(), Some(a.trim().trim_matches('"'))),
                None => (directive, None),
            };
            if name.eq_ignore_ascii_case("no-store")
                || name.eq_ignore_ascii_case("no-cache")
                || name.eq_ignore_ascii_case("private")
            {
                return None;
            }
            if name.eq_ignore_ascii_case("max-age") {
                // An unparsable max-age is treated as 0 (RFC 9111 §4.2.1: invalid = stale).
                let secs = arg.and_then(|a| a.parse::<u64>().ok()).unwrap_or(0);
                fresh = fresh.min(Duration::from_secs(secs));
            }
        }
    }
    if fresh.is_zero() { None } else { Some(fresh) }
}

/// Statuses for which a stale value may be served instead (RFC 5861 `stale-if-error`).
pub(crate) fn is_error_status(status: u16) -> bool {
    matches!(status, 500 | 502 | 503 | 504)
}

#[cfg(test)]
mod tests {
    use super::*;
    use http::HeaderValue;

    const TTL: Duration = Duration::from_secs(30);

    fn cc(value: &'static str) -> HeaderMap {
        let mut h = HeaderMap::new();
        h.insert(CACHE_CONTROL, HeaderValue::from_static(value));
        h
    }

    #[test]
    fn only_2xx_are_stored() {
        let h = HeaderMap::new();
        assert_eq!(freshness(200, &h, TTL, true), Some(TTL));
        assert_eq!(freshness(204, &h, TTL, true), Some(TTL));
        assert_eq!(freshness(206, &h, TTL, true), None);
        assert_eq!(freshness(404, &h, TTL, true), None);
        assert_eq!(freshness(503, &h, TTL, true), None);
    }

    #[test]
    fn cache_control_is_honoured() {
        assert_eq!(freshness(200, &cc("no-store"), TTL, true), None);
        assert_eq!(freshness(200, &cc("No-Cache"), TTL, true), None);
        assert_eq!(freshness(200, &cc("private, max-age=5"), TTL, true), None);
        assert_eq!(
            freshness(200, &cc("public, max-age=5"), TTL, true),
            Some(Duration::from_secs(5))
        );
        assert_eq!(freshness(200, &cc("max-age=3600"), TTL, true), Some(TTL));
        assert_eq!(freshness(200, &cc("max-age=0"), TTL, true), None);
        assert_eq!(freshness(200, &cc("max-age=junk"), TTL, true), None);
        assert_eq!(freshness(200, &cc("no-store"), TTL, false), Some(TTL));
    }

    #[test]
    fn vary_star_is_not_stored() {
        let mut h = HeaderMap::new();
        h.insert(VARY, HeaderValue::from_static("accept, *"));
        assert_eq!(freshness(200, &h, TTL, true), None);
    }
}
