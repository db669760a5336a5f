//! The source model behind `module_graph.rs`: files → modules, imports resolved to the module
//! that defines each name, cycles, function lengths. No parser crate: Rust's path syntax is
//! small once comments and literals are blanked out (`clean.rs`).

mod clean;
mod tokens;

use std::collections::{BTreeMap, BTreeSet};
use std::path::Path;

use tokens::{Module, Tok};

/// Module → the modules it imports (keys are `a::b`; the crate root is left out).
pub type Edges = BTreeMap<String, BTreeSet<String>>;

/// Every module of a crate, parsed.
pub struct Crate {
    modules: BTreeMap<String, Module>,
}

impl Crate {
    /// Reads every non-test `.rs` file under `dir` (the crate's `src/`).
    pub fn read(dir: &str) -> std::io::Result<Self> {
        let mut files = Vec::new();
        collect(Path::new(dir), Path::new(dir), &mut files)?;
        let refs: Vec<(&str, &str)> = files
            .iter()
            .map(|(p, s)| (p.as_str(), s.as_str()))
            .collect();
        Ok(Self::from_files(&refs))
    }

    /// A crate from `(path relative to src/, source)` pairs.
    pub fn from_files(files: &[(&str, &str)]) -> Self {
        let modules = files
            .iter()
            .filter(|(path, _)| !is_test_file(path))
            .map(|(path, src)| {
                let key = module_key(path);
                (key.clone(), Module::parse(path, &key, &clean::clean(src)))
            })
            .collect();
        Self { modules }
    }

    /// Module-level import edges (file granularity).
    pub fn edges(&self) -> Edges {
        let mut edges = Edges::new();
        for (key, module) in &self.modules {
            let targets = edges.entry(key.clone()).or_default();
            for path in &module.refs {
                let Some(abs) = self.absolute(module, path) else {
                    continue;
                };
                if let Some(target) = self.resolve(&abs, 0)
                    && target != *key
                    && !target.is_empty()
                {
                    targets.insert(target);
                }
            }
        }
        edges
    }

    /// Edges between top-level modules (`client::x -> cache::y` is `client -> cache`).
    pub fn top_level_edges(&self) -> Edges {
        let top = |k: &str| k.split("::").next().unwrap_or(k).to_owned();
        let mut out = Edges::new();
        for (from, targets) in self.edges() {
            let from = top(&from);
            let set = out.entry(from.clone()).or_default();
            set.extend(targets.iter().map(|t| top(t)).filter(|t| *t != from));
        }
        out
    }

    /// `path` as written in `module`, made absolute; `None` for other crates and local names.
    fn absolute(&self, module: &Module, path: &[String]) -> Option<Vec<String>> {
        let first = path.first()?;
        let mut base: Vec<String> = module.path.clone();
        let mut rest = path;
        match first.as_str() {
            "crate" => return Some(path[1..].to_vec()),
            "super" | "self" => {
                while let Some(seg) = rest.first() {
                    match seg.as_str() {
                        "super" => {
                            base.pop();
                        }
                        "self" => {}
                        _ => break,
                    }
                    rest = &rest[1..];
                }
            }
            name if module.children.contains(name) => {}
            _ => return None,
        }
        base.extend(rest.iter().cloned());
        Some(base)
    }

    /// The module defining the item `path` names (following re-exports), else the deepest
    /// module on the path.
    fn resolve(&self, path: &[String], depth: usize) -> Option<String> {
        let (module, rest) = (0..=path.len()).rev().find_map(|k| {
            let key = path[..k].join("::");
            self.modules.get(&key).map(|m| (m, &path[k..]))
        })?;
        let key = module.path.join("::");
        match rest.first() {
            Some(name) if depth < 16 => Some(self.find(module, name, depth).unwrap_or(key)),
            _ => Some(key),
        }
    }

