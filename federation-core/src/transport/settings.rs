//! Connection pool settings: one set for the client, overridden per cluster.
//!
//! **Failure prevented.** A pool setting spelled out in two places drifts: the shared hyper-util
//! client, the per-instance HTTP/1.1 pools and the pools of threads that drive their own calls
//! must keep the same idle limits and timeouts, so all of them read this one struct.

use std::time::Duration;

use crate::config::ConnectionSettings;

/// Connection pool settings shared by every cluster's HTTP client.
#[derive(Clone, Debug)]
pub(crate) struct PoolSettings {
    pub(crate) max_idle_per_host: usize,
    pub(crate) idle_timeout: Duration,
    pub(crate) connect_timeout: Duration,
    pub(crate) tcp_nodelay: bool,
}

impl PoolSettings {
    /// These settings with the values a cluster's `connections` section gives in their place.
    pub(crate) fn for_cluster(&self, own: &ConnectionSettings) -> Self {
        Self {
            max_idle_per_host: own
                .max_idle_per_instance
                .map_or(self.max_idle_per_host, |n| {
                    usize::try_from(n).unwrap_or(usize::MAX)
                }),
            idle_timeout: own.idle_timeout.unwrap_or(self.idle_timeout),
            connect_timeout: own.connect_timeout.unwrap_or(self.connect_timeout),
            tcp_nodelay: own.tcp_nodelay.unwrap_or(self.tcp_nodelay),
        }
    }
}

impl Default for PoolSettings {
    fn default() -> Self {
        Self {
            max_idle_per_host: 1024,
            idle_timeout: Duration::from_secs(90),
            connect_timeout: Duration::from_secs(1),
            tcp_nodelay: true,
        }
    }
}
