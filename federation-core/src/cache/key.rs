//! Cache keys: what makes two requests "the same" for the result cache.
//!
//! A key is the request method, the logical path, the query with its pairs sorted (so `?b=2&a=1`
//! and `?a=1&b=2` share an entry) and a 128-bit digest of the configured vary-headers, of a
//! per-call tag filter when one is given (so `model=v3` never reads `model=v2`'s answer) and of
//! the body (so POST inference requests are keyed by what they ask). It never contains the cluster or
//! the instance: a failover must not split the cache. The logical service is implicit, because
//! every service has its own [`ResultCache`](super::ResultCache).
//!
//! The digest is two SipHash-1-3 passes with independent random keys chosen when the cache is
//! created: collisions cannot be engineered by a caller who does not know the keys, and vary-header
//! values (tokens, tenant ids) are never kept in clear text inside the key.

use std::fmt;
use std::hash::{BuildHasher, Hasher};

use std::collections::hash_map::RandomState;

/// The identity of a cached response within one service's cache.
///
/// Built by [`ResultCache::key`](super::ResultCache::key). Cheap to hash and compare; the
/// text is one allocation.
#[derive(Clone, PartialEq, Eq, Hash)]
pub struct CacheKey {
    /// `path SP method SP digest SP sorted-query`; `path_len` marks where the path ends, so no
    /// byte of the path can be confused with a separator.
    text: Box<str>,
    path_len: usize,
}

impl CacheKey {
    /// The logical request path this key belongs to (what `invalidate` matches).
    pub fn path(&self) -> &str {
        self.text.get(..self.path_len).unwrap_or("")
    }

    /// Bytes the key occupies in memory (used by the cache's byte bound).
    pub fn weight(&self) -> usize {
        self.text.len() + std::mem::size_of::<Self>()
    }

    /// The key's canonical text (path, method, digest, sorted query). Contains no header values.
    pub fn as_str(&self) -> &str {
        &self.text
    }
}

impl fmt::Debug for CacheKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_tuple("CacheKey").field(&&*self.text).finish()
    }
}

/// Builds keys for one service: knows the vary-headers and the digest keys.
#[derive(Debug, Clone)]
pub(crate) struct KeyBuilder {
    /// Lower-cased vary header names, in configured order.
    vary: Vec<http::HeaderName>,
    first: RandomState,
    second: RandomState,
}

/// Headers that make a response user-specific: a request carrying one is cached only when the
/// header is a configured vary-header, so one user's answer is never served to another.
const PERSONAL_HEADERS: [http::HeaderName; 2] = [http::header::AUTHORIZATION, http::header::COOKIE];

impl KeyBuilder {
    /// A builder for the given vary-header names (invalid names are ignored; config validation
    /// reports them).
    pub(crate) fn new(vary_headers: &[String]) -> Self {
        let vary = vary_headers
            .iter()
            .filter_map(|name| http::HeaderName::from_bytes(name.trim().as_bytes()).ok())
            .collect();
        Self {
            vary,
            first: RandomState::new(),
            second: RandomState::new(),
        }
    }

    /// Whether `name` is a configured vary-header.
    pub(crate) fn varies_on(&self, name: &http::HeaderName) -> bool {
        self.vary.contains(name)
    }

    /// The key of a request, or `None` when the request must bypass the cache because it carries
    /// credentials (`Authorization`, `Cookie`) that are not vary-headers.
    pub(crate) fn build(
        &self,
        method: &http::Method,
        path: &str,
        query: Option<&str>,
        headers: &http::HeaderMap,
        body: &[u8],
        tags: Option<&[String]>,
    ) -> Option<CacheKey> {
        for personal in &PERSONAL_HEADERS {
            if headers.contains_key(personal) && !self.vary.contains(personal) {
                return None;
            }
        }
        let digest = self.digest(headers, body, tags);
        let query = query.unwrap_or("");
        let mut text = String::with_capacity(path.len() + method.as_str().len() + query.len() + 36);
        text.push_str(path);
        text.push(' ');
        text.push_str(method.as_str());
        text.push(' ');
        match digest {
            Some(d) => push_hex(&mut text, d),
            None => text.push('-'),
        }
        text.push(' ');
        push_sorted_query(&mut text, query);
        Some(CacheKey {
            text: text.into_boxed_str(),
            path_len: path.len(),
        })
    }

