//! Loading a [`Config`] from YAML, TOML or JSON text or files.
//!
//! Loading happens in three passes so that one run reports every mistake: the text is parsed
//! into a format-neutral, order-preserving tree (syntax errors stop here, with line and column);
//! the tree is walked by hand into the typed model, recording wrong types and unknown keys while
//! keeping defaults for unreadable fields; then the semantic checks of [`Config::validate`] run
//! on the result, skipping fields already reported.

use std::fmt;
use std::path::Path;
use std::str::FromStr;

use super::clusters::read_clusters;
use super::error::{ConfigError, ConfigProblem, Problems};
use super::model::{Config, Policy};
use super::policy::{self, POLICY_KEYS};
use super::read;
use super::services::read_services;
use super::sync_validate::check_sync;
use super::tree::Node;
use super::validate::validate;

/// The text format of a configuration.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum ConfigFormat {
    /// YAML (`.yaml`, `.yml`).
    Yaml,
    /// TOML (`.toml`).
    Toml,
    /// JSON (`.json`).
    Json,
}

impl ConfigFormat {
    /// The format named by a file's extension: `.yaml`/`.yml`, `.toml` or `.json`
    /// (case-insensitive).
    ///
    /// # Errors
    /// A missing or unknown extension, with the allowed ones.
    pub fn from_path(path: impl AsRef<Path>) -> Result<Self, ConfigError> {
        let path = path.as_ref();
        let extension = path
            .extension()
            .and_then(|e| e.to_str())
            .map(str::to_ascii_lowercase);
        match extension.as_deref() {
            Some("yaml" | "yml") => Ok(Self::Yaml),
            Some("toml") => Ok(Self::Toml),
            Some("json") => Ok(Self::Json),
            _ => Err(ConfigError::single(
                "",
                Some(path.display().to_string()),
                "cannot tell the configuration format from the file name; \
                 use the extension .yaml, .yml, .toml or .json",
            )),
        }
    }

    /// The lower-case name: `yaml`, `toml` or `json`.
    pub fn name(self) -> &'static str {
        match self {
            Self::Yaml => "yaml",
            Self::Toml => "toml",
            Self::Json => "json",
        }
    }
}

impl fmt::Display for ConfigFormat {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

impl FromStr for ConfigFormat {
    type Err = ConfigError;

    /// Reads `yaml`, `yml`, `toml` or `json` (case-insensitive).
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s.to_ascii_lowercase().as_str() {
            "yaml" | "yml" => Ok(Self::Yaml),
            "toml" => Ok(Self::Toml),
            "json" => Ok(Self::Json),
            _ => Err(ConfigError::single(
                "",
                Some(s.to_owned()),
                "unknown configuration format; allowed: yaml, toml, json",
            )),
        }
    }
}

impl Config {
    /// Reads, parses and validates the file at `path`; the format comes from the extension.
    ///
    /// # Errors
    /// An unreadable file, an unknown extension, or every problem in the content.
    pub fn from_file(path: impl AsRef<Path>) -> Result<Config, ConfigError> {
        let path = path.as_ref();
        let name = path.display().to_string();
        let format = ConfigFormat::from_path(path)?;
        let text = std::fs::read_to_string(path).map_err(|e| {
            ConfigError::single("", Some(name.clone()), format!("cannot read the file: {e}"))
                .with_source_name(name.clone())
        })?;
        Config::parse(&text, format).map_err(|e| e.with_source_name(name))
    }

    /// Parses and validates configuration text in `format`.
    ///
    /// # Errors
    /// Every problem found: syntax (with line and column), unknown fields, wrong types and
    /// values, and the semantic checks of [`Config::validate`].
    pub fn parse(text: &str, format: ConfigFormat) -> Result<Config, ConfigError> {
        let tree = parse_tree(text, format).map_err(|problem| ConfigError::new(vec![problem]))?;
        if matches!(tree, Node::Null) {
            return Err(ConfigError::single(
                "",
                None,
                "the document is empty; expected a map with `clusters`, `services` and `defaults`",
            ));
        }
        let mut p = Problems::default();
        let Some(root) = read::fields(
            &tree,
            "",
            &["clusters", "services", "defaults", "sync", "discovery"],
            &mut p,
        ) else {
            return Err(ConfigError::new(p.into_vec()));
        };
        let mut defaults = Policy::default();
        if let Some((node, path)) = root.get("defaults")
            && let Some(f) = read::fields(node, &path, POLICY_KEYS, &mut p)
        {
            policy::apply(&mut defaults, &f, &mut p);
        }
        let clusters = match root.get("clusters") {
            Some((node, path)) => read_clusters(node, &path, &mut p),
            None => Vec::new(),
        };
        let services = match root.get("services") {
            Some((node, path)) => read_services(node, &path, &defaults, &clusters, &mut p),
            None => Vec::new(),
        };
        let sync = root
            .get("sync")
            .and_then(|(node, path)| super::sync_read::read_sync(node, &path, &mut p));
        let discovery = root
            .get("discovery")
            .map(|(node, path)| super::discovery::read_discovery(node, &path, &mut p))
            .unwrap_or_default();
        let config = Config {
            clusters,
            services,
            defaults,
            sync,
            discovery,
        };
        let mut semantic = Problems::default();
        validate(&config, &mut semantic);
        check_sync(&config, &mut semantic);
        p.absorb(semantic);
        let mut problems = p.into_vec();
        // Report in document order, whichever pass found the problem.
        problems.sort_by_cached_key(|problem| document_position(&tree, &problem.path));
        if problems.is_empty() {
            Ok(config)
        } else {
            Err(ConfigError::new(problems))
        }
    }

