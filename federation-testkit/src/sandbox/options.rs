//! Knobs of a [`Sandbox`](super::Sandbox).

use std::time::Duration;

use federation_core::config::ConsulSource;

/// How a sandbox is started. `SandboxOptions::default()` gives the topology of the brief.
#[derive(Clone, Debug, PartialEq)]
pub struct SandboxOptions {
    /// Instances started per seed service. Default: 3.
    pub instances_per_service: usize,
    /// Extra `ai-service` instances in looma tagged `model=v3` (the others carry `model=v2`), so
    /// routing by model version can be tested. Default: 1.
    pub ai_v3_instances: usize,
    /// Interval of the Consul HTTP checks on each instance's `/health`. Default: 200 ms.
    pub check_interval: Duration,
    /// Timeout of each HTTP check. Default: 1 s.
    pub check_timeout: Duration,
    /// Base seed of the instances' random draws (each instance mixes in its identity).
    /// Default: 0.
    pub seed: u64,
    /// Blocking-query wait written into the generated client configuration.
    /// Default: 60 s (the SDK's default).
    pub consul_wait: Duration,
    /// How long [`Sandbox::start`](super::Sandbox::start) waits for every check to pass.
    /// Default: 20 s (generous for a loaded machine).
    pub ready_timeout: Duration,
    /// Record requests on every instance (see
    /// [`ServiceInstance::recorded`](crate::instance::ServiceInstance::recorded)). Default: off.
    pub record_requests: bool,
}

impl Default for SandboxOptions {
    fn default() -> Self {
        Self {
            instances_per_service: 3,
            ai_v3_instances: 1,
            check_interval: Duration::from_millis(200),
            check_timeout: Duration::from_secs(1),
            seed: 0,
            consul_wait: ConsulSource::DEFAULT_WAIT,
            ready_timeout: Duration::from_secs(20),
            record_requests: false,
        }
    }
}

impl SandboxOptions {
    /// The defaults.
    pub fn new() -> Self {
        Self::default()
    }

    /// Set [`instances_per_service`](Self::instances_per_service).
    #[must_use]
    pub fn instances_per_service(mut self, n: usize) -> Self {
        self.instances_per_service = n;
        self
    }

    /// Set [`check_interval`](Self::check_interval).
    #[must_use]
    pub fn check_interval(mut self, interval: Duration) -> Self {
        self.check_interval = interval;
        self
    }

    /// Set [`seed`](Self::seed).
    #[must_use]
    pub fn seed(mut self, seed: u64) -> Self {
        self.seed = seed;
        self
    }

    /// Set [`consul_wait`](Self::consul_wait).
    #[must_use]
    pub fn consul_wait(mut self, wait: Duration) -> Self {
        self.consul_wait = wait;
        self
    }

    /// Set [`ready_timeout`](Self::ready_timeout).
    #[must_use]
    pub fn ready_timeout(mut self, timeout: Duration) -> Self {
        self.ready_timeout = timeout;
        self
    }

    /// Set [`record_requests`](Self::record_requests).
    #[must_use]
    pub fn record_requests(mut self, on: bool) -> Self {
        self.record_requests = on;
        self
    }
}
