//! Finding separators in short paths and queries, eight bytes at a time.
//!
//! A cache hit splits the path at `?` and the query at every `&`. For strings of a few dozen
//! bytes, `memchr`'s setup and the byte loop it falls back to for short tails cost more than the
//! lookup itself on a hit (the loop's exit branch mispredicts); reading whole words and testing
//! all eight bytes at once does not.

/// The index of the first `needle` byte in `haystack`.
pub(crate) fn find_byte(haystack: &[u8], needle: u8) -> Option<usize> {
    const LOW7: u64 = 0x7f7f_7f7f_7f7f_7f7f;
    let pattern = u64::from_ne_bytes([needle; 8]);
    let mut chunks = haystack.chunks_exact(8);
    let mut base = 0;
    for chunk in &mut chunks {
        let Ok(bytes) = <[u8; 8]>::try_from(chunk) else {
            break;
        };
        let x = u64::from_le_bytes(bytes) ^ pattern;
        // The high bit of each byte of `x` that is zero, exactly (no carry crosses bytes).
        let zero = !(((x & LOW7) + LOW7) | x | LOW7);
        if zero != 0 {
            return Some(base + (zero.trailing_zeros() / 8) as usize);
        }
        base += 8;
    }
    chunks
        .remainder()
        .iter()
        .position(|&b| b == needle)
        .map(|i| base + i)
}

/// The non-empty `&`-separated pairs of a query, in order (what
/// `query.split('&').filter(|p| !p.is_empty())` yields).
pub(super) fn pairs(query: &str) -> Pairs<'_> {
    Pairs { rest: Some(query) }
}

/// Iterator of [`pairs`].
pub(super) struct Pairs<'q> {
    rest: Option<&'q str>,
}

impl<'q> Iterator for Pairs<'q> {
    type Item = &'q str;

    fn next(&mut self) -> Option<&'q str> {
        loop {
            let rest = self.rest?;
            let pair = match find_byte(rest.as_bytes(), b'&') {
                // `&` is ASCII, so both sides are on character boundaries.
                Some(i) => {
                    self.rest = rest.get(i + 1..);
                    rest.get(..i).unwrap_or_default()
                }
                None => {
                    self.rest = None;
                    rest
                }
            };
            if !pair.is_empty() {
                return Some(pair);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn samples() -> Vec<String> {
        let mut out = vec![String::new()];
        let parts = [
            "&", "'", "a", "é", "?", "&&", "\u{7f}", "\u{80}", "x=1", "%26",
        ];
        for len in 1..=24 {
            for start in 0..parts.len() {
                let s: String = (0..len)
                    .map(|i| parts[(start + i * (i + 3)) % parts.len()])
                    .collect();
                out.push(s);
            }
        }
        out
    }

    #[test]
    fn find_byte_agrees_with_position() {
        for s in samples() {
            for needle in [b'&', b'?', b'\'', 0x80, 0xff, b'a'] {
                assert_eq!(
                    find_byte(s.as_bytes(), needle),
                    s.bytes().position(|b| b == needle),
                    "{s:?} {needle}"
                );
            }
        }
    }

    #[test]
    fn pairs_agree_with_split() {
        for s in samples() {
            let expected: Vec<&str> = s.split('&').filter(|p| !p.is_empty()).collect();
            assert_eq!(pairs(&s).collect::<Vec<_>>(), expected, "{s:?}");
        }
    }
}
