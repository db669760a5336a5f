//! Aggregates over recorded calls: success rate, latency percentiles, cluster shares.
//!
//! Averages hide the tail users feel, so latency is reported as p50 and p95 (nearest-rank on the
//! sorted latencies of the group); shares are computed over calls that actually reached a
//! cluster, so cache hits and failed calls do not dilute "who served the traffic".

use std::collections::BTreeMap;
use std::time::Duration;

use serde::Serialize;

use super::driver::Sample;

/// Counts and latencies of a group of calls.
#[derive(Clone, Debug, Default, PartialEq, Serialize)]
pub struct Totals {
    /// Calls made.
    pub calls: u64,
    /// Calls that succeeded (2xx).
    pub ok: u64,
    /// `ok / calls` in percent (100 when there were no calls).
    pub success_percent: f64,
    /// Median latency in milliseconds.
    pub p50_ms: f64,
    /// 95th percentile latency in milliseconds.
    pub p95_ms: f64,
    /// Attempts that failed but were absorbed by a retry or a failover.
    pub failed_attempts: u64,
    /// Calls answered by the cache.
    pub cache_hits: u64,
}

impl Totals {
    /// Totals over `samples`.
    pub fn of<'a>(samples: impl IntoIterator<Item = &'a Sample>) -> Self {
        let mut latencies = Vec::new();
        let mut totals = Totals::default();
        for s in samples {
            totals.calls += 1;
            totals.ok += u64::from(s.ok);
            totals.failed_attempts += u64::from(s.failed_attempts);
            totals.cache_hits += u64::from(s.cached);
            latencies.push(s.latency);
        }
        latencies.sort_unstable();
        totals.success_percent = percent(totals.ok, totals.calls);
        totals.p50_ms = millis(percentile(&latencies, 0.50));
        totals.p95_ms = millis(percentile(&latencies, 0.95));
        totals
    }

    /// Cache hits as a share of calls (0–1), or `None` without calls.
    pub fn cache_hit_ratio(&self) -> Option<f64> {
        (self.calls > 0).then(|| round3(self.cache_hits as f64 / self.calls as f64))
    }
}

/// `part / whole` in percent, rounded to 3 decimals; 100 when `whole` is 0.
pub fn percent(part: u64, whole: u64) -> f64 {
    if whole == 0 {
        100.0
    } else {
        round3(part as f64 * 100.0 / whole as f64)
    }
}

/// The nearest-rank percentile `q` (0–1) of sorted values; zero when empty.
pub fn percentile(sorted: &[Duration], q: f64) -> Duration {
    if sorted.is_empty() {
        return Duration::ZERO;
    }
    let rank = (q * sorted.len() as f64).ceil() as usize;
    sorted[rank.clamp(1, sorted.len()) - 1]
}

/// Milliseconds rounded to 3 decimals.
pub fn millis(d: Duration) -> f64 {
    round3(d.as_secs_f64() * 1000.0)
}

/// Rounds to 3 decimals (keeps the JSON readable).
pub fn round3(x: f64) -> f64 {
    (x * 1000.0).round() / 1000.0
}

/// Calls served upstream per cluster.
pub fn served_by<'a>(samples: impl IntoIterator<Item = &'a Sample>) -> BTreeMap<String, u64> {
    let mut counts = BTreeMap::new();
    for s in samples {
        if let Some(cluster) = &s.cluster {
            *counts.entry(cluster.to_string()).or_insert(0) += 1;
        }
    }
    counts
}

/// Share (0–1) of upstream-served calls per cluster, for every cluster in `clusters`.
pub fn shares(counts: &BTreeMap<String, u64>, clusters: &[String]) -> BTreeMap<String, f64> {
    let total: u64 = counts.values().sum();
    clusters
        .iter()
        .map(|c| {
            let n = counts.get(c).copied().unwrap_or(0);
            let share = if total == 0 {
                0.0
            } else {
                round3(n as f64 / total as f64)
            };
            (c.clone(), share)
        })
        .collect()
}

/// The sum over every label set of counter `name` in a Prometheus text exposition.
pub fn counter_total(exposition: &str, name: &str) -> u64 {
    exposition
        .lines()
        .filter(|line| {
            line.strip_prefix(name)
                .is_some_and(|rest| rest.starts_with('{') || rest.starts_with(' '))
        })
        .filter_map(|line| line.rsplit(' ').next()?.parse::<f64>().ok())
        .sum::<f64>() as u64
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ms(v: u64) -> Duration {
        Duration::from_millis(v)
    }

    #[test]
    fn nearest_rank_percentiles() {
        let sorted: Vec<Duration> = (1..=100).map(ms).collect();
        assert_eq!(percentile(&sorted, 0.50), ms(50));
        assert_eq!(percentile(&sorted, 0.95), ms(95));
        assert_eq!(percentile(&[ms(7)], 0.95), ms(7));
        assert_eq!(percentile(&[], 0.5), Duration::ZERO);
    }

    #[test]
    fn percent_of_nothing_is_full() {
        assert_eq!(percent(0, 0), 100.0);
        assert_eq!(percent(999, 1000), 99.9);
    }

    #[test]
    fn counters_sum_over_labels() {
        let text = "# HELP federation_ejections Instances taken out\n\
                    federation_ejections_total{service=\"user\",instance=\"a\"} 2\n\
                    federation_ejections_total{service=\"user\",instance=\"b\"} 1\n\
                    federation_ejections_totally 9\n";
        assert_eq!(counter_total(text, "federation_ejections_total"), 3);
        assert_eq!(counter_total("", "federation_ejections_total"), 0);
    }

    #[test]
    fn shares_cover_every_cluster() {
        let counts = BTreeMap::from([("looma".to_owned(), 3u64), ("zervigo".to_owned(), 1)]);
        let clusters = vec!["zervigo".to_owned(), "looma".to_owned(), "x".to_owned()];
        let s = shares(&counts, &clusters);
        assert_eq!(s["looma"], 0.75);
        assert_eq!(s["x"], 0.0);
    }
}
