//! Background TCP probes of ejected instances.
//!
//! **Failure prevented:** a restarted instance staying out of rotation for seconds after it
//! answers again, because its breaker doubled the open period on every failed probe while it
//! was down (probes at 1, 3, 7, 15 s into an outage). Shortening the doubling would instead send
//! more real calls to instances that are still bad.
//!
//! **Algorithm** (as Linkerd's failure accrual does with its own probes): when an instance's
//! breaker opens, one task per instance connects to its address at once and then every
//! `open_for` × U(0.75, 1) (jittered so clients do not probe in step), each connect bounded by
//! half that period (50 ms – 1 s). A failed connect marks the ejection unreachable; a successful
//! one either ends the open period of an unreachable instance (the next real call is the single
//! half-open probe) or, on an instance whose cause was unknown, marks it failing (it accepts
//! connections, so its 5xx or timeouts keep the doubling) and the task ends. The task also ends
//! when the breaker closes; it holds only a weak reference to the breaker and is aborted when
//! the breaker is dropped (the instance left discovery, or the client was dropped). Nothing
//! runs on the call path: the task is started or woken by the breaker's `Opened` transition.

use std::sync::{Arc, Mutex};
use std::time::Duration;

use tokio::net::TcpStream;
use tokio::sync::Notify;
use tokio::task::AbortHandle;

use crate::breaker::{Breaker, BreakerState, EjectionCause, Transition, WeakBreaker};
use crate::lock::lock;

/// Starts probing `host:port` whenever `breaker` ejects it, every `every` (jittered); `None`
/// follows the breaker's base open period, also after a reload changed it.
pub(crate) fn watch(
    breaker: &Breaker,
    id: &Arc<str>,
    host: &str,
    port: u16,
    every: Option<Duration>,
) {
    let prober = Prober {
        shared: Arc::new(Shared {
            breaker: breaker.downgrade(),
            id: Arc::clone(id),
            host: host.to_owned(),
            port,
            every,
            wake: Notify::new(),
            task: Mutex::new(None),
        }),
    };
    // The observer owns the prober: dropping the breaker drops it, which aborts the task.
    breaker.on_transition(move |t| {
        if matches!(t, Transition::Opened { .. }) {
            prober.on_ejection();
        }
    });
}

/// Owned by the breaker's observer; aborts the probe task when dropped.
struct Prober {
    shared: Arc<Shared>,
}

/// What the probe task needs.
struct Shared {
    breaker: WeakBreaker,
    id: Arc<str>,
    host: String,
    port: u16,
    /// A fixed probe period; `None` = the breaker's current base open period.
    every: Option<Duration>,
    /// Wakes the task for an immediate connect after a new ejection.
    wake: Notify,
    /// The running task, if any (at most one per instance).
    task: Mutex<Option<AbortHandle>>,
}

impl Prober {
    fn on_ejection(&self) {
        let mut task = lock(&self.shared.task);
        if task.as_ref().is_some_and(|t| !t.is_finished()) {
            self.shared.wake.notify_one();
            return;
        }
        // Outside a runtime there is nothing to spawn on: the doubling alone applies.
        let Some(runtime) = crate::driven::spawn_handle() else {
            return;
        };
        *task = Some(runtime.spawn(run(Arc::clone(&self.shared))).abort_handle());
    }
}

impl Drop for Prober {
    fn drop(&mut self) {
        if let Some(task) = lock(&self.shared.task).take() {
            task.abort();
        }
    }
}

async fn run(shared: Arc<Shared>) {
    loop {
        // Never hold the breaker across an await: the task must not keep it alive.
        let (open, every) = match shared.breaker.upgrade() {
            Some(b) => (
                matches!(b.state(), BreakerState::Open { .. }),
                shared.period(&b),
            ),
            None => return,
        };
        let limit = (every / 2).clamp(Duration::from_millis(50), Duration::from_secs(1));
        if open {
            let reached = matches!(
                tokio::time::timeout(
                    limit,
                    TcpStream::connect((shared.host.as_str(), shared.port))
                )
                .await,
                Ok(Ok(_))
            );
            let Some(breaker) = shared.breaker.upgrade() else {
                return;
            };
            if !reached {
                breaker.probe_connect_failed();
            } else if breaker.probe_connect_succeeded() {
                tracing::debug!(
                    instance = %shared.id,
                    "instance accepts connections again; the next call probes it"
                );
            }
        }
        if shared.finished() {
            return;
        }
        let pause = every.mul_f64(rand::random_range(0.75..=1.0));
        tokio::select! {
            () = tokio::time::sleep(pause) => {}
            () = shared.wake.notified() => {}
        }
    }
}

impl Shared {
    /// The probe period now: the fixed one, or the breaker's current base open period.
    fn period(&self, breaker: &Breaker) -> Duration {
        self.every.unwrap_or_else(|| breaker.base_open_for())
    }

