//! Typed readers over the document tree that report problems instead of failing.
//!
//! Each reader takes a node and its field path, returns `Some(value)` when the node is usable and
//! otherwise records a problem (expected type, the value found, what is allowed) and returns
//! `None`, so the caller keeps the default and goes on to the next field. Unknown map keys are
//! reported with the allowed keys and a "did you mean" hint.

use std::time::Duration;

use super::error::{Problems, join};
use super::suggest;
use super::tree::Node;
use super::units;

/// The entries of a map whose keys were checked against an allowed set.
pub(crate) struct Fields<'a> {
    path: String,
    entries: &'a [(String, Node)],
}

impl<'a> Fields<'a> {
    /// The value under `key` and its path, if present.
    pub(crate) fn get(&self, key: &str) -> Option<(&'a Node, String)> {
        self.entries
            .iter()
            .find(|(k, _)| k == key)
            .map(|(_, v)| (v, join(&self.path, key)))
    }

    /// Whether any of `keys` is present.
    pub(crate) fn has_any(&self, keys: &[&str]) -> bool {
        self.entries.iter().any(|(k, _)| keys.contains(&k.as_str()))
    }
}

/// Opens `node` as a map whose keys must be in `allowed`; unknown and duplicate keys are
/// reported (the known ones stay readable).
pub(crate) fn fields<'a>(
    node: &'a Node,
    path: &str,
    allowed: &[&str],
    p: &mut Problems,
) -> Option<Fields<'a>> {
    let entries = entries(node, path, "a map", p)?;
    for (key, _) in entries {
        if !allowed.contains(&key.as_str()) {
            p.push(
                &join(path, key),
                None,
                format!(
                    "unknown field `{key}`{}; allowed fields here: {}",
                    suggest::hint(key, allowed.iter().copied()),
                    suggest::list(allowed.iter().copied())
                ),
            );
        }
    }
    let _ = duplicates(entries, path, p);
    Some(Fields {
        path: path.to_owned(),
        entries,
    })
}

/// Opens `node` as a map with free-form keys (cluster names, service names, headers),
/// reporting duplicate keys.
pub(crate) fn entries<'a>(
    node: &'a Node,
    path: &str,
    what: &str,
    p: &mut Problems,
) -> Option<&'a [(String, Node)]> {
    match node {
        Node::Map(entries) => Some(entries),
        other => {
            wrong_type(other, path, what, p);
            None
        }
    }
}

/// Reports keys given twice; returns whether there were any.
pub(crate) fn duplicates(entries: &[(String, Node)], path: &str, p: &mut Problems) -> bool {
    let mut found = false;
    for (i, (key, _)) in entries.iter().enumerate() {
        if entries[..i].iter().any(|(k, _)| k == key) {
            p.push(
                &join(path, key),
                None,
                "this key is given more than once; keep one",
            );
            found = true;
        }
    }
    found
}

/// Records "expected `what`, found <kind>" with the value.
pub(crate) fn wrong_type(node: &Node, path: &str, what: &str, p: &mut Problems) {
    p.push(
        path,
        Some(node.render()),
        format!("expected {what}, found {}", node.kind()),
    );
}

/// A string.
pub(crate) fn string(node: &Node, path: &str, p: &mut Problems) -> Option<String> {
    match node {
        Node::Str(s) => Some(s.clone()),
        other => {
            wrong_type(other, path, "a string", p);
            None
        }
    }
}

/// A secret string: on a type error the value is not echoed.
pub(crate) fn secret(node: &Node, path: &str, p: &mut Problems) -> Option<String> {
    match node {
        Node::Str(s) => Some(s.clone()),
        other => {
            p.push(
                path,
                None,
                format!("expected a string, found {}", other.kind()),
            );
            None
        }
    }
}

/// A scalar read as text (metadata values): strings, numbers and booleans.
pub(crate) fn scalar_text(node: &Node, path: &str, p: &mut Problems) -> Option<String> {
    match node {
        Node::Str(s) => Some(s.clone()),
        Node::Int(_) | Node::Float(_) | Node::Bool(_) => Some(node.render()),
        other => {
            wrong_type(other, path, "a string", p);
            None
        }
    }
}

/// A boolean.
pub(crate) fn boolean(node: &Node, path: &str, p: &mut Problems) -> Option<bool> {
    match node {
        Node::Bool(b) => Some(*b),
        other => {
            wrong_type(other, path, "true or false", p);
            None
        }
    }
}

/// An integer in `min..=max`.
pub(crate) fn integer(
    node: &Node,
    path: &str,
    min: i128,
    max: i128,
    p: &mut Problems,
) -> Option<i128> {
    match node {
        Node::Int(i) if (min..=max).contains(i) => Some(*i),
        Node::Int(_) => {
            p.push(
                path,
                Some(node.render()),
                format!("out of range; allowed: {min} to {max}"),
            );
            None
        }
        other => {
            wrong_type(other, path, &format!("an integer from {min} to {max}"), p);
            None
        }
    }
}