    /// Runs the semantic checks a loaded file gets (references between clusters and services,
    /// ranges, consistency) on a configuration built in code.
    ///
    /// # Errors
    /// Every problem found, with file-schema field paths.
    pub fn validate(&self) -> Result<(), ConfigError> {
        let mut p = Problems::default();
        validate(self, &mut p);
        check_sync(self, &mut p);
        p.into_result()
    }
}

/// The position of the field at `path` in the document: entry indices along the path. A field
/// absent from the document (reported by a semantic check) sorts after its present siblings.
fn document_position(tree: &Node, path: &str) -> Vec<usize> {
    let mut position = Vec::new();
    let mut node = tree;
    let mut rest = path;
    while !rest.is_empty() {
        let next = match node {
            Node::Map(entries) => entries
                .iter()
                .enumerate()
                .filter(|(_, (key, _))| {
                    rest.strip_prefix(key.as_str())
                        .is_some_and(|r| r.is_empty() || r.starts_with(['.', '[']))
                })
                .max_by_key(|(_, (key, _))| key.len())
                .map(|(i, (key, child))| (i, child, &rest[key.len()..])),
            Node::Seq(items) => rest
                .strip_prefix('[')
                .and_then(|r| r.split_once(']'))
                .and_then(|(i, r)| Some((i.parse::<usize>().ok()?, r)))
                .and_then(|(i, r)| items.get(i).map(|child| (i, child, r))),
            _ => None,
        };
        let Some((i, child, after)) = next else {
            position.push(usize::MAX);
            break;
        };
        position.push(i);
        node = child;
        rest = after.strip_prefix('.').unwrap_or(after);
    }
    position
}

/// Parses text into the document tree; a syntax error becomes one problem with its position.
fn parse_tree(text: &str, format: ConfigFormat) -> Result<Node, ConfigProblem> {
    match format {
        ConfigFormat::Yaml => serde_norway::from_str::<Node>(text).or_else(|e| {
            // An empty or comment-only document is not a syntax error.
            if text
                .lines()
                .all(|l| l.trim().is_empty() || l.trim_start().starts_with('#'))
            {
                return Ok(Node::Null);
            }
            let location = e.location();
            Err(syntax(
                "YAML",
                strip_position(&e.to_string()),
                location.as_ref().map(|l| l.line()),
                location.as_ref().map(|l| l.column()),
            ))
        }),
        ConfigFormat::Toml => toml::from_str::<Node>(text).map_err(|e| {
            let (line, column) = e.span().map(|span| line_column(text, span.start)).unzip();
            syntax("TOML", e.message().trim().to_owned(), line, column)
        }),
        ConfigFormat::Json => serde_json::from_str::<Node>(text).map_err(|e| {
            let message = strip_position(&e.to_string());
            syntax("JSON", message, Some(e.line()), Some(e.column()))
        }),
    }
}

fn syntax(
    format: &str,
    message: String,
    line: Option<usize>,
    column: Option<usize>,
) -> ConfigProblem {
    ConfigProblem::new("", None, format!("{format} syntax error: {message}")).at(line, column)
}

/// Removes a trailing " at line X column Y" that the position fields already carry.
fn strip_position(message: &str) -> String {
    match message.rfind(" at line ") {
        Some(i) => message[..i].to_owned(),
        None => message.to_owned(),
    }
}

/// 1-based line and column of byte offset `at` in `text`.
fn line_column(text: &str, at: usize) -> (usize, usize) {
    let before = text.get(..at).unwrap_or(text);
    let line = before.matches('\n').count() + 1;
    let column = before.rsplit('\n').next().map_or(0, |l| l.chars().count()) + 1;
    (line, column)
}
