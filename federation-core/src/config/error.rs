//! Configuration errors that list every problem at once.
//!
//! A user who fixes one mistake only to be told about the next one, file by file, gives up. So
//! loading and validation never stop at the first problem: each check pushes a [`ConfigProblem`]
//! (field path, offending value, what is allowed) and the caller gets them all in one
//! [`ConfigError`]. Values of secret fields are never recorded.

use std::fmt;

/// One thing wrong with a configuration.
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub struct ConfigProblem {
    pub(crate) path: String,
    pub(crate) value: Option<String>,
    pub(crate) message: String,
    pub(crate) line: Option<usize>,
    pub(crate) column: Option<usize>,
}

impl ConfigProblem {
    /// Dotted field path, e.g. `services.user.prefer` or `clusters.looma.consul.wait`;
    /// list items as `[2]`. Empty for problems with the whole document (syntax, unreadable file).
    pub fn path(&self) -> &str {
        &self.path
    }

    /// The offending value as written (rendered compactly). `None` when there is no single value
    /// or when the field is secret.
    pub fn value(&self) -> Option<&str> {
        self.value.as_deref()
    }

    /// What is wrong and what is allowed.
    pub fn message(&self) -> &str {
        &self.message
    }

    /// 1-based line of a syntax error, when the format reports one.
    pub fn line(&self) -> Option<usize> {
        self.line
    }

    /// 1-based column of a syntax error, when the format reports one.
    pub fn column(&self) -> Option<usize> {
        self.column
    }

    /// A problem at `path` with an optional offending value.
    pub fn new(path: impl Into<String>, value: Option<String>, message: impl Into<String>) -> Self {
        Self {
            path: path.into(),
            value,
            message: message.into(),
            line: None,
            column: None,
        }
    }

    /// The same problem with a source position attached.
    #[must_use]
    pub fn at(mut self, line: Option<usize>, column: Option<usize>) -> Self {
        self.line = line;
        self.column = column;
        self
    }
}

impl fmt::Display for ConfigProblem {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let path = if self.path.is_empty() {
            "<document>"
        } else {
            &self.path
        };
        f.write_str(path)?;
        if let Some(value) = &self.value {
            write!(f, " = {value}")?;
        }
        if let Some(line) = self.line {
            write!(f, " (line {line}")?;
            if let Some(column) = self.column {
                write!(f, ", column {column}")?;
            }
            f.write_str(")")?;
        }
        write!(f, ": {}", self.message)
    }
}

/// A configuration that cannot be used, with every problem found.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ConfigError {
    source_name: Option<String>,
    problems: Vec<ConfigProblem>,
}

impl ConfigError {
    /// An error made of `problems` (callers never pass an empty list; if they do, one generic
    /// problem is recorded so the error is never silent).
    pub fn new(problems: Vec<ConfigProblem>) -> Self {
        let problems = if problems.is_empty() {
            vec![ConfigProblem::new("", None, "invalid configuration")]
        } else {
            problems
        };
        Self {
            source_name: None,
            problems,
        }
    }

    /// An error with a single problem.
    pub fn single(
        path: impl Into<String>,
        value: Option<String>,
        message: impl Into<String>,
    ) -> Self {
        Self::new(vec![ConfigProblem::new(path, value, message)])
    }

    /// The same error, naming the file (or other source) it came from in `Display`.
    #[must_use]
    pub fn with_source_name(mut self, name: impl Into<String>) -> Self {
        self.source_name = Some(name.into());
        self
    }

    /// Every problem found, in document order where possible.
    pub fn problems(&self) -> &[ConfigProblem] {
        &self.problems
    }

    /// The file or source name given with [`ConfigError::with_source_name`].
    pub fn source_name(&self) -> Option<&str> {
        self.source_name.as_deref()
    }
}

impl fmt::Display for ConfigError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let count = self.problems.len();
        let noun = if count == 1 { "problem" } else { "problems" };
        match &self.source_name {
            Some(name) => write!(f, "invalid configuration {name} ({count} {noun}):")?,
            None => write!(f, "invalid configuration ({count} {noun}):")?,
        }
        for problem in &self.problems {
            write!(f, "\n  {problem}")?;
        }
        Ok(())
    }
}

impl std::error::Error for ConfigError {}

/// Collects problems while a configuration is read or validated.
///
/// While a document is read, a field that cannot be read keeps its default (or a placeholder),
/// so the later semantic validation must not report that field again: every path pushed with
/// [`Problems::push`] is remembered, and [`Problems::absorb`] drops problems at or under it.
#[derive(Debug, Default)]
pub(crate) struct Problems {
    list: Vec<ConfigProblem>,
    covered: Vec<String>,
}

impl Problems {
    /// Records a problem at `path` and covers `path` (see [`Problems::absorb`]).
    pub(crate) fn push(&mut self, path: &str, value: Option<String>, message: impl Into<String>) {
        self.covered.push(path.to_owned());
        self.list.push(ConfigProblem::new(path, value, message));
    }

    /// Records a problem at `path` without covering it.
    pub(crate) fn push_uncovered(
        &mut self,
        path: &str,
        value: Option<String>,
        message: impl Into<String>,
    ) {
        self.list.push(ConfigProblem::new(path, value, message));
    }

    /// Covers `path` without recording a problem there.
    pub(crate) fn cover(&mut self, path: &str) {
        self.covered.push(path.to_owned());
    }

    /// Removes a cover added with [`Problems::cover`] (problems pushed there stay covered).
    pub(crate) fn uncover(&mut self, path: &str) {
        if let Some(i) = self.covered.iter().rposition(|c| c == path) {
            self.covered.remove(i);
        }
    }

    /// Appends `later` problems except those at or under a covered path or already present.
    pub(crate) fn absorb(&mut self, later: Problems) {
        for problem in later.list {
            let covered = self.covered.iter().any(|c| is_under(&problem.path, c));
            if !covered && !self.list.contains(&problem) {
                self.list.push(problem);
            }
        }
    }

    /// Records an already built problem.
    pub(crate) fn push_problem(&mut self, problem: ConfigProblem) {
        self.list.push(problem);
    }

    /// Drops the problems for which `keep` is false.
    pub(crate) fn retain(&mut self, keep: impl FnMut(&ConfigProblem) -> bool) {
        self.list.retain(keep);
    }

    /// The recorded problems.
    pub(crate) fn into_vec(self) -> Vec<ConfigProblem> {
        self.list
    }

    /// `Ok(())` when nothing was recorded, otherwise the error listing everything.
    pub(crate) fn into_result(self) -> Result<(), ConfigError> {
        if self.list.is_empty() {
            Ok(())
        } else {
            Err(ConfigError::new(self.list))
        }
    }
}

/// Whether `path` is `parent` or lies under it.
fn is_under(path: &str, parent: &str) -> bool {
    match path.strip_prefix(parent) {
        Some(rest) => rest.is_empty() || rest.starts_with('.') || rest.starts_with('['),
        None => false,
    }
}

/// Joins a parent path and a key.
pub(crate) fn join(parent: &str, key: &str) -> String {
    if parent.is_empty() {
        key.to_owned()
    } else {
        format!("{parent}.{key}")
    }
}

/// Joins a parent path and a list index.
pub(crate) fn index(parent: &str, i: usize) -> String {
    format!("{parent}[{i}]")
}
