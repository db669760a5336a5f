//! The seeded fault schedule and the model of what is up.
//!
//! A chaos run that cannot be replayed cannot be debugged, so every fault comes from a small
//! seeded generator (splitmix64): the same seed gives the same schedule. Beside the schedule the
//! [`Model`] remembers, per instance, since when it has been alive and well, and since when each
//! Consul agent has been answering, so the invariants can tell "a call failed while something
//! was reachable" from "a call failed because everything was broken".

use std::time::{Duration, Instant};

/// splitmix64: tiny, seedable, good enough to pick faults.
#[derive(Clone, Debug)]
pub struct Rng(u64);

impl Rng {
    /// A generator seeded with `seed`.
    pub fn new(seed: u64) -> Self {
        Self(seed)
    }

    /// The next 64 random bits.
    pub fn next_u64(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }

    /// Uniform in `0..n` (0 when `n` is 0).
    pub fn below(&mut self, n: usize) -> usize {
        if n == 0 {
            return 0;
        }
        (self.next_u64() % n as u64) as usize
    }

    /// True with probability `p`.
    pub fn chance(&mut self, p: f64) -> bool {
        (self.next_u64() >> 11) as f64 / (1u64 << 53) as f64 <= p
    }
}

/// One injected fault.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Fault {
    /// Stop instance `i`.
    Kill(usize),
    /// Restart instance `i`.
    Revive(usize),
    /// Instance `i` answers 503.
    Unavailable(usize),
    /// Instance `i` answers after longer than the attempt timeout.
    Slow(usize),
    /// Instance `i` behaves normally again.
    Heal(usize),
    /// The Consul agent of cluster `c` goes down.
    ConsulDown(usize),
    /// The Consul agent of cluster `c` answers again.
    ConsulUp(usize),
    /// Every instance of cluster `c` stops.
    ClusterDown(usize),
    /// Every instance of cluster `c` restarts and behaves normally.
    ClusterUp(usize),
}

/// What the chaos run believes about the world.
#[derive(Debug)]
pub struct Model {
    /// Per instance: its cluster index.
    pub cluster_of: Vec<usize>,
    /// Per instance: alive (not killed).
    pub alive: Vec<bool>,
    /// Per instance: behaving normally (no 503, not slow).
    pub normal: Vec<bool>,
    /// Per instance: since when it has been alive and normal, if it is.
    pub well_since: Vec<Option<Instant>>,
    /// Per cluster: whether it is discovered through Consul.
    pub has_consul: Vec<bool>,
    /// Per cluster: since when its Consul agent has been up (None while down).
    pub consul_up_since: Vec<Option<Instant>>,
    /// Per cluster: when its Consul agent last went down.
    pub consul_down_at: Vec<Option<Instant>>,
}

impl Model {
    /// Everything up, since `now`.
    pub fn new(cluster_of: Vec<usize>, has_consul: Vec<bool>, now: Instant) -> Self {
        let n = cluster_of.len();
        let c = has_consul.len();
        Self {
            cluster_of,
            alive: vec![true; n],
            normal: vec![true; n],
            well_since: vec![Some(now); n],
            consul_up_since: vec![Some(now); c],
            consul_down_at: vec![None; c],
            has_consul,
        }
    }

    /// Draws the next fault: mostly instance faults, sometimes a whole cluster or its agent.
    pub fn draw(&self, rng: &mut Rng) -> Fault {
        let n = self.alive.len();
        let c = self.has_consul.len();
        let i = rng.below(n);
        match rng.below(20) {
            0..=4 if self.alive[i] => Fault::Kill(i),
            0..=4 => Fault::Revive(i),
            5..=7 => Fault::Unavailable(i),
            8..=9 => Fault::Slow(i),
            10..=14 => Fault::Heal(i),
            15..=16 => {
                let k = rng.below(c);
                match (self.has_consul[k], self.consul_up_since[k].is_some()) {
                    (true, true) => Fault::ConsulDown(k),
                    (true, false) => Fault::ConsulUp(k),
                    (false, _) => Fault::Heal(i),
                }
            }
            17 => Fault::ClusterDown(rng.below(c)),
            _ => Fault::ClusterUp(rng.below(c)),
        }
    }

    /// Records that `fault` was applied at `now`.
    pub fn apply(&mut self, fault: &Fault, now: Instant) {
        let mut set = |i: usize, alive: Option<bool>, normal: Option<bool>| {
            let was_well = self.alive[i] && self.normal[i];
            if let Some(a) = alive {
                self.alive[i] = a;
            }
            if let Some(ok) = normal {
                self.normal[i] = ok;
            }
            let is_well = self.alive[i] && self.normal[i];
            if !is_well {
                self.well_since[i] = None;
            } else if !was_well {
                self.well_since[i] = Some(now);
            }
        };
        match fault {
            Fault::Kill(i) => set(*i, Some(false), None),
            Fault::Revive(i) => set(*i, Some(true), None),
            Fault::Unavailable(i) | Fault::Slow(i) => set(*i, None, Some(false)),
            Fault::Heal(i) => set(*i, None, Some(true)),
            Fault::ClusterDown(c) | Fault::ClusterUp(c) => {
                let up = matches!(fault, Fault::ClusterUp(_));
                for i in 0..self.cluster_of.len() {
                    if self.cluster_of[i] == *c {
                        set(i, Some(up), up.then_some(true));
                    }
                }
            }
            Fault::ConsulDown(c) => {
                self.consul_up_since[*c] = None;
                self.consul_down_at[*c] = Some(now);
            }
            Fault::ConsulUp(c) => self.consul_up_since[*c] = Some(now),
        }
    }

    /// Whether instance `i` has been reachable *as the client can know it* for at least
    /// `settle` before `at`: alive and normal that long, and its cluster's registry has reported
    /// it healthy (agent up that long, or the instance was already well when the agent went down).
    pub fn settled(&self, i: usize, at: Instant, settle: Duration) -> bool {
        let Some(since) = self.well_since[i] else {
            return false;
        };
        if at.saturating_duration_since(since) < settle {
            return false;
        }
        let c = self.cluster_of[i];
        if !self.has_consul[c] {
            return true;
        }
        match (self.consul_up_since[c], self.consul_down_at[c]) {
            (Some(up), _) => at.saturating_duration_since(up) >= settle,
            (None, Some(down)) => down.saturating_duration_since(since) >= settle,
            (None, None) => false,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn same_seed_same_schedule() {
        let now = Instant::now();
        let model = Model::new(vec![0, 0, 1, 1], vec![true, false], now);
        let (mut a, mut b) = (Rng::new(9), Rng::new(9));
        let xs: Vec<Fault> = (0..50).map(|_| model.draw(&mut a)).collect();
        let ys: Vec<Fault> = (0..50).map(|_| model.draw(&mut b)).collect();
        assert_eq!(xs, ys);
    }

    #[test]
    fn an_instance_is_settled_only_after_being_well_long_enough() {
        let t0 = Instant::now();
        let mut model = Model::new(vec![0, 1], vec![true, false], t0);
        let settle = Duration::from_secs(2);
        assert!(model.settled(1, t0 + settle, settle));
        model.apply(&Fault::Kill(1), t0 + settle);
        model.apply(&Fault::Revive(1), t0 + settle * 2);
        assert!(!model.settled(1, t0 + settle * 2 + Duration::from_secs(1), settle));
        assert!(model.settled(1, t0 + settle * 3, settle));
        model.apply(&Fault::ConsulDown(0), t0 + settle * 3);
        assert!(
            model.settled(0, t0 + settle * 4, settle),
            "well before the agent died"
        );
    }
}
