//! Tokens of a blanked source and what one module declares, imports and names.

use std::collections::{BTreeMap, BTreeSet};

/// One token: an identifier, `::`, or a single punctuation character, with its line.
pub struct Tok {
    pub text: String,
    pub line: usize,
}

/// What one file declares and refers to.
pub struct Module {
    pub file: String,
    pub path: Vec<String>,
    /// `mod x;` declarations.
    pub children: BTreeSet<String>,
    /// Names of items defined here (structs, fns, consts, ...).
    pub defines: BTreeSet<String>,
    /// Imported name → path as written.
    pub imports: BTreeMap<String, Vec<String>>,
    /// `use path::*` paths as written.
    pub globs: Vec<Vec<String>>,
    /// Every path written in a `use` or starting with `crate`, `super` or `self`.
    pub refs: Vec<Vec<String>>,
    pub tokens: Vec<Tok>,
}

const ITEMS: &[&str] = &[
    "struct", "enum", "fn", "trait", "type", "const", "static", "union", "mod",
];

impl Module {
    pub fn parse(file: &str, key: &str, clean: &str) -> Self {
        let tokens = tokenize(clean);
        let path = key
            .split("::")
            .filter(|s| !s.is_empty())
            .map(str::to_owned)
            .collect();
        let mut m = Module {
            file: file.to_owned(),
            path,
            children: BTreeSet::new(),
            defines: BTreeSet::new(),
            imports: BTreeMap::new(),
            globs: Vec::new(),
            refs: Vec::new(),
            tokens: Vec::new(),
        };
        let t: Vec<&str> = tokens.iter().map(|t| t.text.as_str()).collect();
        let mut i = 0;
        while i < t.len() {
            let next = t.get(i + 1).copied().unwrap_or("");
            if t[i] == "use" {
                let mut uses = Vec::new();
                i += 1;
                use_tree(&t, &mut i, &[], &mut uses);
                m.add_uses(uses);
                continue;
            }
            if ITEMS.contains(&t[i]) && is_ident(next) && !ITEMS.contains(&next) {
                m.defines.insert(next.to_owned());
                if t[i] == "mod" && t.get(i + 2) == Some(&";") {
                    m.children.insert(next.to_owned());
                }
            }
            let starts_path = matches!(t[i], "crate" | "super" | "self") && next == "::";
            if starts_path && (i == 0 || t[i - 1] != "::") {
                let mut p = vec![t[i].to_owned()];
                let mut k = i + 1;
                while t.get(k) == Some(&"::") && t.get(k + 1).is_some_and(|s| is_ident(s)) {
                    p.push(t[k + 1].to_owned());
                    k += 2;
                }
                m.refs.push(p);
                i = k;
                continue;
            }
            i += 1;
        }
        m.tokens = tokens;
        m
    }

    fn add_uses(&mut self, uses: Vec<(Vec<String>, Option<String>)>) {
        for (path, name) in uses {
            match name {
                Some(name) => {
                    self.imports.insert(name, path.clone());
                }
                None => self.globs.push(path.clone()),
            }
            self.refs.push(path);
        }
    }
}

/// Reads one use tree at `i` (after `use`) through its `;` or the `,`/`}` that ends it; pushes
/// `(path, imported name)` pairs, `None` for a glob.
fn use_tree(
    t: &[&str],
    i: &mut usize,
    prefix: &[String],
    out: &mut Vec<(Vec<String>, Option<String>)>,
) {
    let mut path = prefix.to_vec();
    if t.get(*i) == Some(&"::") {
        *i += 1;
    }
    while let Some(&tok) = t.get(*i) {
        match tok {
            "{" => {
                *i += 1;
                while let Some(&tok) = t.get(*i) {
                    match tok {
                        "}" => {
                            *i += 1;
                            break;
                        }
                        "," => *i += 1,
                        _ => use_tree(t, i, &path, out),
                    }
                }
                break;
            }
            "*" => {
                *i += 1;
                out.push((path, None));
                return;
            }
            tok if is_ident(tok) => {
                path.push(tok.to_owned());
                *i += 1;
                if t.get(*i) == Some(&"::") {
                    *i += 1;
                    continue;
                }
                let mut name = tok.to_owned();
                if t.get(*i) == Some(&"as") {
                    name = t.get(*i + 1).copied().unwrap_or("_").to_owned();
                    *i += 2;
                }
                if path.last().is_some_and(|s| s == "self") {
                    path.pop();
                    if name == "self" {
                        name = path.last().cloned().unwrap_or_default();
                    }
                }
                out.push((path, Some(name)));
                return;
            }
            _ => return,
        }
    }
    if t.get(*i) == Some(&";") && prefix.is_empty() {
        *i += 1;
    }
}

/// `(name, first line, lines)` of every function with a body.
pub fn functions(toks: &[Tok]) -> Vec<(String, usize, usize)> {
    let mut out = Vec::new();
    for (i, tok) in toks.iter().enumerate() {
        let Some(name) = toks.get(i + 1) else {
            continue;
        };
        if tok.text != "fn" || !is_ident(&name.text) {
            continue;
        }
        let mut k = i + 2;
        let mut parens = 0i32;
        while let Some(t) = toks.get(k) {
            match t.text.as_str() {
                "(" | "<" | "[" => parens += 1,
                ")" | ">" | "]" => parens -= 1,
                "{" | ";" if parens <= 0 => break,
                _ => {}
            }
            k += 1;
        }
        if toks.get(k).is_none_or(|t| t.text != "{") {
            continue;
        }
        let mut depth = 0;
        for t in &toks[k..] {
            match t.text.as_str() {
                "{" => depth += 1,
                "}" => {
                    depth -= 1;
                    if depth == 0 {
                        out.push((name.text.clone(), tok.line, t.line - tok.line + 1));
                        break;
                    }
                }
                _ => {}
            }
        }
    }
    out
}

fn is_ident(s: &str) -> bool {
    s.chars()
        .next()
        .is_some_and(|c| c.is_alphabetic() || c == '_')
}

fn tokenize(src: &str) -> Vec<Tok> {
    let chars: Vec<char> = src.chars().collect();
    let mut out = Vec::new();
    let (mut i, mut line) = (0, 1);
    while i < chars.len() {
        let c = chars[i];
        if c == '\n' {
            line += 1;
            i += 1;
        } else if c.is_whitespace() {
            i += 1;
        } else if c.is_alphanumeric() || c == '_' {
            let start = i;
            while i < chars.len() && (chars[i].is_alphanumeric() || chars[i] == '_') {
                i += 1;
            }
            out.push(Tok {
                text: chars[start..i].iter().collect(),
                line,
            });
        } else if c == ':' && chars.get(i + 1) == Some(&':') {
            out.push(Tok {
                text: "::".to_owned(),
                line,
            });
            i += 2;
        } else if c == '-' && chars.get(i + 1) == Some(&'>') {
            out.push(Tok {
                text: "->".to_owned(),
                line,
            });
            i += 2;
        } else if c == '=' && chars.get(i + 1) == Some(&'>') {
            out.push(Tok {
                text: "=>".to_owned(),
                line,
            });
            i += 2;
        } else {
            out.push(Tok {
                text: c.to_string(),
                line,
            });
            i += 1;
        }
    }
    out
}
