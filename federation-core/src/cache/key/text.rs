//! The key types: a stored [`CacheKey`] (one allocation) and the stack-built [`KeyBuf`] a lookup
//! uses, which must hash and compare equal to the stored key built from the same request, or a
//! hit would be missed (and the response fetched again) on every lookup.

use std::fmt;
use std::hash::{Hash, Hasher};

use moka::Equivalent;

/// The identity of a cached response within one service's cache.
///
/// Built by `ResultCache::key`. Cheap to hash and compare; the
/// text is one allocation.
#[derive(Clone, PartialEq, Eq)]
pub struct CacheKey {
    /// `path SP method SP digest SP sorted-query`; `path_len` marks where the path ends, so no
    /// byte of the path can be confused with a separator.
    pub(super) text: Box<str>,
    pub(super) path_len: usize,
}

impl Hash for CacheKey {
    fn hash<H: Hasher>(&self, state: &mut H) {
        hash_key(self.text.as_bytes(), self.path_len, state);
    }
}

/// The hash of a key, shared by [`CacheKey`] and [`KeyBuf`] so a lookup with a stack-built key
/// finds the stored one (the same calls on any hasher). Only the text is hashed: keys that differ
/// only in where the path ends are rare and still unequal (`path_len` is compared), and one
/// `write` keeps the hash of every lookup as cheap as hashing the bare text.
fn hash_key<H: Hasher>(text: &[u8], _path_len: usize, state: &mut H) {
    state.write(text);
}

/// Bytes of key text a lookup builds on the stack; longer keys are looked up the slow way.
pub(super) const INLINE_KEY: usize = 192;

/// A key built on the stack for one lookup: equivalent to (same hash as, equal to) the
/// [`CacheKey`] built from the same request, without allocating one.
pub(crate) struct KeyBuf {
    text: [u8; INLINE_KEY],
    len: usize,
    pub(super) path_len: usize,
    /// Set when the text did not fit; the key is then unusable.
    pub(super) overflow: bool,
}

impl KeyBuf {
    /// An empty buffer.
    pub(crate) fn new() -> Self {
        Self {
            text: [0; INLINE_KEY],
            len: 0,
            path_len: 0,
            overflow: false,
        }
    }

    fn text(&self) -> &[u8] {
        self.text.get(..self.len).unwrap_or_default()
    }
}

impl Hash for KeyBuf {
    fn hash<H: Hasher>(&self, state: &mut H) {
        hash_key(self.text(), self.path_len, state);
    }
}

impl Equivalent<CacheKey> for KeyBuf {
    fn equivalent(&self, key: &CacheKey) -> bool {
        self.path_len == key.path_len && self.text() == key.text.as_bytes()
    }
}

/// Where a key's text is written: a `String` for a stored key, a [`KeyBuf`] for a lookup.
/// Only whole `&str`s are written, so the bytes are always UTF-8.
pub(super) trait KeyText {
    fn push_str(&mut self, s: &str);

    /// Appends one ASCII byte (a separator or a hex digit).
    fn push_ascii(&mut self, b: u8);
}

impl KeyText for String {
    fn push_str(&mut self, s: &str) {
        String::push_str(self, s);
    }

    fn push_ascii(&mut self, b: u8) {
        self.push(char::from(b));
    }
}

impl KeyText for KeyBuf {
    fn push_str(&mut self, s: &str) {
        let end = self.len + s.len();
        match self.text.get_mut(self.len..end) {
            Some(dst) => {
                dst.copy_from_slice(s.as_bytes());
                self.len = end;
            }
            None => self.overflow = true,
        }
    }

    fn push_ascii(&mut self, b: u8) {
        debug_assert!(b.is_ascii());
        match self.text.get_mut(self.len) {
            Some(slot) => {
                *slot = b;
                self.len += 1;
            }
            None => self.overflow = true,
        }
    }
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
