//! Resolving secrets from environment variables when a client starts.
//!
//! Tokens written into config files end up in repositories and logs, so tokens and header values
//! can name an environment variable instead (`token_env`, `{ env: VAR }`). The variable is read
//! once, when the client starts; a missing or empty variable is a configuration error naming the
//! field and the variable (never its value), instead of a confusing 403 from Consul later.

use super::cache_l2::L2Policy;
use super::error::{ConfigError, Problems, join};
use super::model::{ClusterConfig, ConsulSource, DiscoverySource, HeaderValueSource, Secret};

/// Reads environment variable `var` for the field at `path`.
pub(crate) fn read_env(var: &str, path: &str) -> Result<Secret, ConfigError> {
    let problem = |message: String| ConfigError::single(path, Some(format!("\"{var}\"")), message);
    match std::env::var(var) {
        Ok(value) if value.is_empty() => Err(problem(format!(
            "environment variable `{var}` is set but empty"
        ))),
        Ok(value) => Ok(Secret::new(value)),
        Err(std::env::VarError::NotPresent) => Err(problem(format!(
            "environment variable `{var}` is not set; set it before starting the client"
        ))),
        Err(std::env::VarError::NotUnicode(_)) => Err(problem(format!(
            "environment variable `{var}` does not hold valid UTF-8"
        ))),
    }
}

impl ConsulSource {
    /// The ACL token: `token` as given, or `token_env` read from the environment now, or `None`
    /// for anonymous access. `path_prefix` is this source's field path
    /// (`clusters.zervigo.consul`), used in errors.
    ///
    /// # Errors
    /// `token_env` names a variable that is unset, empty or not UTF-8; the error names
    /// `<path_prefix>.token_env` and the variable.
    pub fn resolve_token(&self, path_prefix: &str) -> Result<Option<Secret>, ConfigError> {
        if let Some(token) = &self.token {
            return Ok(Some(token.clone()));
        }
        match &self.token_env {
            Some(var) => read_env(var, &join(path_prefix, "token_env")).map(Some),
            None => Ok(None),
        }
    }
}

impl HeaderValueSource {
    /// The header value: the literal, or the variable read from the environment now. `path` is
    /// the header's field path (`clusters.looma.headers.Authorization`), used in errors.
    ///
    /// # Errors
    /// The variable is unset, empty or not UTF-8; the error names `<path>.env` and the variable.
    pub fn resolve(&self, path: &str) -> Result<Secret, ConfigError> {
        match self {
            HeaderValueSource::Value(secret) => Ok(secret.clone()),
            HeaderValueSource::Env(var) => read_env(var, &join(path, "env")),
        }
    }
}

impl ClusterConfig {
    /// This cluster's field path in a configuration file: `clusters.<name>`.
    pub fn path(&self) -> String {
        join("clusters", &self.name)
    }

    /// The Consul ACL token of this cluster (see [`ConsulSource::resolve_token`]); `None` for
    /// static clusters and anonymous access.
    ///
    /// # Errors
    /// As [`ConsulSource::resolve_token`].
    pub fn resolve_token(&self) -> Result<Option<Secret>, ConfigError> {
        match &self.source {
            DiscoverySource::Consul(consul) => consul.resolve_token(&join(&self.path(), "consul")),
            DiscoverySource::Static(_) => Ok(None),
        }
    }

    /// The default headers of this cluster, resolved and ready to send. Values are marked
    /// sensitive, so `http`'s `Debug` does not print them either.
    ///
    /// # Errors
    /// Every header whose variable is missing, or whose name or value is not valid HTTP.
    pub fn resolve_headers(
        &self,
    ) -> Result<Vec<(http::HeaderName, http::HeaderValue)>, ConfigError> {
        let mut problems = Problems::default();
        let mut headers = Vec::with_capacity(self.headers.len());
        let base = join(&self.path(), "headers");
        for header in &self.headers {
            let path = join(&base, &header.name);
            let name = match http::HeaderName::from_bytes(header.name.as_bytes()) {
                Ok(name) => Some(name),
                Err(_) => {
                    problems.push(&path, None, "invalid header name");
                    None
                }
            };
            let value = match header.value.resolve(&path) {
                Ok(secret) => match http::HeaderValue::from_str(secret.expose()) {
                    Ok(mut value) => {
                        value.set_sensitive(true);
                        Some(value)
                    }
                    Err(_) => {
                        problems.push(&path, None, "the value is not a valid HTTP header value");
                        None
                    }
                },
                Err(e) => {
                    for problem in e.problems() {
                        problems.push_problem(problem.clone());
                    }
                    None
                }
            };
            if let (Some(name), Some(value)) = (name, value) {
                headers.push((name, value));
            }
        }
        problems.into_result().map(|()| headers)
    }
}

impl L2Policy {
    /// The Redis password, read from `password_env` now; `None` without one. `path` is this
    /// section's field path (`services.user.cache.l2`), used in errors.
    ///
    /// # Errors
    /// The variable is unset, empty or not UTF-8 (the error names it, never a value).
    pub fn resolve_password(&self, path: &str) -> Result<Option<Secret>, ConfigError> {
        match &self.password_env {
            Some(var) => read_env(var, &join(path, "password_env")).map(Some),
            None => Ok(None),
        }
    }
}
