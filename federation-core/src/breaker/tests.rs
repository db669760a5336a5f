//! Breaker behaviour under a paused clock.

use std::sync::atomic::{AtomicU32, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use tokio::time::{Instant, advance};

use super::transition::OpenReason;
use super::{Breaker, BreakerState, EjectionCause, Transition};
use crate::config::{BreakerPolicy, FailureRatePolicy};

fn secs(n: u64) -> Duration {
    Duration::from_secs(n)
}

fn consecutive_only(n: u32) -> BreakerPolicy {
    BreakerPolicy {
        consecutive_failures: n,
        failure_rate: None,
        open_for: secs(1),
        max_open_for: secs(60),
    }
}

fn fail(breaker: &Breaker, n: u32) {
    for _ in 0..n {
        breaker
            .try_acquire()
            .expect("admitted")
            .failure_at(Instant::now());
    }
}

fn open_until(breaker: &Breaker) -> Instant {
    match breaker.state() {
        BreakerState::Open { until } => until,
        other => panic!("expected open, got {other:?}"),
    }
}

#[tokio::test(start_paused = true)]
async fn opens_after_n_consecutive_failures_only() {
    let breaker = Breaker::new(&consecutive_only(5));
    fail(&breaker, 4);
    breaker
        .try_acquire()
        .expect("admitted")
        .success_at(Instant::now());
    assert_eq!(
        breaker.consecutive_failures(),
        0,
        "a success resets the streak"
    );
    fail(&breaker, 4);
    assert_eq!(breaker.state(), BreakerState::Closed);
    assert!(breaker.is_available());
    fail(&breaker, 1);
    assert_eq!(open_until(&breaker), Instant::now() + secs(1));
    assert!(!breaker.is_available());
    assert!(
        breaker.try_acquire().is_none(),
        "open refuses without side effects"
    );
    assert_eq!(breaker.ejections(), 1);
}

#[tokio::test(start_paused = true)]
async fn failure_rate_trigger_needs_minimum_requests() {
    let policy = BreakerPolicy {
        consecutive_failures: 0, // off: only the rate trigger
        failure_rate: Some(FailureRatePolicy {
            threshold: 0.5,
            minimum_requests: 20,
            window: secs(10),
        }),
        ..consecutive_only(0)
    };
    let breaker = Breaker::new(&policy);
    // Alternate: 50 % failures, never 2 in a row.
    for i in 0..19 {
        let permit = breaker.try_acquire().expect("closed");
        if i % 2 == 0 {
            permit.failure_at(Instant::now())
        } else {
            permit.success_at(Instant::now())
        }
    }
    assert_eq!(
        breaker.state(),
        BreakerState::Closed,
        "19 calls: below minimum"
    );
    breaker
        .try_acquire()
        .expect("closed")
        .failure_at(Instant::now()); // 20 calls, 11 failures
    assert!(matches!(breaker.state(), BreakerState::Open { .. }));

    // Failures that slid out of the window do not count.
    let breaker = Breaker::new(&policy);
    for _ in 0..9 {
        breaker
            .try_acquire()
            .expect("closed")
            .failure_at(Instant::now());
    }
    advance(secs(11)).await;
    for _ in 0..11 {
        breaker
            .try_acquire()
            .expect("closed")
            .success_at(Instant::now());
    }
    breaker
        .try_acquire()
        .expect("closed")
        .failure_at(Instant::now());
    assert_eq!(
        breaker.state(),
        BreakerState::Closed,
        "1 failure of 12 in the window"
    );
}

#[tokio::test(start_paused = true)]
async fn exactly_one_probe_when_the_period_elapses() {
    let breaker = Breaker::new(&consecutive_only(1));
    fail(&breaker, 1);
    advance(Duration::from_millis(999)).await;
    assert!(breaker.try_acquire().is_none());
    advance(Duration::from_millis(1)).await;
    assert_eq!(breaker.state(), BreakerState::HalfOpen);
    assert!(breaker.is_available());

    // Many threads race for the probe: exactly one wins.
    let winners = AtomicU32::new(0);
    let barrier = std::sync::Barrier::new(8);
    let probes = Mutex::new(Vec::new());
    // Threads enter the runtime so they read the same (paused) clock.
    let handle = tokio::runtime::Handle::current();
    std::thread::scope(|s| {
        for _ in 0..8 {
            s.spawn(|| {
                let _runtime = handle.enter();
                barrier.wait();
                for _ in 0..100 {
                    if let Some(p) = breaker.try_acquire() {
                        winners.fetch_add(1, Ordering::Relaxed);
                        probes.lock().expect("lock").push(p);
                    }
                }
            });
        }
    });
    assert_eq!(winners.load(Ordering::Relaxed), 1);
    assert!(!breaker.is_available(), "the probe is out");
    let probe = probes.lock().expect("lock").pop().expect("one probe");
    assert!(probe.is_probe());
    probe.success_at(Instant::now());
    assert_eq!(breaker.state(), BreakerState::Closed);
    assert!(breaker.try_acquire().is_some_and(|p| !p.is_probe()));
}

#[tokio::test(start_paused = true)]
async fn a_dropped_probe_is_handed_back() {
    let breaker = Breaker::new(&consecutive_only(1));
    fail(&breaker, 1);
    advance(secs(1)).await;
    let probe = breaker.try_acquire().expect("probe");
    assert!(breaker.try_acquire().is_none());
    drop(probe); // cancelled call: neutral
    assert!(breaker.is_available());
    assert!(breaker.try_acquire().is_some_and(|p| p.is_probe()));
    assert_eq!(
        breaker.ejections(),
        1,
        "a cancelled probe is not an ejection"
    );
}

#[tokio::test(start_paused = true)]
async fn open_period_doubles_up_to_the_cap_and_resets_after_success() {
    let policy = BreakerPolicy {
        max_open_for: secs(5),
        ..consecutive_only(1)
    };
    let breaker = Breaker::new(&policy);
    fail(&breaker, 1);
    let mut periods = Vec::new();
    for _ in 0..5 {
        let until = open_until(&breaker);
        periods.push(until - Instant::now());
        advance(until - Instant::now()).await;
        breaker
            .try_acquire()
            .expect("probe")
            .failure_at(Instant::now());
    }
    assert_eq!(periods, [secs(1), secs(2), secs(4), secs(5), secs(5)]);
    assert_eq!(breaker.ejections(), 6);

    advance(secs(5)).await;
    breaker
        .try_acquire()
        .expect("probe")
        .success_at(Instant::now());
    fail(&breaker, 1);
    assert_eq!(
        open_until(&breaker) - Instant::now(),
        secs(1),
        "reset to open_for"
    );
}

#[tokio::test(start_paused = true)]
async fn stale_outcomes_do_not_count_twice() {
    let breaker = Breaker::new(&consecutive_only(2));
    let slow: Vec<_> = (0..5)
        .map(|_| breaker.try_acquire().expect("closed"))
        .collect();
    fail(&breaker, 2);
    assert_eq!(breaker.ejections(), 1);
    for p in slow {
        p.failure_at(Instant::now()); // issued before the ejection: ignored
    }
    assert_eq!(breaker.ejections(), 1);
    advance(secs(1)).await;
    let probe = breaker.try_acquire().expect("probe");
    probe.success_at(Instant::now());
    assert_eq!(breaker.state(), BreakerState::Closed);
    assert_eq!(breaker.consecutive_failures(), 0);
}

#[tokio::test(start_paused = true)]
async fn observers_see_every_transition() {
    let seen = Arc::new(Mutex::new(Vec::new()));
    let breaker = Breaker::new(&consecutive_only(3));
    let sink = Arc::clone(&seen);
    breaker.on_transition(move |t| sink.lock().expect("lock").push(t));
    fail(&breaker, 3);
    advance(secs(1)).await;
    breaker
        .try_acquire()
        .expect("probe")
        .failure_at(Instant::now());
    advance(secs(2)).await;
    breaker
        .try_acquire()
        .expect("probe")
        .success_at(Instant::now());
    let seen = seen.lock().expect("lock").clone();
    assert_eq!(
        seen,
        [
            Transition::Opened {
                reason: OpenReason::ConsecutiveFailures,
                open_for: secs(1)
            },
            Transition::HalfOpened,
            Transition::Opened {
                reason: OpenReason::ProbeFailed,
                open_for: secs(2)
            },
            Transition::HalfOpened,
            Transition::Closed,
        ]
    );
}

#[tokio::test(start_paused = true)]
async fn default_policy_matches_the_documented_defaults() {
    let breaker = Breaker::new(&BreakerPolicy::default());
    fail(&breaker, 4);
    assert_eq!(breaker.state(), BreakerState::Closed);
    fail(&breaker, 1);
    assert_eq!(open_until(&breaker) - Instant::now(), secs(1));
}

#[tokio::test(start_paused = true)]
async fn a_connect_to_an_unreachable_instance_makes_the_next_call_the_probe() {
    let breaker = Breaker::new(&consecutive_only(2));
    fail(&breaker, 2);
    assert_eq!(
        breaker.ejection_cause(),
        None,
        "plain failures leave the cause open"
    );
    breaker.probe_connect_failed();
    assert_eq!(breaker.ejection_cause(), Some(EjectionCause::Unreachable));
    advance(Duration::from_millis(300)).await;
    assert!(!breaker.is_available());
    assert!(
        breaker.probe_connect_succeeded(),
        "unreachable + connect → half-open"
    );
    assert!(breaker.is_available());
    assert_eq!(breaker.state(), BreakerState::HalfOpen);
    let probe = breaker
        .try_acquire()
        .expect("the probe is admitted at once");
    assert!(probe.is_probe());
    assert!(breaker.try_acquire().is_none(), "one probe only");
    probe.success_at(Instant::now());
    assert_eq!(breaker.state(), BreakerState::Closed);
    assert_eq!(breaker.ejection_cause(), None);
    fail(&breaker, 2);
    assert_eq!(
        open_until(&breaker),
        Instant::now() + secs(1),
        "the period was reset by the success"
    );
}

#[tokio::test(start_paused = true)]
async fn an_instance_that_accepts_connections_keeps_the_doubling() {
    let breaker = Breaker::new(&consecutive_only(2));
    fail(&breaker, 2);
    assert!(
        !breaker.probe_connect_succeeded(),
        "unknown cause + connect → failing"
    );
    assert_eq!(breaker.ejection_cause(), Some(EjectionCause::Failing));
    assert!(!breaker.is_available());
    assert!(!breaker.probe_connect_succeeded(), "still no shortcut");
    advance(secs(1)).await;
    breaker
        .try_acquire()
        .expect("probe after 1 s")
        .failure_at(Instant::now());
    assert_eq!(open_until(&breaker), Instant::now() + secs(2), "doubled");
    assert_eq!(
        breaker.ejection_cause(),
        None,
        "every opening resets the cause"
    );
}

#[tokio::test(start_paused = true)]
async fn a_forced_probe_that_fails_doubles_and_reclassifies() {
    let breaker = Breaker::new(&consecutive_only(2));
    fail(&breaker, 2);
    breaker.probe_connect_failed();
    assert!(breaker.probe_connect_succeeded());
    // Back, but answering 503: the forced probe fails.
    breaker
        .try_acquire()
        .expect("forced probe")
        .failure_at(Instant::now());
    assert_eq!(open_until(&breaker), Instant::now() + secs(2), "doubled");
    assert!(
        !breaker.probe_connect_succeeded(),
        "it accepts connections: failing, no second shortcut"
    );
    assert_eq!(breaker.ejection_cause(), Some(EjectionCause::Failing));
    assert!(!breaker.is_available());
}

#[tokio::test(start_paused = true)]
async fn a_connect_failure_recorded_by_the_caller_classifies_the_ejection() {
    let breaker = Breaker::new(&consecutive_only(2));
    breaker
        .try_acquire()
        .expect("closed")
        .failure_at(Instant::now());
    breaker
        .try_acquire()
        .expect("closed")
        .failure_with_at(EjectionCause::Unreachable, Instant::now());
    assert_eq!(breaker.ejection_cause(), Some(EjectionCause::Unreachable));
    assert!(breaker.probe_connect_succeeded());
    assert!(breaker.is_available());
}

#[tokio::test(start_paused = true)]
async fn probe_entry_points_do_nothing_on_a_closed_breaker_or_an_out_probe() {
    let breaker = Breaker::new(&consecutive_only(2));
    breaker.probe_connect_failed();
    assert!(!breaker.probe_connect_succeeded());
    assert!(!breaker.force_half_open());
    assert_eq!(breaker.ejection_cause(), None);
    assert_eq!(breaker.state(), BreakerState::Closed);
    fail(&breaker, 2);
    assert!(
        breaker.force_half_open(),
        "forcing works whatever the cause"
    );
    let probe = breaker.try_acquire().expect("probe");
    breaker.probe_connect_failed();
    assert!(
        !breaker.probe_connect_succeeded(),
        "the probe call is already out"
    );
    assert!(!breaker.force_half_open());
    probe.success_at(Instant::now());
    assert_eq!(breaker.state(), BreakerState::Closed);
}

#[tokio::test(start_paused = true)]
async fn a_weak_reference_does_not_keep_the_breaker_alive() {
    let breaker = Breaker::new(&consecutive_only(2));
    let weak = breaker.downgrade();
    assert!(weak.upgrade().is_some());
    drop(breaker);
    assert!(weak.upgrade().is_none());
}