    /// Where `name`, as seen from `module`, is defined: the module itself, an import's target
    /// or a glob import's module.
    fn find(&self, module: &Module, name: &str, depth: usize) -> Option<String> {
        if module.defines.contains(name) {
            return Some(module.path.join("::"));
        }
        if let Some(target) = module.imports.get(name) {
            let abs = self.absolute(module, target)?;
            return self.resolve(&abs, depth + 1);
        }
        module.globs.iter().find_map(|glob| {
            let abs = self.absolute(module, glob)?;
            let key = abs.join("::");
            let inner = self.modules.get(&key)?;
            (depth < 16)
                .then(|| self.find(inner, name, depth + 1))
                .flatten()
        })
    }

    /// Every module's tokens, for the function-length check.
    fn files(&self) -> impl Iterator<Item = (&str, &[Tok])> {
        self.modules
            .values()
            .map(|m| (m.file.as_str(), m.tokens.as_slice()))
    }
}

/// Functions longer than `max` lines, as `file:line name (n lines)`.
pub fn long_functions(krate: &Crate, max: usize) -> Vec<String> {
    let mut out = Vec::new();
    for (file, toks) in krate.files() {
        for (name, line, lines) in tokens::functions(toks) {
            if lines > max {
                out.push(format!("{file}:{line} {name} ({lines} lines)"));
            }
        }
    }
    out
}

/// The strongly connected components of more than one module, each sorted, in sorted order.
pub fn cycles(edges: &Edges) -> Vec<Vec<String>> {
    let mut tarjan = Tarjan {
        edges,
        index: BTreeMap::new(),
        low: BTreeMap::new(),
        stack: Vec::new(),
        on: BTreeSet::new(),
        next: 0,
        out: Vec::new(),
    };
    for node in edges.keys() {
        if !tarjan.index.contains_key(node.as_str()) {
            tarjan.visit(node);
        }
    }
    let mut out = tarjan.out;
    out.sort();
    out
}

struct Tarjan<'a> {
    edges: &'a Edges,
    index: BTreeMap<&'a str, usize>,
    low: BTreeMap<&'a str, usize>,
    stack: Vec<&'a str>,
    on: BTreeSet<&'a str>,
    next: usize,
    out: Vec<Vec<String>>,
}

impl<'a> Tarjan<'a> {
    fn visit(&mut self, v: &'a str) {
        self.index.insert(v, self.next);
        self.low.insert(v, self.next);
        self.next += 1;
        self.stack.push(v);
        self.on.insert(v);
        for w in self.edges.get(v).into_iter().flatten() {
            let w = w.as_str();
            if !self.index.contains_key(w) {
                self.visit(w);
                let low = self.low[v].min(self.low[w]);
                self.low.insert(v, low);
            } else if self.on.contains(w) {
                let low = self.low[v].min(self.index[w]);
                self.low.insert(v, low);
            }
        }
        if self.low[v] == self.index[v] {
            let mut component = Vec::new();
            while let Some(w) = self.stack.pop() {
                self.on.remove(w);
                component.push(w.to_owned());
                if w == v {
                    break;
                }
            }
            if component.len() > 1 {
                component.sort();
                self.out.push(component);
            }
        }
    }
}

fn is_test_file(path: &str) -> bool {
    let name = path.rsplit('/').next().unwrap_or(path);
    name == "tests.rs" || name.ends_with("_tests.rs")
}

/// `a/b.rs` and `a/b/mod.rs` → `a::b`; `lib.rs` → the root (empty key).
fn module_key(path: &str) -> String {
    let stem = path.strip_suffix(".rs").unwrap_or(path);
    let mut parts: Vec<&str> = stem.split('/').collect();
    if matches!(parts.last(), Some(&"mod") | Some(&"lib")) {
        parts.pop();
    }
    parts.join("::")
}

fn collect(root: &Path, dir: &Path, out: &mut Vec<(String, String)>) -> std::io::Result<()> {
    for entry in std::fs::read_dir(dir)? {
        let path = entry?.path();
        if path.is_dir() {
            collect(root, &path, out)?;
        } else if path.extension().is_some_and(|e| e == "rs") {
            let rel = path
                .strip_prefix(root)
                .unwrap_or(&path)
                .to_string_lossy()
                .replace('\\', "/");
            out.push((rel, std::fs::read_to_string(&path)?));
        }
    }
    Ok(())
}