    /// Whether probing is pointless now (breaker gone or closed, or the instance accepts
    /// connections but fails calls); if so the task slot is cleared under its lock, so the
    /// next ejection starts a new task instead of waking this ending one.
    fn finished(&self) -> bool {
        let mut task = lock(&self.task);
        let done = self.breaker.upgrade().is_none_or(|b| {
            matches!(b.state(), BreakerState::Closed)
                || b.ejection_cause() == Some(EjectionCause::Failing)
        });
        if done {
            *task = None;
        }
        done
    }
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use tokio::net::TcpListener;
    use tokio::time::Instant;

    use super::watch;
    use crate::breaker::{Breaker, EjectionCause};
    use crate::config::BreakerPolicy;

    /// A breaker that stays open for 30 s unless the probe shortens it.
    fn breaker() -> Breaker {
        Breaker::new(&b_policy())
    }

    fn b_policy() -> BreakerPolicy {
        BreakerPolicy {
            consecutive_failures: 1,
            failure_rate: None,
            open_for: Duration::from_secs(30),
            max_open_for: Duration::from_secs(60),
        }
    }

    async fn eventually(mut cond: impl FnMut() -> bool) -> bool {
        for _ in 0..250 {
            if cond() {
                return true;
            }
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
        cond()
    }

    fn alive_tasks() -> usize {
        tokio::runtime::Handle::current()
            .metrics()
            .num_alive_tasks()
    }

    /// A loopback port nobody listens on (bound, then released).
    async fn closed_port() -> u16 {
        let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind");
        listener.local_addr().expect("local addr").port()
    }

    #[test]
    fn the_probe_period_follows_a_reloaded_open_period_unless_fixed() {
        let b = breaker();
        let shared = |every| super::Shared {
            breaker: b.downgrade(),
            id: "i-1".into(),
            host: "127.0.0.1".to_owned(),
            port: 1,
            every,
            wake: tokio::sync::Notify::new(),
            task: std::sync::Mutex::new(None),
        };
        let (follows, fixed) = (shared(None), shared(Some(Duration::from_millis(50))));
        assert_eq!(follows.period(&b), Duration::from_secs(30));
        let mut reloaded = crate::config::BreakerPolicy {
            open_for: Duration::from_millis(200),
            ..b_policy()
        };
        b.set_policy(&reloaded);
        assert_eq!(follows.period(&b), Duration::from_millis(200));
        assert_eq!(fixed.period(&b), Duration::from_millis(50));
        reloaded.open_for = Duration::from_secs(2);
        b.set_policy(&reloaded);
        assert_eq!(follows.period(&b), Duration::from_secs(2));
    }

    #[tokio::test]
    async fn an_unreachable_instance_returns_as_soon_as_it_accepts_connections() {
        let port = closed_port().await;
        let b = breaker();
        watch(
            &b,
            &"i-1".into(),
            "127.0.0.1",
            port,
            Some(Duration::from_millis(50)),
        );
        b.try_acquire().expect("closed").failure_at(Instant::now());
        assert!(eventually(|| b.ejection_cause() == Some(EjectionCause::Unreachable)).await);
        assert!(!b.is_available(), "still dead: stays ejected");
        let _listener = TcpListener::bind(("127.0.0.1", port))
            .await
            .expect("rebind");
        assert!(eventually(|| b.is_available()).await, "revived: probe due");
        b.try_acquire().expect("probe").success_at(Instant::now());
        assert!(eventually(|| alive_tasks() == 0).await, "closed: task ends");
    }

    #[tokio::test]
    async fn an_instance_that_accepts_connections_keeps_its_open_period() {
        let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind");
        let port = listener.local_addr().expect("local addr").port();
        let b = breaker();
        watch(
            &b,
            &"i-1".into(),
            "127.0.0.1",
            port,
            Some(Duration::from_millis(50)),
        );
        b.try_acquire().expect("closed").failure_at(Instant::now());
        assert!(eventually(|| b.ejection_cause() == Some(EjectionCause::Failing)).await);
        assert!(
            eventually(|| alive_tasks() == 0).await,
            "no probing of failing"
        );
        assert!(!b.is_available(), "the open period is untouched");
    }

    #[tokio::test]
    async fn dropping_the_breaker_ends_the_probe_task() {
        let port = closed_port().await;
        let b = breaker();
        watch(
            &b,
            &"i-1".into(),
            "127.0.0.1",
            port,
            Some(Duration::from_millis(50)),
        );
        b.try_acquire().expect("closed").failure_at(Instant::now());
        assert!(eventually(|| b.ejection_cause() == Some(EjectionCause::Unreachable)).await);
        assert_eq!(alive_tasks(), 1, "one task per ejected instance");
        drop(b);
        assert!(eventually(|| alive_tasks() == 0).await, "no task leak");
    }
}