/// A `u32` (range checks beyond the type are semantic and done by validation).
pub(crate) fn u32_value(node: &Node, path: &str, p: &mut Problems) -> Option<u32> {
    integer(node, path, 0, i128::from(u32::MAX), p).and_then(|i| u32::try_from(i).ok())
}

/// A finite number (integer or decimal).
pub(crate) fn number(node: &Node, path: &str, p: &mut Problems) -> Option<f64> {
    match node {
        Node::Int(i) => Some(*i as f64),
        Node::Float(x) if x.is_finite() => Some(*x),
        other => {
            wrong_type(other, path, "a finite number", p);
            None
        }
    }
}

/// A duration string such as `250ms`.
pub(crate) fn duration(node: &Node, path: &str, p: &mut Problems) -> Option<Duration> {
    match node {
        Node::Str(s) => match units::parse_duration(s) {
            Ok(d) => Some(d),
            Err(e) => {
                p.push(path, Some(node.render()), e.to_string());
                None
            }
        },
        Node::Int(_) | Node::Float(_) => {
            p.push(
                path,
                Some(node.render()),
                "a bare number is ambiguous: add a unit, e.g. 250ms, 1s, 5m",
            );
            None
        }
        other => {
            wrong_type(other, path, "a duration such as 250ms, 1s, 5m", p);
            None
        }
    }
}

/// A byte size: an integer or a string such as `32MiB`.
pub(crate) fn size(node: &Node, path: &str, p: &mut Problems) -> Option<u64> {
    match node {
        Node::Int(_) => {
            integer(node, path, 0, i128::from(u64::MAX), p).and_then(|i| u64::try_from(i).ok())
        }
        Node::Str(s) => match units::parse_size(s) {
            Ok(n) => Some(n),
            Err(e) => {
                p.push(path, Some(node.render()), e.to_string());
                None
            }
        },
        other => {
            wrong_type(other, path, "a byte count or a size such as 32MiB", p);
            None
        }
    }
}

/// A list of strings; wrong items are reported one by one.
pub(crate) fn string_list(node: &Node, path: &str, p: &mut Problems) -> Option<Vec<String>> {
    let Node::Seq(items) = node else {
        wrong_type(node, path, "a list of strings", p);
        return None;
    };
    let mut out = Vec::with_capacity(items.len());
    for (i, item) in items.iter().enumerate() {
        if let Some(s) = string(item, &super::error::index(path, i), p) {
            out.push(s);
        }
    }
    Some(out)
}

/// One of a fixed set of string values, with a "did you mean" hint.
pub(crate) fn choice<T: Copy>(
    node: &Node,
    path: &str,
    options: &[(&str, T)],
    p: &mut Problems,
) -> Option<T> {
    let names = || options.iter().map(|(name, _)| *name);
    let Node::Str(s) = node else {
        wrong_type(node, path, &format!("one of {}", suggest::list(names())), p);
        return None;
    };
    if let Some((_, value)) = options.iter().find(|(name, _)| name == s) {
        return Some(*value);
    }
    p.push(
        path,
        Some(node.render()),
        format!(
            "unknown value{}; allowed: {}",
            suggest::hint(s, names()),
            suggest::list(names())
        ),
    );
    None
}

/// Reads `key` of `f` with `reader` into `target` when present and valid.
pub(crate) fn set<T>(
    f: &Fields<'_>,
    key: &str,
    p: &mut Problems,
    reader: impl FnOnce(&Node, &str, &mut Problems) -> Option<T>,
    target: &mut T,
) {
    if let Some((node, path)) = f.get(key)
        && let Some(value) = reader(node, &path, p)
    {
        *target = value;
    }
}

/// A section that can be switched off: `false` → `None`, `true` → the current setting or the
/// defaults, a map (keys in `allowed`) → merged onto the current setting by `merge`.
pub(crate) fn switchable<T: Clone + Default>(
    target: &mut Option<T>,
    node: &Node,
    path: &str,
    allowed: &[&str],
    p: &mut Problems,
    merge: impl FnOnce(&Fields<'_>, &mut T, &mut Problems),
) {
    match node {
        Node::Bool(false) => *target = None,
        Node::Bool(true) => *target = Some(target.clone().unwrap_or_default()),
        Node::Map(_) => {
            let Some(f) = fields(node, path, allowed, p) else {
                return;
            };
            let mut section = target.clone().unwrap_or_default();
            merge(&f, &mut section, p);
            *target = Some(section);
        }
        other => wrong_type(other, path, "a map, true or false", p),
    }
}
