//! Wake-ups for blocking queries.
//!
//! A blocking query that polled the state would either burn CPU or add latency; one that was
//! woken by unrelated services would spin. Each lower-cased service name (and the
//! `/catalog/services` view) has a `watch` channel carrying a wake sequence. A query subscribes
//! *before* it reads the state, so a change between the read and the wait is never lost; on a
//! wake it re-reads and returns only if the index passed the client's `index`, unless the wake
//! is *forced* (a spurious wake-up or an index reset), which returns the current state at once.

use std::collections::HashMap;
use std::sync::Mutex;
use std::time::Duration;

use tokio::sync::watch;

/// One wake-up event.
#[derive(Debug, Clone, Copy, Default)]
pub(crate) struct Wake {
    seq: u64,
    /// Return to the client even though the index did not move.
    pub(crate) force: bool,
}

/// Registry of the wake channels.
#[derive(Debug)]
pub(crate) struct Waiters {
    by_name: Mutex<HashMap<String, watch::Sender<Wake>>>,
    catalog: watch::Sender<Wake>,
}

/// Which view a blocking query watches.
#[derive(Debug, Clone, Copy)]
pub(crate) enum Topic<'a> {
    /// One service name (any case).
    Service(&'a str),
    /// The `/catalog/services` map.
    Catalog,
}

impl Waiters {
    pub(crate) fn new() -> Self {
        Self {
            by_name: Mutex::new(HashMap::new()),
            catalog: watch::Sender::new(Wake::default()),
        }
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, HashMap<String, watch::Sender<Wake>>> {
        self.by_name
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    /// Subscribes to a topic; the returned receiver sees every wake sent after this call.
    pub(crate) fn subscribe(&self, topic: Topic<'_>) -> watch::Receiver<Wake> {
        match topic {
            Topic::Catalog => self.catalog.subscribe(),
            Topic::Service(name) => self
                .lock()
                .entry(name.to_lowercase())
                .or_insert_with(|| watch::Sender::new(Wake::default()))
                .subscribe(),
        }
    }

    /// Wakes the queries of one service name.
    pub(crate) fn wake(&self, name: &str, force: bool) {
        if let Some(sender) = self.lock().get(&name.to_lowercase()) {
            bump(sender, force);
        }
    }

    /// Wakes the `/catalog/services` queries.
    pub(crate) fn wake_catalog(&self, force: bool) {
        bump(&self.catalog, force);
    }

    /// Wakes every blocked query.
    pub(crate) fn wake_all(&self, force: bool) {
        for sender in self.lock().values() {
            bump(sender, force);
        }
        bump(&self.catalog, force);
    }
}

fn bump(sender: &watch::Sender<Wake>, force: bool) {
    sender.send_modify(|wake| {
        wake.seq = wake.seq.wrapping_add(1);
        wake.force = force;
    });
}

/// Outcome of waiting for a wake.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Waited {
    /// Something changed: re-run the query.
    Changed,
    /// Forced wake: answer now with the current state.
    Forced,
    /// `wait` elapsed: answer with the current state.
    TimedOut,
}

/// Waits for the next wake on `receiver` or the deadline.
pub(crate) async fn wait_for_wake(
    receiver: &mut watch::Receiver<Wake>,
    deadline: tokio::time::Instant,
) -> Waited {
    tokio::select! {
        changed = receiver.changed() => match changed {
            Ok(()) if receiver.borrow_and_update().force => Waited::Forced,
            Ok(()) => Waited::Changed,
            // The sender lives as long as the double; if it is gone, stop blocking.
            Err(_) => Waited::Forced,
        },
        () = tokio::time::sleep_until(deadline) => Waited::TimedOut,
    }
}

/// Consul's default blocking wait (5 minutes).
pub(crate) const DEFAULT_WAIT: Duration = Duration::from_secs(300);
/// Consul's maximum blocking wait (`max_query_time`, 10 minutes).
pub(crate) const MAX_WAIT: Duration = Duration::from_secs(600);

/// The effective wait: default when 0/absent, capped at 10 minutes, plus optional jitter of at
/// most `wait / 16` (Consul's `RandomStagger(wait / JitterFraction)`).
pub(crate) fn effective_wait(requested: Option<Duration>, jitter: bool) -> Duration {
    let wait = match requested {
        Some(wait) if !wait.is_zero() => wait.min(MAX_WAIT),
        _ => DEFAULT_WAIT,
    };
    if !jitter {
        return wait;
    }
    let max_jitter = (wait / 16).as_nanos() as u64;
    if max_jitter == 0 {
        return wait;
    }
    use rand::RngExt as _;
    wait + Duration::from_nanos(rand::rng().random_range(0..max_jitter))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn wait_defaults_caps_and_jitters_within_a_sixteenth() {
        assert_eq!(effective_wait(None, false), DEFAULT_WAIT);
        assert_eq!(effective_wait(Some(Duration::ZERO), false), DEFAULT_WAIT);
        assert_eq!(
            effective_wait(Some(Duration::from_secs(3600)), false),
            MAX_WAIT
        );
        for _ in 0..100 {
            let wait = effective_wait(Some(Duration::from_secs(16)), true);
            assert!(wait >= Duration::from_secs(16) && wait < Duration::from_secs(17));
        }
    }

    #[tokio::test(start_paused = true)]
    async fn a_forced_wake_is_reported_and_a_timeout_fires() {
        let waiters = Waiters::new();
        let mut receiver = waiters.subscribe(Topic::Service("Web"));
        waiters.wake("web", true);
        let deadline = tokio::time::Instant::now() + Duration::from_secs(1);
        assert_eq!(wait_for_wake(&mut receiver, deadline).await, Waited::Forced);
        waiters.wake("WEB", false);
        assert_eq!(
            wait_for_wake(&mut receiver, deadline).await,
            Waited::Changed
        );
        assert_eq!(
            wait_for_wake(&mut receiver, deadline).await,
            Waited::TimedOut
        );
    }
}
