//! A request's path and query, kept inline when short.
//!
//! Most calls name a short path (`/api/v1/users/42?fields=name`): copying it into the request
//! needs no heap allocation (and dropping the request no free), which matters on the cache-hit
//! path where the rest of a call costs a few hundred nanoseconds. Longer paths live in a
//! `String`. Without `unsafe`, reading the inline bytes back as `&str` validates them (they were
//! copied from a `&str`, so this never fails); that costs less than an allocation and a free.

use std::fmt;
use std::ops::Deref;

/// Bytes of path kept inline (the type is 72 bytes).
const INLINE: usize = 56;

/// A path and query, inline up to [`INLINE`] bytes.
#[derive(Clone)]
pub(crate) enum PathText {
    /// A short path.
    Inline(Inline),
    /// A longer path.
    Heap(String),
}

/// The bytes of a short path: `buf[..len]`. Word-aligned, so validating them as UTF-8 takes
/// the word-at-a-time ASCII path.
#[derive(Clone)]
#[repr(C, align(8))]
pub(crate) struct Inline {
    buf: [u8; INLINE],
    len: u8,
}

impl PathText {
    /// A copy of `path` (inline when it fits).
    pub(crate) fn new(path: &str) -> Self {
        let mut buf = [0; INLINE];
        match (buf.get_mut(..path.len()), u8::try_from(path.len())) {
            (Some(dst), Ok(len)) => {
                dst.copy_from_slice(path.as_bytes());
                Self::Inline(Inline { buf, len })
            }
            _ => Self::Heap(path.to_owned()),
        }
    }

    /// The text.
    #[inline]
    pub(crate) fn as_str(&self) -> &str {
        match self {
            Self::Inline(Inline { buf, len }) => buf
                .get(..usize::from(*len))
                .and_then(|bytes| std::str::from_utf8(bytes).ok())
                .unwrap_or_default(),
            Self::Heap(s) => s,
        }
    }

    /// Appends `s` (moving to the heap when it no longer fits inline).
    pub(crate) fn push_str(&mut self, s: &str) {
        match self {
            Self::Inline(Inline { buf, len }) => {
                let start = usize::from(*len);
                let end = start + s.len();
                match (buf.get_mut(start..end), u8::try_from(end)) {
                    (Some(dst), Ok(end)) => {
                        dst.copy_from_slice(s.as_bytes());
                        *len = end;
                    }
                    _ => {
                        let mut heap = String::with_capacity(end);
                        heap.push_str(self.as_str());
                        heap.push_str(s);
                        *self = Self::Heap(heap);
                    }
                }
            }
            Self::Heap(heap) => heap.push_str(s),
        }
    }

    /// Appends one character.
    pub(crate) fn push(&mut self, c: char) {
        self.push_str(c.encode_utf8(&mut [0; 4]));
    }
}

impl From<String> for PathText {
    /// Keeps the `String` (no copy) unless it is short enough to sit inline.
    fn from(path: String) -> Self {
        if path.len() <= INLINE {
            Self::new(&path)
        } else {
            Self::Heap(path)
        }
    }
}

impl Deref for PathText {
    type Target = str;

    fn deref(&self) -> &str {
        self.as_str()
    }
}

impl<'a> Extend<&'a str> for PathText {
    fn extend<I: IntoIterator<Item = &'a str>>(&mut self, iter: I) {
        for s in iter {
            self.push_str(s);
        }
    }
}

impl fmt::Debug for PathText {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Debug::fmt(self.as_str(), f)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn short_paths_stay_inline_and_read_back() {
        let p = PathText::new("/api/v1/users/42?fields=name");
        assert!(matches!(p, PathText::Inline(_)));
        assert_eq!(p.as_str(), "/api/v1/users/42?fields=name");
        assert_eq!(&*p, "/api/v1/users/42?fields=name");
        assert_eq!(format!("{p:?}"), "\"/api/v1/users/42?fields=name\"");
    }

    #[test]
    fn long_paths_and_growth_move_to_the_heap() {
        let long = format!("/{}", "x".repeat(INLINE));
        assert!(matches!(PathText::new(&long), PathText::Heap(_)));
        let exact = format!("/{}", "y".repeat(INLINE - 1));
        let mut p = PathText::new(&exact);
        assert!(matches!(p, PathText::Inline(_)));
        p.push('é');
        p.extend(["?a=", "1"]);
        assert!(matches!(p, PathText::Heap(_)));
        assert_eq!(p.as_str(), format!("{exact}é?a=1"));
    }

    #[test]
    fn multibyte_text_round_trips_inline() {
        let mut p = PathText::new("/caf");
        p.push('é');
        p.push_str("?q=ü");
        assert!(matches!(p, PathText::Inline(_)));
        assert_eq!(p.as_str(), "/café?q=ü");
        assert_eq!(PathText::from(String::from("/a")).as_str(), "/a");
    }
}
