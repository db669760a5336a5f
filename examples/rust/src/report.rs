//! What an example did, step by step: printed for the reader, returned for the test.
//!
//! An example that only prints can silently stop demonstrating what it claims (a failover that
//! no longer happens still prints a line). Each call an example makes is therefore recorded as
//! a [`Step`] — which cluster and instance answered, whether the cache served it, how many
//! attempts it took — and the examples' test asserts on those records.

use std::fmt;
use std::time::Duration;

use federation_core::client::{CacheStatus, Response};

/// One call made by an example and how it was served.
#[derive(Clone, Debug)]
pub struct Step {
    /// What the example was doing (`profile lookup`, `after killing zervigo`, ...).
    pub label: String,
    /// HTTP status of the answer.
    pub status: u16,
    /// Cluster that answered.
    pub cluster: String,
    /// Instance (registry id) that answered.
    pub instance: String,
    /// Whether the cache served the call.
    pub cache: CacheStatus,
    /// Upstream attempts (0 for a cache hit).
    pub attempts: usize,
    /// Total time of the call.
    pub elapsed: Duration,
}

impl Step {
    /// Records how `response` was served.
    pub fn of(label: impl Into<String>, response: &Response) -> Self {
        let served = response.served();
        Self {
            label: label.into(),
            status: response.status().as_u16(),
            cluster: served.cluster().to_owned(),
            instance: served.instance().to_owned(),
            cache: served.cache(),
            attempts: served.attempts().len(),
            elapsed: served.elapsed(),
        }
    }
}

impl fmt::Display for Step {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "{:<34} {} from {}/{} cache={} attempts={} in {:.1} ms",
            self.label,
            self.status,
            self.cluster,
            self.instance,
            self.cache,
            self.attempts,
            self.elapsed.as_secs_f64() * 1000.0
        )
    }
}

/// The lines of a Prometheus exposition whose metric name starts with one of `prefixes` and
/// whose labels mention `service="<service>"`: a compact view for the end of an example.
pub fn metric_lines<'a>(text: &'a str, service: &str, prefixes: &[&str]) -> Vec<&'a str> {
    let label = format!("service=\"{service}\"");
    text.lines()
        .filter(|l| !l.starts_with('#'))
        .filter(|l| prefixes.iter().any(|p| l.starts_with(p)))
        .filter(|l| l.contains(&label))
        .collect()
}
