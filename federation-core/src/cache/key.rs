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

use std::hash::{BuildHasher, Hasher};

use std::collections::hash_map::RandomState;

mod text;
pub use text::CacheKey;
pub(crate) use text::KeyBuf;
use text::{INLINE_KEY, KeyText};

/// Builds keys for one service: knows the vary-headers and the digest keys.
#[derive(Debug, Clone)]
pub(crate) struct KeyBuilder {
    /// Lower-cased vary header names, in configured order.
    vary: Vec<http::HeaderName>,
    /// SipHash keys of the digest, random per cache; `None` when the digest must be the same in
    /// every process (a shared L2 tier): then it is SHA-256, truncated to 128 bits.
    seeds: Option<(RandomState, RandomState)>,
}

/// Headers that make a response user-specific: a request carrying one is cached only when the
/// header is a configured vary-header, so one user's answer is never served to another.
const PERSONAL_HEADERS: [http::HeaderName; 2] = [http::header::AUTHORIZATION, http::header::COOKIE];

impl KeyBuilder {
    /// A builder for the given vary-header names (invalid names are ignored; config validation
    /// reports them). `shared`: digests must match across processes (L2 keys).
    pub(crate) fn new(vary_headers: &[String], shared: bool) -> Self {
        let vary = vary_headers
            .iter()
            .filter_map(|name| http::HeaderName::from_bytes(name.trim().as_bytes()).ok())
            .collect();
        Self {
            vary,
            seeds: (!shared).then(|| (RandomState::new(), RandomState::new())),
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
        let query = query.unwrap_or("");
        let mut text = String::with_capacity(path.len() + method.as_str().len() + query.len() + 36);
        self.write(&mut text, method, path, query, headers, body, tags)?;
        Some(CacheKey {
            text: text.into_boxed_str(),
            path_len: path.len(),
        })
    }

    /// Like [`build`](Self::build), for one lookup: writes the same key text to `out` (an empty
    /// buffer). False when the request must bypass the cache or its key does not fit.
    #[allow(
        clippy::too_many_arguments,
        reason = "the parts of a request that make its key"
    )]
    pub(crate) fn build_buf(
        &self,
        out: &mut KeyBuf,
        method: &http::Method,
        path: &str,
        query: Option<&str>,
        headers: &http::HeaderMap,
        body: &[u8],
        tags: Option<&[String]>,
    ) -> bool {
        let query = query.unwrap_or("");
        // Path, method, a 32-digit digest, the query and three separators, at most.
        if path.len() + method.as_str().len() + query.len() + 35 > INLINE_KEY {
            return false;
        }
        out.path_len = path.len();
        self.write(out, method, path, query, headers, body, tags)
            .is_some()
            && !out.overflow
    }

    /// Writes `path SP method SP digest SP sorted-query` to `out`, or returns `None` for a request
    /// that must bypass the cache.
    #[allow(
        clippy::too_many_arguments,
        reason = "the parts of a request that make its key"
    )]
    fn write(
        &self,
        out: &mut impl KeyText,
        method: &http::Method,
        path: &str,
        query: &str,
        headers: &http::HeaderMap,
        body: &[u8],
        tags: Option<&[String]>,
    ) -> Option<()> {
        if !headers.is_empty() {
            for personal in &PERSONAL_HEADERS {
                if headers.contains_key(personal) && !self.vary.contains(personal) {
                    return None;
                }
            }
        }
        let digest = if self.digests(body, tags) {
            self.digest(headers, body, tags)
        } else {
            None
        };
        out.push_str(path);
        out.push_ascii(b' ');
        out.push_str(method.as_str());
        out.push_ascii(b' ');
        match digest {
            Some(d) => push_hex(out, d),
            None => out.push_ascii(b'-'),
        }
        out.push_ascii(b' ');
        push_sorted_query(out, query);
        Some(())
    }

    /// Whether a request's key has a digest: vary-headers are configured, or it has a body or a
    /// per-call tag filter.
    #[inline]
    fn digests(&self, body: &[u8], tags: Option<&[String]>) -> bool {
        !(self.vary.is_empty() && body.is_empty() && tags.is_none())
    }

    /// 128-bit digest of the vary-headers, the tag filter and the body; `None` when there is
    /// nothing to digest. The tags are fed in sorted order without duplicates.
    fn digest(
        &self,
        headers: &http::HeaderMap,
        body: &[u8],
        tags: Option<&[String]>,
    ) -> Option<u128> {
        if !self.digests(body, tags) {
            return None;
        }
        match &self.seeds {
            Some((first, second)) => {
                let mut a = first.build_hasher();
                let mut b = second.build_hasher();
                self.feed(headers, body, tags, &mut |bytes: &[u8]| {
                    a.write_usize(bytes.len());
                    a.write(bytes);
                    b.write_usize(bytes.len());
                    b.write(bytes);
                });
                Some((u128::from(a.finish()) << 64) | u128::from(b.finish()))
            }
            None => {
                let mut sha = ring::digest::Context::new(&ring::digest::SHA256);
                self.feed(headers, body, tags, &mut |bytes: &[u8]| {
                    sha.update(&(bytes.len() as u64).to_le_bytes());
                    sha.update(bytes);
                });
                let digest = sha.finish();
                let mut first = [0u8; 16];
                first.copy_from_slice(digest.as_ref().get(..16).unwrap_or(&[0; 16]));
                Some(u128::from_be_bytes(first))
            }
        }
    }

    /// Feeds the vary-headers, the tag filter and the body, each length-prefixed by `feed`.
    fn feed(
        &self,
        headers: &http::HeaderMap,
        body: &[u8],
        tags: Option<&[String]>,
        feed: &mut dyn FnMut(&[u8]),
    ) {
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
    }
}

fn push_hex(out: &mut impl KeyText, value: u128) {
    const HEX: &[u8; 16] = b"0123456789abcdef";
    for shift in (0..32).rev() {
        let nibble = ((value >> (shift * 4)) & 0xf) as usize;
        out.push_ascii(HEX[nibble]);
    }
}

/// Sorts `pairs` in byte order. The few pairs of a typical query are insertion-sorted in place
/// (one comparison per pair when already sorted; no call into the general sort).
fn sort_pairs(pairs: &mut [&str]) {
    if pairs.len() > 16 {
        pairs.sort_unstable();
        return;
    }
    for i in 1..pairs.len() {
        let mut j = i;
        while j > 0 && pairs[j - 1] > pairs[j] {
            pairs.swap(j - 1, j);
            j -= 1;
        }
    }
}

/// Appends the query's `&`-separated pairs in byte order, skipping empty pairs. Small queries
/// (the common case: up to 8 pairs) are sorted on the stack.
fn push_sorted_query(out: &mut impl KeyText, query: &str) {
    let query = query.strip_prefix('?').unwrap_or(query);
    if query.is_empty() {
        return;
    }
    let mut small: [&str; 8] = [""; 8];
    let mut large: Vec<&str> = Vec::new();
    let mut n = 0;
    for pair in scan::pairs(query) {
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
    sort_pairs(pairs);
    for (i, pair) in pairs.iter().enumerate() {
        if i > 0 {
            out.push_ascii(b'&');
        }
        out.push_str(pair);
    }
}

mod scan;
pub(crate) use scan::find_byte;

#[cfg(test)]
mod tests;
