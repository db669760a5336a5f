//! The configuration file watch: edits to the file are applied without a restart.
//!
//! **Failures prevented.** An operator who edits the configuration of a running fleet should
//! not have to restart every process (dropping their calls in flight), nor be able to take a
//! process down with a half-written or invalid file. The watch polls the file (no platform
//! notification API, no new dependency): every period it reads the content and compares its
//! hash with the last content seen; a change is parsed and validated and applied through
//! [`FederatedServiceClient::reload`](super::FederatedServiceClient::reload). An unreadable,
//! unparsable or invalid file is rejected (logged and shown in `health()`), the running
//! configuration stays, and the same content is not tried again until it changes. The task
//! holds the client weakly and ends when the client's last clone is dropped.

use std::hash::{DefaultHasher, Hash, Hasher};
use std::path::PathBuf;
use std::sync::{Arc, Weak};
use std::time::Duration;

use super::front::FederatedServiceClient;
use super::generation::Shared;
use crate::config::{Config, ConfigFormat};

/// Shortest polling period (a smaller one would busy-read the file).
const MIN_PERIOD: Duration = Duration::from_millis(100);

/// Starts watching `path` for `client`, reading it every `every` (at least [`MIN_PERIOD`]).
/// Outside a tokio runtime nothing is watched, and a warning says so.
pub(crate) fn start(client: &FederatedServiceClient, path: PathBuf, every: Duration) {
    let Some(runtime) = crate::driven::spawn_handle() else {
        tracing::warn!(path = %path.display(), "no tokio runtime: the configuration file is not watched");
        return;
    };
    let shared = Arc::downgrade(&client.shared);
    // The content at start is the one the client runs (or was meant to): not a change.
    let seen = read(&path).ok().map(|text| hash(&text));
    runtime.spawn(watch(shared, path, every.max(MIN_PERIOD), seen));
}

async fn watch(shared: Weak<Shared>, path: PathBuf, every: Duration, mut seen: Option<u64>) {
    let source = format!("file {}", path.display());
    loop {
        tokio::time::sleep(every).await;
        let Some(shared) = shared.upgrade() else {
            return;
        };
        let client = FederatedServiceClient { shared };
        let text = match read(&path) {
            Ok(text) => text,
            Err(error) => {
                // Report a vanished file once, not every period.
                if seen.is_some() {
                    client.shared.reject(&source, &error);
                    seen = None;
                }
                continue;
            }
        };
        let now = hash(&text);
        if seen == Some(now) {
            continue;
        }
        seen = Some(now);
        match parse(&path, &text) {
            Ok(config) => {
                // A rejection is recorded by `reload_from` itself.
                let _ = client.reload_from(config, &source);
            }
            Err(error) => client.shared.reject(&source, &error),
        }
    }
}

fn read(path: &std::path::Path) -> Result<String, String> {
    std::fs::read_to_string(path).map_err(|e| format!("cannot read the file: {e}"))
}

fn parse(path: &std::path::Path, text: &str) -> Result<Config, crate::config::ConfigError> {
    let name = path.display().to_string();
    let format = ConfigFormat::from_path(path)?;
    Config::parse(text, format).map_err(|e| e.with_source_name(name))
}

fn hash(text: &str) -> u64 {
    let mut hasher = DefaultHasher::new();
    text.hash(&mut hasher);
    hasher.finish()
}
