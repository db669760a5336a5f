//! How a cached response is stored in Redis, and the names of its keys.
//!
//! A value written by one build and read by another, or cut short by a full Redis, must never be
//! served as a response: every record starts with a magic and version, every length is checked
//! against what remains, and anything that does not parse exactly is a miss. Times are wall-clock
//! milliseconds (`tokio::time::Instant` means nothing in another process) and are turned back
//! into this process's instants on read.

use std::time::{Duration, SystemTime, UNIX_EPOCH};

use bytes::{Buf, BufMut, Bytes, BytesMut};
use http::{HeaderMap, HeaderName, HeaderValue};

use crate::cache::entry::FetchOutcome;

const MAGIC: &[u8; 4] = b"FL2\x01";

/// A record as stored in Redis.
#[derive(Debug)]
pub(crate) struct Record {
    /// When the fetch that produced it started (wall clock, ms): invalidations after this
    /// instant make it unusable.
    pub(crate) as_of_ms: u64,
    /// Served fresh until this wall-clock instant (ms).
    pub(crate) fresh_until_ms: u64,
    pub(crate) outcome: FetchOutcome,
}

/// Milliseconds since the Unix epoch now.
pub(crate) fn now_ms() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| u64::try_from(d.as_millis()).unwrap_or(u64::MAX))
}

/// Microseconds since the Unix epoch now (propagation delays are well below a millisecond).
pub(crate) fn now_us() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| u64::try_from(d.as_micros()).unwrap_or(u64::MAX))
}

fn put_short(out: &mut BytesMut, bytes: &[u8]) -> Option<()> {
    out.put_u16(u16::try_from(bytes.len()).ok()?);
    out.put_slice(bytes);
    Some(())
}

/// Encodes a record; `None` when a part does not fit the format (then it stays L1-only).
pub(crate) fn encode(
    as_of_ms: u64,
    fresh_until_ms: u64,
    status: u16,
    headers: &HeaderMap,
    body: &[u8],
    origin: (Option<&str>, Option<&str>),
) -> Option<Bytes> {
    let header_bytes: usize = headers
        .iter()
        .map(|(n, v)| n.as_str().len() + v.len() + 6)
        .sum();
    let mut out = BytesMut::with_capacity(32 + header_bytes + body.len());
    out.put_slice(MAGIC);
    out.put_u64(as_of_ms);
    out.put_u64(fresh_until_ms);
    out.put_u16(status);
    put_short(&mut out, origin.0.unwrap_or("").as_bytes())?;
    put_short(&mut out, origin.1.unwrap_or("").as_bytes())?;
    out.put_u16(u16::try_from(headers.len()).ok()?);
    for (name, value) in headers {
        put_short(&mut out, name.as_str().as_bytes())?;
        out.put_u32(u32::try_from(value.len()).ok()?);
        out.put_slice(value.as_bytes());
    }
    out.put_u32(u32::try_from(body.len()).ok()?);
    out.put_slice(body);
    Some(out.freeze())
}

fn take(buf: &mut Bytes, n: usize) -> Option<Bytes> {
    (buf.remaining() >= n).then(|| buf.split_to(n))
}

fn take_u16(buf: &mut Bytes) -> Option<u16> {
    (buf.remaining() >= 2).then(|| buf.get_u16())
}

fn take_short_str(buf: &mut Bytes) -> Option<String> {
    let n = usize::from(take_u16(buf)?);
    String::from_utf8(take(buf, n)?.to_vec()).ok()
}

/// Decodes a record; `None` for anything that is not exactly one.
pub(crate) fn decode(mut buf: Bytes) -> Option<Record> {
    if take(&mut buf, 4)?.as_ref() != MAGIC || buf.remaining() < 18 {
        return None;
    }
    let as_of_ms = buf.get_u64();
    let fresh_until_ms = buf.get_u64();
    let status = buf.get_u16();
    let cluster = take_short_str(&mut buf)?;
    let instance = take_short_str(&mut buf)?;
    let count = take_u16(&mut buf)?;
    let mut headers = HeaderMap::with_capacity(usize::from(count));
    for _ in 0..count {
        let name_len = usize::from(take_u16(&mut buf)?);
        let name = HeaderName::from_bytes(&take(&mut buf, name_len)?).ok()?;
        if buf.remaining() < 4 {
            return None;
        }
        let len = usize::try_from(buf.get_u32()).ok()?;
        let value = HeaderValue::from_maybe_shared(take(&mut buf, len)?).ok()?;
        headers.append(name, value);
    }
    if buf.remaining() < 4 {
        return None;
    }
    let body_len = usize::try_from(buf.get_u32()).ok()?;
    if buf.remaining() != body_len {
        return None;
    }
    let mut outcome = FetchOutcome::new(status, headers, buf);
    outcome.cluster = (!cluster.is_empty()).then(|| cluster.into());
    outcome.instance = (!instance.is_empty()).then(|| instance.into());
    Some(Record {
        as_of_ms,
        fresh_until_ms,
        outcome,
    })
}

