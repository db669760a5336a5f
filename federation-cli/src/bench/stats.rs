//! Latency and throughput summaries: HDR histograms and medians across repetitions.
//!
//! A mean hides the tail and a single run hides the noise of a shared machine, so every
//! measurement here is summarised as percentiles from an HDR histogram (3 significant digits,
//! 1 ns to 60 s, so p99 is exact to 0.1 %) and every goal is judged on the median of
//! per-repetition ratios, which a single noisy repetition cannot move.

use std::time::Duration;

use hdrhistogram::Histogram;

/// Largest latency the histograms can hold; longer samples are clamped to it.
const MAX_NANOS: u64 = 60_000_000_000;

/// The outcome of one measured run of one variant.
#[derive(Clone, Debug, Default)]
pub struct Sample {
    /// Median latency.
    pub p50: Duration,
    /// 99th percentile latency.
    pub p99: Duration,
    /// Mean latency.
    pub mean: Duration,
    /// Completed operations per second of wall time.
    pub throughput: f64,
    /// Operations measured.
    pub count: u64,
    /// Operations that failed (counted in `count`).
    pub errors: u64,
}

/// Collects raw latencies (nanoseconds) of one run; cheap to push from a hot loop.
#[derive(Debug, Default)]
pub struct Recorder {
    nanos: Vec<u64>,
    errors: u64,
}

impl Recorder {
    /// An empty recorder with room for `capacity` samples.
    pub fn with_capacity(capacity: usize) -> Self {
        Self {
            nanos: Vec::with_capacity(capacity),
            errors: 0,
        }
    }

    /// Records one operation.
    pub fn record(&mut self, latency: Duration, ok: bool) {
        self.nanos
            .push(u64::try_from(latency.as_nanos()).unwrap_or(MAX_NANOS));
        if !ok {
            self.errors += 1;
        }
    }

    /// Moves every sample of `other` into `self`.
    pub fn merge(&mut self, mut other: Recorder) {
        self.nanos.append(&mut other.nanos);
        self.errors += other.errors;
    }

    /// Summarises the run; `elapsed` is the wall time the operations took.
    pub fn summarise(&self, elapsed: Duration) -> Sample {
        let Some(histogram) = histogram(&self.nanos) else {
            return Sample {
                errors: self.errors,
                ..Sample::default()
            };
        };
        let count = self.nanos.len() as u64;
        let secs = elapsed.as_secs_f64();
        Sample {
            p50: Duration::from_nanos(histogram.value_at_quantile(0.50)),
            p99: Duration::from_nanos(histogram.value_at_quantile(0.99)),
            mean: Duration::from_nanos(histogram.mean() as u64),
            throughput: if secs > 0.0 { count as f64 / secs } else { 0.0 },
            count,
            errors: self.errors,
        }
    }
}

fn histogram(nanos: &[u64]) -> Option<Histogram<u64>> {
    if nanos.is_empty() {
        return None;
    }
    let mut h = Histogram::<u64>::new_with_bounds(1, MAX_NANOS, 3).ok()?;
    for &n in nanos {
        h.saturating_record(n.clamp(1, MAX_NANOS));
    }
    Some(h)
}

/// The p-quantile (0–1) of `values` (nearest rank); `None` when empty.
pub fn quantile(values: &[Duration], q: f64) -> Option<Duration> {
    let nanos: Vec<u64> = values
        .iter()
        .map(|d| u64::try_from(d.as_nanos()).unwrap_or(MAX_NANOS))
        .collect();
    histogram(&nanos).map(|h| Duration::from_nanos(h.value_at_quantile(q)))
}

/// The median of `values` (mean of the middle two for an even count); `None` when empty.
pub fn median(values: &[f64]) -> Option<f64> {
    let mut sorted: Vec<f64> = values.iter().copied().filter(|v| v.is_finite()).collect();
    if sorted.is_empty() {
        return None;
    }
    sorted.sort_by(f64::total_cmp);
    let mid = sorted.len() / 2;
    Some(if sorted.len().is_multiple_of(2) {
        (sorted[mid - 1] + sorted[mid]) / 2.0
    } else {
        sorted[mid]
    })
}

/// The median sample of several repetitions, field by field.
pub fn median_sample(samples: &[Sample]) -> Sample {
    let pick = |f: fn(&Sample) -> f64| median(&samples.iter().map(f).collect::<Vec<_>>());
    let secs = |v: Option<f64>| Duration::from_secs_f64(v.unwrap_or(0.0).max(0.0));
    Sample {
        p50: secs(pick(|s| s.p50.as_secs_f64())),
        p99: secs(pick(|s| s.p99.as_secs_f64())),
        mean: secs(pick(|s| s.mean.as_secs_f64())),
        throughput: pick(|s| s.throughput).unwrap_or(0.0),
        count: samples.iter().map(|s| s.count).sum(),
        errors: samples.iter().map(|s| s.errors).sum(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn median_of_odd_and_even_counts() {
        assert_eq!(median(&[3.0, 1.0, 2.0]), Some(2.0));
        assert_eq!(median(&[4.0, 1.0, 2.0, 3.0]), Some(2.5));
        assert_eq!(median(&[]), None);
    }

    #[test]
    fn recorder_reports_percentiles_and_errors() {
        let mut r = Recorder::with_capacity(100);
        for i in 1..=100u64 {
            r.record(Duration::from_micros(i), i != 7);
        }
        let s = r.summarise(Duration::from_secs(1));
        assert_eq!(s.count, 100);
        assert_eq!(s.errors, 1);
        assert!((s.throughput - 100.0).abs() < 1e-9);
        let p50 = s.p50.as_nanos();
        assert!((49_900..=50_100).contains(&p50), "p50 {p50}");
        let p99 = s.p99.as_nanos();
        assert!((98_900..=99_100).contains(&p99), "p99 {p99}");
    }
}
