//! The pipeline's tunables of one service (`defaults` and each service's overrides): timeouts,
//! retries and their budget, breaking, failover, caching, limits, hedging and spill.
//!
//! Every field documents its default, so a reader never has to find the code that fills it in.

use std::time::Duration;

use serde::Serialize;

/// Instance balancing policy.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Default, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum LoadBalancing {
    /// Power of two choices over peak-EWMA latency × (in-flight + 1). The default.
    #[default]
    PeakEwma,
    /// Power of two choices over in-flight requests.
    LeastRequest,
    /// Weighted round robin.
    RoundRobin,
}

/// Every tunable of the call pipeline. Defaults are the documented production defaults.
#[derive(Clone, Debug, PartialEq, Default, Serialize)]
pub struct Policy {
    /// Timeouts.
    pub timeout: TimeoutPolicy,
    /// Retries and the retry budget.
    pub retry: RetryPolicy,
    /// Per-instance circuit breaking.
    pub breaker: BreakerPolicy,
    /// Cluster choice and fail-back.
    pub failover: FailoverPolicy,
    /// Overrides the cluster's balancing policy for this service. Default: `None`.
    pub load_balancing: Option<LoadBalancing>,
    /// Result caching. Default: `None` (off).
    pub cache: Option<CachePolicy>,
    /// Load protection and size limits.
    pub limits: LimitPolicy,
    /// Backup requests for slow answers (`hedge`). Default: `None` (off).
    pub hedge: Option<crate::config::HedgePolicy>,
    /// Load-aware spill from the preferred cluster (`spill`). Default: `None` (off).
    pub spill: Option<crate::config::SpillPolicy>,
}

/// Timeouts of one call.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct TimeoutPolicy {
    /// Per attempt. Default: 1 s.
    #[serde(serialize_with = "crate::config::units::ser_duration")]
    pub attempt: Duration,
    /// Across all attempts, backoffs and failovers. Default: 3 s.
    #[serde(serialize_with = "crate::config::units::ser_duration")]
    pub total: Duration,
}

impl Default for TimeoutPolicy {
    fn default() -> Self {
        Self {
            attempt: Duration::from_secs(1),
            total: Duration::from_secs(3),
        }
    }
}

/// Retry behaviour.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct RetryPolicy {
    /// Attempts per call including the first (1 disables retries). Default: 3.
    pub max_attempts: u32,
    /// Budget shared by retries and failovers. Default: 20 % + 10/s over 10 s.
    pub budget: RetryBudgetPolicy,
    /// Backoff between attempts on the same cluster. Default: 25 ms growing to 250 ms, jittered.
    pub backoff: BackoffPolicy,
}

impl Default for RetryPolicy {
    fn default() -> Self {
        Self {
            max_attempts: 3,
            budget: RetryBudgetPolicy::default(),
            backoff: BackoffPolicy::default(),
        }
    }
}

/// The retry budget: extra load allowed as a share of traffic.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct RetryBudgetPolicy {
    /// Retries allowed as a percentage of first attempts (0–1000). Default: 20.
    pub percent: u32,
    /// Retries always allowed per second regardless of traffic. Default: 10.
    pub min_per_second: u32,
    /// Window over which requests and retries are counted. Default: 10 s.
    #[serde(serialize_with = "crate::config::units::ser_duration")]
    pub window: Duration,
}

impl Default for RetryBudgetPolicy {
    fn default() -> Self {
        Self {
            percent: 20,
            min_per_second: 10,
            window: Duration::from_secs(10),
        }
    }
}

/// Jittered exponential backoff.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct BackoffPolicy {
    /// First backoff. Default: 25 ms.
    #[serde(serialize_with = "crate::config::units::ser_duration")]
    pub base: Duration,
    /// Largest backoff. Default: 250 ms.
    #[serde(serialize_with = "crate::config::units::ser_duration")]
    pub max: Duration,
}

impl Default for BackoffPolicy {
    fn default() -> Self {
        Self {
            base: Duration::from_millis(25),
            max: Duration::from_millis(250),
        }
    }
}

/// Per-instance circuit breaker and ejection.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct BreakerPolicy {
    /// Open after this many consecutive failures. Default: 5.
    pub consecutive_failures: u32,
    /// Also open when the failure rate over a window exceeds a threshold. Default: on (50 % of at
    /// least 20 calls over 10 s).
    pub failure_rate: Option<FailureRatePolicy>,
    /// First open (ejection) period. Default: 1 s.
    #[serde(serialize_with = "crate::config::units::ser_duration")]
    pub open_for: Duration,
    /// Open period cap; the period doubles on each repeated ejection. Default: 60 s.
    #[serde(serialize_with = "crate::config::units::ser_duration")]
    pub max_open_for: Duration,
}

impl Default for BreakerPolicy {
    fn default() -> Self {
        Self {
            consecutive_failures: 5,
            failure_rate: Some(FailureRatePolicy::default()),
            open_for: Duration::from_secs(1),
            max_open_for: Duration::from_secs(60),
        }
    }
}