/// Redis key names of one service's tier.
#[derive(Debug)]
pub(crate) struct Names {
    values: String,
    leases: String,
    /// The invalidation channel, shared by every service with the same key prefix.
    pub(crate) channel: String,
}

impl Names {
    pub(crate) fn new(prefix: &str, service: &str) -> Self {
        Self {
            values: format!("{prefix}v:{service}:"),
            leases: format!("{prefix}lease:{service}:"),
            channel: format!("{prefix}invalidate"),
        }
    }

    /// The value key of a cache key's text (`path SP method SP digest SP query`).
    pub(crate) fn value(&self, key_text: &str) -> String {
        let mut k = String::with_capacity(self.values.len() + key_text.len());
        k.push_str(&self.values);
        k.push_str(key_text);
        k
    }

    /// The lease key of a cache key's text.
    pub(crate) fn lease(&self, key_text: &str) -> String {
        let mut k = String::with_capacity(self.leases.len() + key_text.len());
        k.push_str(&self.leases);
        k.push_str(key_text);
        k
    }

    /// A `SCAN MATCH` pattern for every value whose path is exactly `path`, or starts with it
    /// when `prefix`.
    pub(crate) fn pattern(&self, path: &str, prefix: bool) -> String {
        let mut p = String::with_capacity(self.values.len() + path.len() + 4);
        glob_escape(&self.values, &mut p);
        glob_escape(path, &mut p);
        p.push_str(if prefix { "*" } else { " *" });
        p
    }
}

fn glob_escape(text: &str, out: &mut String) {
    for c in text.chars() {
        if matches!(c, '*' | '?' | '[' | ']' | '\\') {
            out.push('\\');
        }
        out.push(c);
    }
}

/// A duration as whole milliseconds for `PX` (at least 1).
pub(crate) fn px(d: Duration) -> u64 {
    u64::try_from(d.as_millis()).unwrap_or(u64::MAX).max(1)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_record_round_trips() {
        let mut headers = HeaderMap::new();
        headers.insert("content-type", HeaderValue::from_static("application/json"));
        headers.append("x-a", HeaderValue::from_static("1"));
        headers.append("x-a", HeaderValue::from_static("2"));
        let bytes = encode(5, 9, 200, &headers, b"{}", (Some("zervigo"), None)).expect("fits");
        let r = decode(bytes).expect("decodes");
        assert_eq!(
            (r.as_of_ms, r.fresh_until_ms, r.outcome.status),
            (5, 9, 200)
        );
        assert_eq!(r.outcome.headers.get_all("x-a").iter().count(), 2);
        assert_eq!(&r.outcome.body[..], b"{}");
        assert_eq!(r.outcome.cluster.as_deref(), Some("zervigo"));
        assert_eq!(r.outcome.instance, None);
    }

    #[test]
    fn truncated_or_foreign_bytes_are_not_records() {
        let bytes = encode(1, 2, 200, &HeaderMap::new(), b"body", (None, None)).expect("fits");
        for cut in 0..bytes.len() {
            assert!(decode(bytes.slice(..cut)).is_none(), "cut at {cut}");
        }
        let mut longer = bytes.to_vec();
        longer.push(b'!');
        assert!(decode(Bytes::from(longer)).is_none());
        assert!(decode(Bytes::from_static(b"hello world, not a record")).is_none());
    }

    #[test]
    fn patterns_escape_glob_characters() {
        let n = Names::new("f:", "user");
        assert_eq!(n.pattern("/a*b", false), "f:v:user:/a\\*b *");
        assert_eq!(n.pattern("/api/", true), "f:v:user:/api/*");
    }
}
