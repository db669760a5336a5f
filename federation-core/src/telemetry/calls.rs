//! Lock-free per-call metrics: `federation_requests_total` + `federation_request_duration_seconds`
//! (and the same pair for attempts) kept in one set of atomics per label set.
//!
//! prometheus-client's `Histogram` keeps its buckets behind a mutex, and a call recorded a
//! counter and a histogram separately: three atomic read-modify-writes and a critical section
//! per call, on cache lines every worker thread touches. Here a call's label set owns one
//! [`CallCell`]: fixed duration buckets as `AtomicU64`s plus the sum in nanoseconds, so
//! recording is two relaxed `fetch_add`s and no lock. The counter is not stored separately:
//! every recorded event lands in exactly one bucket, so the count is the buckets' total, read
//! at scrape time. Both families are registered as views ([`CallFamily::counter_view`],
//! [`CallFamily::histogram_view`]) of one [`CallFamily`], and encode exactly as a
//! prometheus-client `Family` of `Counter`s and of `Histogram`s with the same buckets would
//! (`_total`; `_sum`, `_count`, `_bucket{le=...}` up to `+Inf`).
//!
//! A scrape reads the atomics one by one, so a sample recorded meanwhile may show in a bucket but
//! not yet in the sum; the count always equals the buckets' total.

use std::collections::HashMap;
use std::fmt;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, RwLock};
use std::time::Duration;

use prometheus_client::encoding::{EncodeMetric, MetricEncoder, NoLabelSet};
use prometheus_client::metrics::MetricType;

use super::labels::CallLabels;

/// Latency bucket bounds in seconds; 0.3 marks the P95 target.
pub(crate) const BUCKETS: [f64; 14] = [
    0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.3, 0.5, 1.0, 2.5, 5.0, 10.0,
];

/// [`BUCKETS`] in nanoseconds (exact: every bound is a whole number of nanoseconds).
const BOUNDS_NANOS: [u64; 14] = [
    1_000_000,
    2_500_000,
    5_000_000,
    10_000_000,
    25_000_000,
    50_000_000,
    100_000_000,
    250_000_000,
    300_000_000,
    500_000_000,
    1_000_000_000,
    2_500_000_000,
    5_000_000_000,
    10_000_000_000,
];

/// The counts of one label set: one bucket per bound plus `+Inf`, and the sum of durations.
#[derive(Debug, Default)]
pub(crate) struct CallCell {
    buckets: [AtomicU64; BOUNDS_NANOS.len() + 1],
    sum_nanos: AtomicU64,
}

impl CallCell {
    /// Counts one event of `duration` (`le` semantics: a duration equal to a bound is in it).
    #[inline]
    pub(crate) fn record(&self, duration: Duration) {
        let nanos = u64::try_from(duration.as_nanos()).unwrap_or(u64::MAX);
        let index = BOUNDS_NANOS
            .iter()
            .position(|&bound| nanos <= bound)
            .unwrap_or(BOUNDS_NANOS.len());
        if let Some(bucket) = self.buckets.get(index) {
            bucket.fetch_add(1, Ordering::Relaxed);
        }
        self.sum_nanos.fetch_add(nanos, Ordering::Relaxed);
    }

    /// Events recorded so far (the buckets' total).
    pub(crate) fn count(&self) -> u64 {
        self.buckets
            .iter()
            .map(|b| b.load(Ordering::Relaxed))
            .fold(0u64, u64::wrapping_add)
    }

    /// The non-cumulative bucket counts with their upper bounds (last: `+Inf`), the count and
    /// the sum in seconds.
    fn snapshot(&self) -> (Vec<(f64, u64)>, u64, f64) {
        let bounds = BUCKETS
            .iter()
            .copied()
            .chain(std::iter::once(f64::INFINITY));
        let buckets: Vec<(f64, u64)> = bounds
            .zip(self.buckets.iter().map(|b| b.load(Ordering::Relaxed)))
            .collect();
        let count = buckets
            .iter()
            .map(|&(_, n)| n)
            .fold(0u64, u64::wrapping_add);
        // Precision: f64 holds nanosecond sums exactly up to about 104 days of total latency.
        #[allow(
            clippy::cast_precision_loss,
            reason = "seconds as f64, as Prometheus wants"
        )]
        let sum = self.sum_nanos.load(Ordering::Relaxed) as f64 / 1e9;
        (buckets, count, sum)
    }
}

/// The cells of one family pair (requests or attempts), by label set. Cheap to clone.
#[derive(Clone, Default)]
pub(crate) struct CallFamily {
    cells: Arc<RwLock<HashMap<CallLabels, Arc<CallCell>>>>,
}

impl fmt::Debug for CallFamily {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("CallFamily").finish_non_exhaustive()
    }
}

impl CallFamily {
    /// The cell of `labels`, created on first use.
    pub(crate) fn get_or_create(&self, labels: &CallLabels) -> Arc<CallCell> {
        if let Some(cell) = crate::lock::read(&self.cells).get(labels) {
            return Arc::clone(cell);
        }
        let mut cells = crate::lock::write(&self.cells);
        Arc::clone(cells.entry(labels.clone()).or_default())
    }