/// Failure-rate trigger of the breaker.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct FailureRatePolicy {
    /// Failure share (0.0–1.0, exclusive of 0) that opens the breaker. Default: 0.5.
    pub threshold: f64,
    /// Calls needed in the window before the rate is judged. Default: 20.
    pub minimum_requests: u32,
    /// Window length. Default: 10 s.
    #[serde(serialize_with = "crate::config::units::ser_duration")]
    pub window: Duration,
}

impl Default for FailureRatePolicy {
    fn default() -> Self {
        Self {
            threshold: 0.5,
            minimum_requests: 20,
            window: Duration::from_secs(10),
        }
    }
}

/// Cluster choice.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct FailoverPolicy {
    /// The preferred cluster is used while at least this share of its instances is available
    /// (0.0–1.0). Default: 0.5.
    pub healthy_threshold: f64,
    /// After a failover, the preferred cluster must stay healthy this long before traffic
    /// returns. Default: 5 s.
    #[serde(serialize_with = "crate::config::units::ser_duration")]
    pub dwell: Duration,
    /// Panic routing (`breaker/panic.rs`): when the instances the breakers admit are at most this
    /// share (0.0–1.0) of the routable ones, over the clusters a call may use, held-out instances
    /// not known to be unreachable are admitted too. `None` (`false` in a file) turns it off.
    /// Default: `Some(0.0)` — only when the breakers admit nothing.
    pub panic_threshold: Option<f64>,
}

impl Default for FailoverPolicy {
    fn default() -> Self {
        Self {
            healthy_threshold: 0.5,
            dwell: Duration::from_secs(5),
            panic_threshold: Some(0.0),
        }
    }
}

/// Result caching of one service. Present = enabled.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct CachePolicy {
    /// Time to live of a stored response. Default: 30 s.
    #[serde(serialize_with = "crate::config::units::ser_duration")]
    pub ttl: Duration,
    /// Cacheable methods (upper case). Default: `GET`, `HEAD`. `POST` keys include a body hash.
    pub methods: Vec<String>,
    /// Request headers whose values are part of the key. Default: none.
    pub vary_headers: Vec<String>,
    /// Upper bound of the service's cache in bytes (keys + bodies). Default: 64 MiB.
    pub max_bytes: u64,
    /// Serve a value this long past its TTL while one background refresh runs. Default: none.
    #[serde(serialize_with = "crate::config::units::ser_opt_duration")]
    pub stale_while_revalidate: Option<Duration>,
    /// Serve a value this long past its TTL when every cluster fails. Default: none.
    #[serde(serialize_with = "crate::config::units::ser_opt_duration")]
    pub stale_if_error: Option<Duration>,
    /// Honour upstream `Cache-Control: max-age` / `no-store`. Default: true.
    pub respect_cache_control: bool,
    /// The shared Redis tier (`cache.l2`). Default: `None` (this process's memory only).
    pub l2: Option<crate::config::L2Policy>,
    /// Paths fetched into the cache when the client starts (`GET`). Default: none.
    pub warm: Vec<String>,
    /// Most warm-up fetches in flight at once. Default: 4.
    pub warm_concurrency: u32,
    /// Entity type → path templates with `{id}` (a trailing `*` makes it a prefix) dropped by
    /// `invalidate_entity(type, id)`, e.g. `user: [/api/v1/users/{id}]`. Default: none.
    pub entities: std::collections::BTreeMap<String, Vec<String>>,
}

impl Default for CachePolicy {
    fn default() -> Self {
        Self {
            ttl: Duration::from_secs(30),
            methods: vec!["GET".to_owned(), "HEAD".to_owned()],
            vary_headers: Vec::new(),
            max_bytes: 64 * 1024 * 1024,
            stale_while_revalidate: None,
            stale_if_error: None,
            respect_cache_control: true,
            l2: None,
            warm: Vec::new(),
            warm_concurrency: 4,
            entities: std::collections::BTreeMap::new(),
        }
    }
}

/// Load protection and size limits.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct LimitPolicy {
    /// Most calls of this service in flight at once (bulkhead). Default: `None` (unlimited).
    pub max_concurrent: Option<u32>,
    /// Token-bucket rate limit. Default: `None`.
    pub rate_limit: Option<RateLimitPolicy>,
    /// Largest response body accepted, in bytes. Default: 32 MiB.
    pub max_response_bytes: u64,
}

impl Default for LimitPolicy {
    fn default() -> Self {
        Self {
            max_concurrent: None,
            rate_limit: None,
            max_response_bytes: 32 * 1024 * 1024,
        }
    }
}

/// A token bucket.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct RateLimitPolicy {
    /// Sustained calls per second (> 0).
    pub per_second: f64,
    /// Bucket size. Default: equal to `per_second`, at least 1.
    pub burst: u32,
}

impl RateLimitPolicy {
    /// The default bucket size for `per_second`: one second's worth of calls, at least 1.
    pub fn default_burst(per_second: f64) -> u32 {
        if per_second.is_finite() && per_second > 1.0 {
            // Saturating float-to-int conversion; rates above u32::MAX are not meaningful.
            per_second.ceil() as u32
        } else {
            1
        }
    }
}
