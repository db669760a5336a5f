//! Finding and loading the client configuration for `call`, `discover` and `health`.
//!
//! A command that silently picks up the wrong file sends traffic to the wrong place, so the
//! search order is fixed, documented and reported in errors: `--config PATH`, then the
//! `FEDERATION_CONFIG` environment variable (clap reads it into the same flag), then
//! `./federation.yaml`, `.yml`, `.toml`, `.json` in the current directory — the first that exists.

use std::path::{Path, PathBuf};

use federation_core::config::{Config, ConfigError};

use crate::exit::{CliError, Exit};

/// File names looked for in the current directory, in order.
pub const DEFAULT_FILES: [&str; 4] = [
    "federation.yaml",
    "federation.yml",
    "federation.toml",
    "federation.json",
];

/// The configuration file to use: `explicit` (from `--config` or `FEDERATION_CONFIG`) or the
/// first default file that exists in `dir`.
///
/// # Errors
/// Exit 3 when no file is given and none of the default files exists.
pub fn resolve(explicit: Option<&Path>, dir: &Path) -> Result<PathBuf, CliError> {
    if let Some(path) = explicit {
        return Ok(path.to_path_buf());
    }
    DEFAULT_FILES
        .iter()
        .map(|name| dir.join(name))
        .find(|path| path.is_file())
        .ok_or_else(|| {
            CliError::new(
                Exit::Config,
                "config",
                format!(
                    "no configuration found: pass --config PATH, set FEDERATION_CONFIG, or create \
                     one of {} in {}",
                    DEFAULT_FILES.join(", "),
                    dir.display()
                ),
            )
        })
}

/// Resolves and loads the configuration (see [`resolve`]).
///
/// # Errors
/// Exit 3 with every problem when the file is missing or invalid.
pub fn load(explicit: Option<&Path>) -> Result<Config, CliError> {
    load_with_path(explicit).map(|(config, _)| config)
}

/// [`load`], also returning the file it read (for a file watch).
///
/// # Errors
/// As [`load`].
pub fn load_with_path(explicit: Option<&Path>) -> Result<(Config, PathBuf), CliError> {
    let dir = std::env::current_dir().unwrap_or_else(|_| PathBuf::from("."));
    let path = resolve(explicit, &dir)?;
    let config = Config::from_file(&path).map_err(config_error)?;
    Ok((config, path))
}

/// An invalid configuration as a CLI error (exit 3), listing every problem.
pub fn config_error(error: ConfigError) -> CliError {
    CliError::new(Exit::Config, "config", error.to_string())
}