    /// The family as a counter (`<name>_total`), for registration.
    pub(crate) fn counter_view(&self) -> CounterView {
        CounterView(self.clone())
    }

    /// The family as a histogram (`<name>_sum`, `_count`, `_bucket`), for registration.
    pub(crate) fn histogram_view(&self) -> HistogramView {
        HistogramView(self.clone())
    }

    fn encode_each(
        &self,
        encoder: &mut MetricEncoder<'_>,
        mut one: impl FnMut(MetricEncoder<'_>, &CallCell) -> Result<(), fmt::Error>,
    ) -> Result<(), fmt::Error> {
        let cells = crate::lock::read(&self.cells);
        for (labels, cell) in cells.iter() {
            one(encoder.encode_family(labels)?, cell)?;
        }
        Ok(())
    }

    fn is_empty(&self) -> bool {
        crate::lock::read(&self.cells).is_empty()
    }
}

/// A [`CallFamily`] encoded as a family of counters.
#[derive(Debug)]
pub(crate) struct CounterView(CallFamily);

impl EncodeMetric for CounterView {
    fn encode(&self, mut encoder: MetricEncoder<'_>) -> Result<(), fmt::Error> {
        self.0.encode_each(&mut encoder, |mut e, cell| {
            e.encode_counter::<NoLabelSet, _, u64>(&cell.count(), None)
        })
    }

    fn metric_type(&self) -> MetricType {
        MetricType::Counter
    }

    fn is_empty(&self) -> bool {
        self.0.is_empty()
    }
}

/// A [`CallFamily`] encoded as a family of histograms with the [`BUCKETS`] bounds.
#[derive(Debug)]
pub(crate) struct HistogramView(CallFamily);

impl EncodeMetric for HistogramView {
    fn encode(&self, mut encoder: MetricEncoder<'_>) -> Result<(), fmt::Error> {
        self.0.encode_each(&mut encoder, |mut e, cell| {
            let (buckets, count, sum) = cell.snapshot();
            e.encode_histogram::<NoLabelSet>(sum, count, &buckets, None)
        })
    }

    fn metric_type(&self) -> MetricType {
        MetricType::Histogram
    }

    fn is_empty(&self) -> bool {
        self.0.is_empty()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn durations_land_in_le_buckets_and_count_is_their_total() {
        let cell = CallCell::default();
        cell.record(Duration::from_millis(1)); // exactly on the first bound
        cell.record(Duration::from_micros(1_001));
        cell.record(Duration::from_secs(11)); // +Inf
        let (buckets, count, sum) = cell.snapshot();
        assert_eq!(buckets.len(), BUCKETS.len() + 1);
        assert_eq!(buckets[0], (0.001, 1));
        assert_eq!(buckets[1], (0.0025, 1));
        assert_eq!(buckets[14], (f64::INFINITY, 1));
        assert_eq!((count, cell.count()), (3, 3));
        assert!((sum - 11.002_001).abs() < 1e-9);
    }

    #[test]
    fn exposition_has_the_counter_and_histogram_form() {
        let metrics = crate::telemetry::Metrics::new();
        metrics.call("user", Some("a"), "success", Duration::from_millis(2));
        metrics.attempt("user", "a", "success", Duration::from_millis(400));
        let text = metrics.encode();
        let labels = r#"service="user",cluster="a",outcome="success""#;
        for line in [
            "# TYPE federation_requests counter".to_owned(),
            format!("federation_requests_total{{{labels}}} 1"),
            "# TYPE federation_request_duration_seconds histogram".to_owned(),
            format!("federation_request_duration_seconds_sum{{{labels}}} 0.002"),
            format!("federation_request_duration_seconds_count{{{labels}}} 1"),
            format!(r#"federation_request_duration_seconds_bucket{{le="0.001",{labels}}} 0"#),
            format!(r#"federation_request_duration_seconds_bucket{{le="0.0025",{labels}}} 1"#),
            format!(r#"federation_request_duration_seconds_bucket{{le="+Inf",{labels}}} 1"#),
            format!("federation_attempts_total{{{labels}}} 1"),
            format!(r#"federation_attempt_duration_seconds_bucket{{le="0.3",{labels}}} 0"#),
            format!(r#"federation_attempt_duration_seconds_bucket{{le="0.5",{labels}}} 1"#),
        ] {
            assert!(
                text.lines().any(|l| l == line),
                "missing {line:?} in\n{text}"
            );
        }
    }

    #[test]
    fn bounds_match_the_seconds() {
        for (secs, nanos) in BUCKETS.iter().zip(BOUNDS_NANOS) {
            #[allow(clippy::cast_precision_loss, reason = "exact for these values")]
            let back = nanos as f64 / 1e9;
            assert!((secs - back).abs() < 1e-15, "{secs} vs {nanos}");
        }
    }
}
