//! Blanks out what can mention a path without importing it: comments, string and character
//! literals, and `#[cfg(test)]` items. Every other byte, and every newline, stays where it was,
//! so line numbers still match the file.

/// `src` with comments, literals and test-only items replaced by spaces (newlines kept).
pub fn clean(src: &str) -> String {
    let blanked = blank_literals(src);
    blank_test_items(&blanked)
}

fn blank(out: &mut Vec<char>, chars: &[char]) {
    out.extend(chars.iter().map(|&c| if c == '\n' { '\n' } else { ' ' }));
}

fn blank_literals(src: &str) -> String {
    let s: Vec<char> = src.chars().collect();
    let mut out = Vec::with_capacity(s.len());
    let mut i = 0;
    while i < s.len() {
        let end = literal_end(&s, i);
        if end > i {
            blank(&mut out, &s[i..end]);
            i = end;
        } else {
            out.push(s[i]);
            i += 1;
        }
    }
    out.into_iter().collect()
}

/// The end of a comment or literal starting at `i`, or `i` when none starts there.
fn literal_end(s: &[char], i: usize) -> usize {
    let at = |k: usize| s.get(k).copied().unwrap_or('\0');
    let prev_ident = i > 0 && (s[i - 1].is_alphanumeric() || s[i - 1] == '_');
    match (at(i), at(i + 1)) {
        ('/', '/') => (i..s.len()).find(|&k| s[k] == '\n').unwrap_or(s.len()),
        ('/', '*') => block_comment_end(s, i),
        ('"', _) => quoted_end(s, i + 1, '"'),
        ('b', '"') if !prev_ident => quoted_end(s, i + 2, '"'),
        ('r', '"' | '#') if !prev_ident => raw_end(s, i + 1).unwrap_or(i),
        ('b', 'r') if !prev_ident && matches!(at(i + 2), '"' | '#') => {
            raw_end(s, i + 2).unwrap_or(i)
        }
        ('\'', '\\') => quoted_end(s, i + 1, '\''),
        ('\'', _) if at(i + 2) == '\'' => i + 3,
        ('b', '\'') if !prev_ident => quoted_end(s, i + 2, '\''),
        _ => i,
    }
}

fn block_comment_end(s: &[char], start: usize) -> usize {
    let (mut depth, mut k) = (0usize, start);
    while k + 1 < s.len() {
        if s[k] == '/' && s[k + 1] == '*' {
            depth += 1;
            k += 2;
        } else if s[k] == '*' && s[k + 1] == '/' {
            depth -= 1;
            k += 2;
            if depth == 0 {
                return k;
            }
        } else {
            k += 1;
        }
    }
    s.len()
}

/// The end (after the closing quote) of a literal whose body starts at `k`.
fn quoted_end(s: &[char], mut k: usize, quote: char) -> usize {
    while k < s.len() {
        match s[k] {
            '\\' => k += 2,
            c if c == quote => return k + 1,
            _ => k += 1,
        }
    }
    s.len()
}

/// The end of a raw string whose hashes (or quote) start at `k`.
fn raw_end(s: &[char], mut k: usize) -> Option<usize> {
    let mut hashes = 0;
    while s.get(k) == Some(&'#') {
        hashes += 1;
        k += 1;
    }
    if s.get(k) != Some(&'"') {
        return None;
    }
    k += 1;
    while k < s.len() {
        if s[k] == '"' && (1..=hashes).all(|h| s.get(k + h) == Some(&'#')) {
            return Some(k + 1 + hashes);
        }
        k += 1;
    }
    Some(s.len())
}

fn blank_test_items(src: &str) -> String {
    let mark: Vec<char> = "#[cfg(test)]".chars().collect();
    let s: Vec<char> = src.chars().collect();
    let mut out: Vec<char> = Vec::with_capacity(s.len());
    let mut i = 0;
    while i < s.len() {
        if s[i..].starts_with(&mark) {
            let end = item_end(&s, i + mark.len());
            blank(&mut out, &s[i..end]);
            i = end;
        } else {
            out.push(s[i]);
            i += 1;
        }
    }
    out.into_iter().collect()
}

/// The end of the item after an attribute: through its `;` or its matching `}`.
fn item_end(s: &[char], from: usize) -> usize {
    let mut depth = 0usize;
    let mut k = from;
    // Attributes of the same item (`#[path = ...]`) are skipped by bracket depth.
    let mut brackets = 0usize;
    while k < s.len() {
        match s[k] {
            '[' => brackets += 1,
            ']' => brackets = brackets.saturating_sub(1),
            ';' if depth == 0 && brackets == 0 => return k + 1,
            '{' if brackets == 0 => depth += 1,
            '}' if brackets == 0 => {
                depth -= 1;
                if depth == 0 {
                    return k + 1;
                }
            }
            _ => {}
        }
        k += 1;
    }
    s.len()
}
