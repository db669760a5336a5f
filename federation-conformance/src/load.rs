//! Reading scenario files.
//!
//! A scenario file that silently dropped a misspelled expectation would pass while proving
//! nothing, so files are read strictly (unknown keys are errors) and every error names the file.
//! YAML is read into a plain JSON-shaped tree first and typed from there: steps are single-key
//! maps (`- kill: ...`), the same plain data the Python and Go runners read.

use crate::schema::Scenario;

/// Error reading a scenario file.
#[derive(Debug, thiserror::Error)]
pub enum ScenarioError {
    /// The file could not be read.
    #[error("reading {path}: {source}")]
    Io {
        /// File path.
        path: String,
        /// The I/O error.
        source: std::io::Error,
    },
    /// The file is not a valid scenario.
    #[error("{path}: {message}")]
    Invalid {
        /// File path.
        path: String,
        /// What is wrong.
        message: String,
    },
}

impl Scenario {
    /// Parses scenario YAML; `origin` names the source in errors.
    pub fn parse(text: &str, origin: &str) -> Result<Self, ScenarioError> {
        let invalid = |message: String| ScenarioError::Invalid {
            path: origin.to_owned(),
            message,
        };
        // Via a JSON tree: serde_norway reads externally tagged enums only from YAML tags
        // (`!kill`), serde_json from the single-key maps the files use.
        let tree: serde_json::Value =
            serde_norway::from_str(text).map_err(|e| invalid(e.to_string()))?;
        let scenario: Scenario =
            serde_json::from_value(tree).map_err(|e| invalid(e.to_string()))?;
        if !scenario.client.is_null() && !scenario.client.is_object() {
            return Err(invalid(
                "`client` must be a map (services, defaults)".to_owned(),
            ));
        }
        Ok(scenario)
    }

    /// Reads and parses a scenario file.
    pub fn load(path: &std::path::Path) -> Result<Self, ScenarioError> {
        let shown = path.display().to_string();
        let text = std::fs::read_to_string(path).map_err(|source| ScenarioError::Io {
            path: shown.clone(),
            source,
        })?;
        Self::parse(&text, &shown)
    }

    /// Every `*.yaml` scenario in `dir`, sorted by file name.
    pub fn load_dir(dir: &std::path::Path) -> Result<Vec<Self>, ScenarioError> {
        let io = |source| ScenarioError::Io {
            path: dir.display().to_string(),
            source,
        };
        let mut paths: Vec<_> = std::fs::read_dir(dir)
            .map_err(io)?
            .filter_map(Result::ok)
            .map(|e| e.path())
            .filter(|p| p.extension().is_some_and(|x| x == "yaml" || x == "yml"))
            .collect();
        paths.sort();
        paths.iter().map(|p| Self::load(p)).collect()
    }
}