    /// 128-bit digest of the vary-headers, the tag filter and the body; `None` when there is
    /// nothing to digest. The tags are fed in sorted order without duplicates.
    fn digest(
        &self,
        headers: &http::HeaderMap,
        body: &[u8],
        tags: Option<&[String]>,
    ) -> Option<u128> {
        if self.vary.is_empty() && body.is_empty() && tags.is_none() {
            return None;
        }
        let mut a = self.first.build_hasher();
        let mut b = self.second.build_hasher();
        let mut feed = |bytes: &[u8]| {
            a.write_usize(bytes.len());
            a.write(bytes);
            b.write_usize(bytes.len());
            b.write(bytes);
        };
        for name in &self.vary {
            let values = headers.get_all(name);
            feed(name.as_str().as_bytes());
            let mut count = 0usize;
            for value in values {
                feed(value.as_bytes());
                count += 1;
            }
            feed(&count.to_le_bytes());
        }
        if let Some(tags) = tags {
            let mut sorted: Vec<&str> = tags.iter().map(String::as_str).collect();
            sorted.sort_unstable();
            sorted.dedup();
            // A marker, so a filter can never read as a vary-header or body byte sequence.
            feed(b"\0tags");
            for tag in &sorted {
                feed(tag.as_bytes());
            }
            feed(&sorted.len().to_le_bytes());
        }
        feed(body);
        Some((u128::from(a.finish()) << 64) | u128::from(b.finish()))
    }
}

fn push_hex(out: &mut String, value: u128) {
    const HEX: &[u8; 16] = b"0123456789abcdef";
    for shift in (0..32).rev() {
        let nibble = ((value >> (shift * 4)) & 0xf) as usize;
        out.push(char::from(HEX[nibble]));
    }
}

