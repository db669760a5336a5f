//! Label sets of the federation metrics, and an interner so recording a sample does not allocate.
//!
//! Label values are `Arc<str>` taken from a per-`Metrics` interner: after a value's first use,
//! building a label set costs a read lock and reference-count increments, never an allocation.

use std::collections::HashSet;
use std::sync::{Arc, RwLock};

use prometheus_client::encoding::EncodeLabelSet;

/// `{service, cluster, outcome}`: requests and attempts.
#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub(crate) struct CallLabels {
    pub(crate) service: Arc<str>,
    pub(crate) cluster: Arc<str>,
    pub(crate) outcome: Arc<str>,
}

/// `{service}`: retries, budget rejections.
#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub(crate) struct ServiceLabels {
    pub(crate) service: Arc<str>,
}

/// `{service, arm}`: calls per split arm.
#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub(crate) struct ArmLabels {
    pub(crate) service: Arc<str>,
    pub(crate) arm: Arc<str>,
}

/// `{service, arm, reason}`: split fallbacks.
#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub(crate) struct FallbackLabels {
    pub(crate) service: Arc<str>,
    pub(crate) arm: Arc<str>,
    pub(crate) reason: Arc<str>,
}

/// `{service, from, to}`: failovers.
#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub(crate) struct FailoverLabels {
    pub(crate) service: Arc<str>,
    pub(crate) from: Arc<str>,
    pub(crate) to: Arc<str>,
}

/// `{cluster, service, instance}`: breaker state, ejections.
#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub(crate) struct InstanceLabels {
    pub(crate) cluster: Arc<str>,
    pub(crate) service: Arc<str>,
    pub(crate) instance: Arc<str>,
}

/// `{cluster, service, instance, to_state}`: breaker transitions.
#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub(crate) struct TransitionLabels {
    pub(crate) cluster: Arc<str>,
    pub(crate) service: Arc<str>,
    pub(crate) instance: Arc<str>,
    pub(crate) to_state: Arc<str>,
}

/// `{service, event}`: cache events.
#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub(crate) struct CacheLabels {
    pub(crate) service: Arc<str>,
    pub(crate) event: Arc<str>,
}

/// `{cluster, service}`: discovery errors and staleness.
#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub(crate) struct DiscoveryLabels {
    pub(crate) cluster: Arc<str>,
    pub(crate) service: Arc<str>,
}

/// `{cluster, service, health}`: discovered instances.
#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub(crate) struct HealthLabels {
    pub(crate) cluster: Arc<str>,
    pub(crate) service: Arc<str>,
    pub(crate) health: Arc<str>,
}

/// Shared `Arc<str>` label values.
#[derive(Default, Debug)]
pub(crate) struct Interner {
    values: RwLock<HashSet<Arc<str>>>,
}

impl Interner {
    /// The shared copy of `value` (allocated on first use only).
    pub(crate) fn get(&self, value: &str) -> Arc<str> {
        if let Some(found) = crate::lock::read(&self.values).get(value) {
            return Arc::clone(found);
        }
        let mut values = crate::lock::write(&self.values);
        if let Some(found) = values.get(value) {
            return Arc::clone(found);
        }
        let shared: Arc<str> = Arc::from(value);
        values.insert(Arc::clone(&shared));
        shared
    }
}
