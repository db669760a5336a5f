//! Short per-call byte strings (a path, a `traceparent` value) in one reference-counted
//! allocation.
//!
//! Failure prevented: a `Bytes` made from a `Vec` or by `copy_from_slice` allocates its buffer,
//! and its first clone allocates again (the shared header it is promoted to). The HTTP client
//! clones a request's URI (path included) to find its connection pool, and a call with retries
//! clones its headers for each attempt, so every such value cost two allocations per call. Here
//! a value of up to [`INLINE_MAX`] bytes lives inline in its owner: one allocation, and clones
//! only count references.

use bytes::Bytes;

/// The longest value kept inline.
pub(crate) const INLINE_MAX: usize = 96;

struct Inline {
    len: usize,
    data: [u8; INLINE_MAX],
}

impl AsRef<[u8]> for Inline {
    fn as_ref(&self) -> &[u8] {
        &self.data[..self.len]
    }
}

/// `data` as a `Bytes` whose clones do not allocate.
pub(crate) fn shared_bytes(data: &[u8]) -> Bytes {
    if data.len() > INLINE_MAX {
        return Bytes::copy_from_slice(data);
    }
    let mut inline = Inline {
        len: data.len(),
        data: [0; INLINE_MAX],
    };
    inline.data[..data.len()].copy_from_slice(data);
    Bytes::from_owner(inline)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn short_and_long_values_read_back_unchanged() {
        for len in [0, 1, 55, INLINE_MAX, INLINE_MAX + 1, 1000] {
            let data: Vec<u8> = (0..len).map(|i| (i % 251) as u8).collect();
            let bytes = shared_bytes(&data);
            assert_eq!(&bytes[..], &data[..], "len {len}");
            let clone = bytes.clone();
            drop(bytes);
            assert_eq!(
                &clone[..],
                &data[..],
                "clone outlives the original, len {len}"
            );
            assert_eq!(&clone.slice(len / 2..)[..], &data[len / 2..]);
        }
    }
}