/// Appends the query's `&`-separated pairs in byte order, skipping empty pairs. Small queries
/// (the common case) are sorted on the stack.
fn push_sorted_query(out: &mut String, query: &str) {
    let query = query.strip_prefix('?').unwrap_or(query);
    if query.is_empty() {
        return;
    }
    let mut small: [&str; 16] = [""; 16];
    let mut large: Vec<&str> = Vec::new();
    let mut n = 0;
    for pair in query.split('&').filter(|p| !p.is_empty()) {
        if n < small.len() {
            small[n] = pair;
        } else {
            if large.is_empty() {
                large.extend_from_slice(&small);
            }
            large.push(pair);
        }
        n += 1;
    }
    let pairs: &mut [&str] = if large.is_empty() {
        &mut small[..n]
    } else {
        &mut large
    };
    pairs.sort_unstable();
    for (i, pair) in pairs.iter().enumerate() {
        if i > 0 {
            out.push('&');
        }
        out.push_str(pair);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use http::{HeaderMap, HeaderValue, Method};

    fn builder(vary: &[&str]) -> KeyBuilder {
        KeyBuilder::new(&vary.iter().map(|s| (*s).to_owned()).collect::<Vec<_>>())
    }

    #[test]
    fn query_order_does_not_matter() {
        let b = builder(&[]);
        let h = HeaderMap::new();
        let k1 = b.build(&Method::GET, "/u", Some("b=2&a=1"), &h, b"", None);
        let k2 = b.build(&Method::GET, "/u", Some("a=1&&b=2"), &h, b"", None);
        assert_eq!(k1, k2);
        assert_eq!(k1.expect("key").as_str(), "/u GET - a=1&b=2");
    }

    #[test]
    fn many_query_pairs_sort_too() {
        let b = builder(&[]);
        let h = HeaderMap::new();
        let fwd: Vec<String> = (0..40).map(|i| format!("k{i:02}=v")).collect();
        let rev: Vec<String> = fwd.iter().rev().cloned().collect();
        let k1 = b.build(&Method::GET, "/", Some(&fwd.join("&")), &h, b"", None);
        let k2 = b.build(&Method::GET, "/", Some(&rev.join("&")), &h, b"", None);
        assert_eq!(k1, k2);
    }

    #[test]
    fn method_path_and_body_distinguish() {
        let b = builder(&[]);
        let h = HeaderMap::new();
        let get = b.build(&Method::GET, "/x", None, &h, b"", None);
        let head = b.build(&Method::HEAD, "/x", None, &h, b"", None);
        let p1 = b.build(&Method::POST, "/x", None, &h, b"{\"q\":1}", None);
        let p2 = b.build(&Method::POST, "/x", None, &h, b"{\"q\":2}", None);
        let p1b = b.build(&Method::POST, "/x", None, &h, b"{\"q\":1}", None);
        assert_ne!(get, head);
        assert_ne!(p1, p2);
        assert_eq!(p1, p1b);
        assert_ne!(
            b.build(&Method::GET, "/x y", None, &h, b"", None),
            b.build(&Method::GET, "/x", Some("y"), &h, b"", None)
        );
    }

    #[test]
    fn vary_headers_distinguish_and_stay_secret() {
        let b = builder(&["X-Tenant", "authorization"]);
        let mut h1 = HeaderMap::new();
        h1.insert("x-tenant", HeaderValue::from_static("acme"));
        h1.insert(
            "authorization",
            HeaderValue::from_static("Bearer secret-token"),
        );
        let mut h2 = h1.clone();
        h2.insert("x-tenant", HeaderValue::from_static("globex"));
        let k1 = b
            .build(&Method::GET, "/x", None, &h1, b"", None)
            .expect("key");
        let k2 = b
            .build(&Method::GET, "/x", None, &h2, b"", None)
            .expect("key");
        assert_ne!(k1, k2);
        assert!(!format!("{k1:?}").contains("secret"));
        assert!(!k1.as_str().contains("acme"));
    }

    #[test]
    fn credentials_bypass_unless_varied() {
        let b = builder(&[]);
        let mut h = HeaderMap::new();
        h.insert("authorization", HeaderValue::from_static("Bearer t"));
        assert!(b.build(&Method::GET, "/x", None, &h, b"", None).is_none());
        let mut c = HeaderMap::new();
        c.insert("cookie", HeaderValue::from_static("sid=1"));
        assert!(b.build(&Method::GET, "/x", None, &c, b"", None).is_none());
    }

    #[test]
    fn tag_filters_distinguish_in_any_order() {
        let b = builder(&[]);
        let h = HeaderMap::new();
        let tags = |t: &[&str]| t.iter().map(|s| (*s).to_owned()).collect::<Vec<_>>();
        let (v2, v3) = (tags(&["model=v2"]), tags(&["model=v3"]));
        let default = b.build(&Method::POST, "/infer", None, &h, b"q", None);
        let k2 = b.build(&Method::POST, "/infer", None, &h, b"q", Some(&v2));
        let k3 = b.build(&Method::POST, "/infer", None, &h, b"q", Some(&v3));
        assert_ne!(k2, k3);
        assert_ne!(default, k3);
        let ab = tags(&["a", "b"]);
        let ba = tags(&["b", "a", "b"]);
        assert_eq!(
            b.build(&Method::GET, "/x", None, &h, b"", Some(&ab)),
            b.build(&Method::GET, "/x", None, &h, b"", Some(&ba))
        );
        let k = b
            .build(&Method::GET, "/x", None, &h, b"", Some(&ab))
            .expect("key");
        assert_eq!(k.path(), "/x", "tags are not part of the path");
    }

    #[test]
    fn path_is_recoverable() {
        let b = builder(&[]);
        let k = b
            .build(
                &Method::GET,
                "/a b",
                Some("q=1"),
                &HeaderMap::new(),
                b"",
                None,
            )
            .expect("key");
        assert_eq!(k.path(), "/a b");
    }
}
