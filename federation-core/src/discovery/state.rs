//! The published state of one watched service and its counters.
//!
//! Failures this prevents: an instance set emptied because Consul failed (errors only mark the
//! last known set stale), and subscribers woken for nothing (spurious wakeups and index churn
//! with identical content are absorbed: the set is updated silently, nobody is notified).

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex};

use tokio::sync::watch;

use super::{DiscoveryError, Instance, InstanceSet};

/// Counters of one watched service, for metrics and health reports.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct ServiceStats {
    /// Requests sent to the registry (successful or not).
    pub polls: u64,
    /// Requests that failed.
    pub errors: u64,
    /// Failures since the last success (0 while healthy).
    pub consecutive_errors: u32,
    /// The most recent error, kept after recovery for diagnosis.
    pub last_error: Option<DiscoveryError>,
    /// Changes published to subscribers.
    pub changes: u64,
    /// Current registry index (0 before the first answer, and after a failure until the next).
    pub index: u64,
    /// Instances in the current set.
    pub instances: usize,
    /// Whether the registry has answered at least once.
    pub initialized: bool,
    /// Whether the last poll failed.
    pub stale: bool,
}

/// Discovery counters of one cluster, per Consul service name.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct DiscoveryStats {
    /// The cluster name.
    pub cluster: String,
    /// Per watched service.
    pub services: BTreeMap<String, ServiceStats>,
}

/// The instance set of one (cluster, service) and its counters, shared by the watcher and every
/// subscriber.
#[derive(Debug)]
pub(crate) struct ServiceState {
    tx: watch::Sender<Arc<InstanceSet>>,
    stats: Mutex<ServiceStats>,
}

impl ServiceState {
    /// A state starting from `initial`.
    pub(crate) fn new(initial: InstanceSet) -> Self {
        let stats = ServiceStats {
            instances: initial.instances.len(),
            initialized: initial.initialized,
            stale: initial.stale,
            index: initial.index,
            ..ServiceStats::default()
        };
        Self {
            tx: watch::Sender::new(Arc::new(initial)),
            stats: Mutex::new(stats),
        }
    }

    /// A new subscriber seeing the current set.
    pub(crate) fn subscribe(&self) -> watch::Receiver<Arc<InstanceSet>> {
        self.tx.subscribe()
    }

    /// A copy of the counters.
    pub(crate) fn stats(&self) -> ServiceStats {
        crate::lock::lock(&self.stats).clone()
    }

    fn update_stats(&self, f: impl FnOnce(&mut ServiceStats)) {
        f(&mut crate::lock::lock(&self.stats));
    }

    /// The error of the current failure streak, if the last poll failed.
    pub(crate) fn current_error(&self) -> Option<DiscoveryError> {
        let stats = crate::lock::lock(&self.stats);
        (stats.consecutive_errors > 0)
            .then(|| stats.last_error.clone())
            .flatten()
    }

    /// Counts one request about to be sent.
    pub(crate) fn record_poll(&self) {
        self.update_stats(|s| s.polls += 1);
    }

    /// Publishes a successful answer; subscribers are notified only if the instances changed or
    /// the set was stale or uninitialized. Returns whether they were notified.
    pub(crate) fn record_success(&self, instances: Vec<Instance>, index: u64) -> bool {
        // Counters first: a subscriber woken by the change must find them up to date.
        self.update_stats(|s| {
            s.consecutive_errors = 0;
            s.index = index;
            s.instances = instances.len();
            s.initialized = true;
            s.stale = false;
        });
        let notified = self.tx.send_if_modified(move |current| {
            let changed =
                !current.initialized || current.stale || current.instances[..] != instances[..];
            let mut next = InstanceSet::fresh(Vec::new(), index);
            next.instances = if changed {
                Arc::from(instances)
            } else {
                Arc::clone(&current.instances)
            };
            *current = Arc::new(next);
            changed
        });
        if notified {
            self.update_stats(|s| s.changes += 1);
        }
        notified
    }

    /// Records a failed poll: the last known instances stay, marked stale with the error.
    /// Returns whether subscribers were notified (staleness or the error text changed).
    pub(crate) fn record_error(&self, error: &DiscoveryError) -> bool {
        self.update_stats(|s| {
            s.errors += 1;
            s.consecutive_errors = s.consecutive_errors.saturating_add(1);
            s.last_error = Some(error.clone());
            s.index = 0;
            s.stale = true;
        });
        let text = error.to_string();
        let notified = self.tx.send_if_modified(|current| {
            let changed = !current.stale || current.last_error.as_deref() != Some(text.as_str());
            if changed {
                let mut next = InstanceSet::clone(current);
                next.stale = true;
                next.last_error = Some(text.clone());
                *current = Arc::new(next);
            }
            changed
        });
        if notified {
            self.update_stats(|s| s.changes += 1);
        }
        notified
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::discovery::{DiscoveryErrorKind, Health, Weights};

    fn instance(id: &str) -> Instance {
        Instance {
            id: id.to_owned(),
            node: "n".to_owned(),
            host: "10.0.0.1".to_owned(),
            port: 80,
            tags: Vec::new(),
            meta: BTreeMap::new(),
            weights: Weights::default(),
            health: Health::Passing,
        }
    }

    #[test]
    fn errors_keep_instances_and_mark_stale_then_success_recovers() {
        let state = ServiceState::new(InstanceSet::pending());
        let mut rx = state.subscribe();
        assert!(state.record_success(vec![instance("a")], 5));
        assert!(rx.has_changed().expect("open"));
        rx.borrow_and_update();

        let err = DiscoveryError::new("z", DiscoveryErrorKind::Unreachable, "down");
        assert!(state.record_error(&err));
        let set = rx.borrow_and_update().clone();
        assert!(set.stale && set.initialized);
        assert_eq!(
            set.instances.len(),
            1,
            "never emptied because Consul failed"
        );
        assert!(set.last_success.is_some());
        assert!(
            !state.record_error(&err),
            "the same error again is not news"
        );
        assert_eq!(state.current_error(), Some(err));

        assert!(
            state.record_success(vec![instance("a")], 6),
            "recovery clears stale"
        );
        let set = rx.borrow_and_update().clone();
        assert!(!set.stale && set.last_error.is_none());
        assert_eq!(state.current_error(), None);
        assert_eq!(state.stats().errors, 2);
    }

    #[test]
    fn identical_answers_are_not_notified_but_update_the_index() {
        let state = ServiceState::new(InstanceSet::pending());
        assert!(state.record_success(vec![instance("a")], 5));
        let mut rx = state.subscribe();
        assert!(!state.record_success(vec![instance("a")], 9));
        assert!(!rx.has_changed().expect("open"));
        assert_eq!(rx.borrow_and_update().index, 9);
        assert!(state.record_success(vec![instance("a"), instance("b")], 10));
    }

    #[test]
    fn the_first_error_leaves_the_set_uninitialized_with_the_error() {
        let state = ServiceState::new(InstanceSet::pending());
        let rx = state.subscribe();
        let err = DiscoveryError::new("looma", DiscoveryErrorKind::Unreachable, "refused");
        state.record_error(&err);
        let set = rx.borrow().clone();
        assert!(!set.initialized);
        assert!(
            set.last_error
                .as_deref()
                .is_some_and(|e| e.contains("looma"))
        );
    }
}
