//! Balancer behaviour: proportions, steering and determinism.

use std::sync::Arc;
use std::time::Duration;

use tokio::time::{Instant, advance};

use super::{Balancer, Candidate, InstanceStats};
use crate::config::LoadBalancing;

fn stats(n: usize) -> Vec<Arc<InstanceStats>> {
    (0..n).map(|_| Arc::new(InstanceStats::default())).collect()
}

fn candidates<'a>(stats: &'a [Arc<InstanceStats>], weights: &[u32]) -> Vec<Candidate<'a>> {
    stats
        .iter()
        .zip(weights)
        .map(|(s, &weight)| Candidate { weight, stats: s })
        .collect()
}

fn counts(balancer: &Balancer, c: &[Candidate<'_>], picks: usize) -> Vec<usize> {
    let mut counts = vec![0; c.len()];
    for _ in 0..picks {
        counts[balancer.pick_at(c, Instant::now()).expect("a candidate")] += 1;
    }
    counts
}

#[tokio::test(start_paused = true)]
async fn peak_ewma_sends_little_to_a_ten_times_slower_instance() {
    let s = stats(3);
    let c = candidates(&s, &[1, 1, 1]);
    let balancer = Balancer::new(LoadBalancing::PeakEwma, Some(7));
    let rtt = [10, 10, 100].map(Duration::from_millis);
    let mut counts = [0usize; 3];
    for _ in 0..3000 {
        let i = balancer.pick_at(&c, Instant::now()).expect("a candidate");
        counts[i] += 1;
        let guard = s[i].start();
        advance(Duration::from_millis(5)).await;
        guard.stats().observe_at(rtt[i], true, Instant::now());
    }
    let slow_share = counts[2] as f64 / 3000.0;
    assert!(
        slow_share < 0.10,
        "slow instance got {slow_share:.3} ({counts:?})"
    );
    assert!(counts[0] > 1000 && counts[1] > 1000, "{counts:?}");
}

#[tokio::test(start_paused = true)]
async fn least_request_prefers_fewer_in_flight() {
    let s = stats(2);
    let c = candidates(&s, &[1, 1]);
    let _busy: Vec<_> = (0..3).map(|_| s[0].start()).collect();
    let balancer = Balancer::new(LoadBalancing::LeastRequest, Some(1));
    assert_eq!(counts(&balancer, &c, 100), [0, 100]);

    // With three instances the busy one always loses its draw against an idle one.
    let s = stats(3);
    let c = candidates(&s, &[1, 1, 1]);
    let _busy: Vec<_> = (0..5).map(|_| s[1].start()).collect();
    let got = counts(&balancer, &c, 3000);
    assert_eq!(got[1], 0, "P2C never keeps the busier of two: {got:?}");
}

#[tokio::test(start_paused = true)]
async fn least_request_respects_weights() {
    let s = stats(2);
    let c = candidates(&s, &[3, 1]);
    // Instance 0 (weight 3, 3 in flight) costs 4/3; instance 1 (weight 1, idle) costs 1.
    let _busy: Vec<_> = (0..3).map(|_| s[0].start()).collect();
    let balancer = Balancer::new(LoadBalancing::LeastRequest, Some(5));
    assert_eq!(counts(&balancer, &c, 50), [0, 50]);
}

#[tokio::test(start_paused = true)]
async fn round_robin_is_proportional_to_weights_and_interleaved() {
    let s = stats(3);
    let c = candidates(&s, &[5, 1, 1]);
    let balancer = Balancer::new(LoadBalancing::RoundRobin, None);
    let seq: Vec<_> = (0..7)
        .map(|_| balancer.pick_at(&c, Instant::now()).expect("pick"))
        .collect();
    assert_eq!(seq, [0, 0, 1, 0, 2, 0, 0], "smooth: spread, not bunched");
    assert_eq!(counts(&balancer, &c, 700), [500, 100, 100]);
}

#[tokio::test(start_paused = true)]
async fn round_robin_stays_fair_when_the_list_changes() {
    let s = stats(4);
    let balancer = Balancer::new(LoadBalancing::RoundRobin, None);
    let all = candidates(&s, &[1, 1, 1, 1]);
    let _ = counts(&balancer, &all, 3); // stop mid-cycle
    // Instance 1 is ejected for a while.
    let without = [0, 2, 3].map(|i| all[i]);
    let got = counts(&balancer, &without, 300);
    assert!(got.iter().all(|&n| (99..=101).contains(&n)), "{got:?}");
    // It comes back, and a new instance joins with weight 2.
    let s5 = Arc::new(InstanceStats::default());
    let mut back = all.clone();
    back.push(Candidate {
        weight: 2,
        stats: &s5,
    });
    let got = counts(&balancer, &back, 600);
    assert!(got[..4].iter().all(|&n| (99..=101).contains(&n)), "{got:?}");
    assert!((199..=201).contains(&got[4]), "{got:?}");
}

#[tokio::test(start_paused = true)]
async fn weight_zero_is_never_picked() {
    let s = stats(3);
    let c = candidates(&s, &[0, 1, 0]);
    for policy in [
        LoadBalancing::PeakEwma,
        LoadBalancing::LeastRequest,
        LoadBalancing::RoundRobin,
    ] {
        let balancer = Balancer::new(policy, Some(3));
        assert_eq!(counts(&balancer, &c, 200), [0, 200, 0], "{policy:?}");
        assert_eq!(
            balancer.pick_at(&candidates(&s, &[0, 0]), Instant::now()),
            None,
            "{policy:?}"
        );
        assert_eq!(
            balancer.pick_at(&candidates(&s, &[0]), Instant::now()),
            None,
            "{policy:?}"
        );
        assert_eq!(balancer.pick_at(&[], Instant::now()), None, "{policy:?}");
    }
}

#[tokio::test(start_paused = true)]
async fn p2c_draws_by_weight() {
    let s = stats(2);
    let balancer = Balancer::new(LoadBalancing::LeastRequest, Some(11));
    // 8 in flight at weight 9 costs (8 + 1) / 9 = 1, like an idle instance at weight 1: on a
    // tie the first draw wins, so the share of index 0 is the share of first draws (9 : 1).
    let _busy: Vec<_> = (0..8).map(|_| s[0].start()).collect();
    let c = candidates(&s, &[9, 1]);
    let mut first = 0;
    for _ in 0..10_000 {
        if balancer.pick_at(&c, Instant::now()) == Some(0) {
            first += 1;
        }
    }
    assert!((8_700..=9_300).contains(&first), "{first}");
    let s4 = stats(4);
    let c = candidates(&s4, &[1, 1, 1, 1]);
    let got = counts(&balancer, &c, 8000);
    assert!(got.iter().all(|&n| (1_700..=2_300).contains(&n)), "{got:?}");
}

#[tokio::test(start_paused = true)]
async fn seeded_balancers_are_deterministic() {
    let s = stats(5);
    let c = candidates(&s, &[1, 2, 3, 1, 1]);
    for policy in [LoadBalancing::PeakEwma, LoadBalancing::LeastRequest] {
        let seq = |seed| {
            let b = Balancer::new(policy, Some(seed));
            (0..50)
                .map(|_| b.pick_at(&c, Instant::now()))
                .collect::<Vec<_>>()
        };
        assert_eq!(seq(99), seq(99), "{policy:?}");
        assert_ne!(seq(99), seq(100), "{policy:?}");
    }
}

#[tokio::test(start_paused = true)]
async fn an_ejected_instance_gets_its_probe_soon_after_the_open_period() {
    use crate::breaker::Breaker;
    use crate::config::BreakerPolicy;

    let s = stats(3);
    let c = candidates(&s, &[1, 1, 1]);
    let breaker = Breaker::new(&BreakerPolicy::default());
    s[2].reset_on_ejection(&breaker);
    let balancer = Balancer::new(LoadBalancing::PeakEwma, Some(21));
    for st in &s[..2] {
        st.observe_at(Duration::from_millis(1), true, Instant::now());
    }
    // Instance 2 fails fast five times: its cost balloons, then the breaker ejects it.
    for _ in 0..5 {
        s[2].observe_at(Duration::from_micros(100), false, Instant::now());
        breaker
            .try_acquire()
            .expect("closed")
            .failure_at(Instant::now());
    }
    assert!(!breaker.is_available());
    advance(Duration::from_secs(1)).await;
    assert!(breaker.is_available(), "probe time");
    // The caller offers it again; within a few picks it is chosen (and would take the probe).
    let first = (0..10).position(|_| balancer.pick_at(&c, Instant::now()) == Some(2));
    assert!(first.is_some(), "the probe-ready instance must not starve");
}
