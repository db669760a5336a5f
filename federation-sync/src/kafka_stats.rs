//! librdkafka's own counters per client (requests, bytes, messages), for measuring what each
//! Kafka client of a process costs the brokers and the network.
//!
//! CPU per event says that the sync is slower than a plain producer → consumer pair, not which
//! of its clients does the extra work (the change stream's producer and consumer, the ack
//! producer, the ack reader). librdkafka counts every request it sends per client; with
//! [`enable`] called before the clients are created, every client of the sync (and any client
//! created with [`StatsContext`]) reports its counters every interval, and [`snapshot`] returns
//! the latest totals, so a benchmark can take the difference over a run. Off by default: nothing
//! is emitted, parsed or stored.

use std::collections::BTreeMap;
use std::sync::Mutex;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use rdkafka::ClientConfig;
use rdkafka::ClientContext;
use rdkafka::consumer::ConsumerContext;
use rdkafka::statistics::Statistics;

/// Statistics interval of the clients created from now on, ms (0: off).
static INTERVAL_MS: AtomicU64 = AtomicU64::new(0);

/// Latest totals of every client that reported, by librdkafka's client name.
static TOTALS: Mutex<BTreeMap<String, ClientTotals>> = Mutex::new(BTreeMap::new());

/// Make every Kafka client created from now on report its counters every `interval`.
pub fn enable(interval: Duration) {
    let ms = u64::try_from(interval.as_millis())
        .unwrap_or(u64::MAX)
        .max(1);
    INTERVAL_MS.store(ms, Ordering::Relaxed);
}

/// Set the statistics interval on `config` when [`enable`]d.
pub(crate) fn configure(config: &mut ClientConfig) {
    let ms = INTERVAL_MS.load(Ordering::Relaxed);
    if ms > 0 {
        config.set("statistics.interval.ms", ms.to_string());
    }
}

/// One client's counters since it was created, as of its latest report.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct ClientTotals {
    /// The `client.id` it was created with (the sync names each client by its role).
    pub client_id: String,
    /// `producer` or `consumer`.
    pub kind: String,
    /// Requests sent to brokers, all kinds.
    pub requests: i64,
    /// Bytes sent to brokers.
    pub tx_bytes: i64,
    /// Bytes received from brokers.
    pub rx_bytes: i64,
    /// Messages produced.
    pub tx_messages: i64,
    /// Bytes of the messages produced (payloads and keys).
    pub tx_message_bytes: i64,
    /// Messages consumed.
    pub rx_messages: i64,
    /// Bytes of the messages consumed.
    pub rx_message_bytes: i64,
    /// Requests by kind (`Produce`, `Fetch`, `OffsetCommit`, `Heartbeat`, …), all brokers.
    pub requests_by_kind: BTreeMap<String, i64>,
}

impl ClientTotals {
    fn of(statistics: &Statistics) -> Self {
        let mut requests_by_kind = BTreeMap::new();
        for broker in statistics.brokers.values() {
            for (kind, count) in &broker.req {
                if *count > 0 {
                    *requests_by_kind.entry(kind.clone()).or_insert(0) += count;
                }
            }
        }
        Self {
            client_id: statistics.client_id.clone(),
            kind: statistics.client_type.clone(),
            requests: statistics.tx,
            tx_bytes: statistics.tx_bytes,
            rx_bytes: statistics.rx_bytes,
            tx_messages: statistics.txmsgs,
            tx_message_bytes: statistics.txmsg_bytes,
            rx_messages: statistics.rxmsgs,
            rx_message_bytes: statistics.rxmsg_bytes,
            requests_by_kind,
        }
    }

    /// What this client did since `earlier` (the same client's older totals; all of it when
    /// there are none).
    #[must_use]
    pub fn since(&self, earlier: Option<&ClientTotals>) -> ClientTotals {
        let Some(earlier) = earlier else {
            return self.clone();
        };
        let mut requests_by_kind = self.requests_by_kind.clone();
        for (kind, count) in &mut requests_by_kind {
            *count -= earlier.requests_by_kind.get(kind).copied().unwrap_or(0);
        }
        requests_by_kind.retain(|_, count| *count != 0);
        ClientTotals {
            client_id: self.client_id.clone(),
            kind: self.kind.clone(),
            requests: self.requests - earlier.requests,
            tx_bytes: self.tx_bytes - earlier.tx_bytes,
            rx_bytes: self.rx_bytes - earlier.rx_bytes,
            tx_messages: self.tx_messages - earlier.tx_messages,
            tx_message_bytes: self.tx_message_bytes - earlier.tx_message_bytes,
            rx_messages: self.rx_messages - earlier.rx_messages,
            rx_message_bytes: self.rx_message_bytes - earlier.rx_message_bytes,
            requests_by_kind,
        }
    }

    /// Add `other`'s counts to these (summing runs).
    pub fn add(&mut self, other: &ClientTotals) {
        if self.client_id.is_empty() {
            self.client_id.clone_from(&other.client_id);
            self.kind.clone_from(&other.kind);
        }
        self.requests += other.requests;
        self.tx_bytes += other.tx_bytes;
        self.rx_bytes += other.rx_bytes;
        self.tx_messages += other.tx_messages;
        self.tx_message_bytes += other.tx_message_bytes;
        self.rx_messages += other.rx_messages;
        self.rx_message_bytes += other.rx_message_bytes;
        for (kind, count) in &other.requests_by_kind {
            *self.requests_by_kind.entry(kind.clone()).or_insert(0) += count;
        }
    }
}

/// Record a client's report (called from its context's `stats` callback).
pub(crate) fn record(statistics: &Statistics) {
    if INTERVAL_MS.load(Ordering::Relaxed) == 0 {
        return;
    }
    let totals = ClientTotals::of(statistics);
    let mut all = TOTALS.lock().unwrap_or_else(|p| p.into_inner());
    all.insert(statistics.name.clone(), totals);
}

/// The latest totals of every client that reported, by librdkafka's client name (unique in the
/// process: `<client.id>#<kind>-<n>`).
pub fn snapshot() -> BTreeMap<String, ClientTotals> {
    TOTALS.lock().unwrap_or_else(|p| p.into_inner()).clone()
}

/// A client context that records the client's statistics (when [`enable`]d) and otherwise
/// behaves as rdkafka's default context.
#[derive(Clone, Copy, Debug, Default)]
pub struct StatsContext;

impl ClientContext for StatsContext {
    fn stats(&self, statistics: Statistics) {
        record(&statistics);
    }
}

impl ConsumerContext for StatsContext {}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_difference_counts_what_happened_in_between() {
        let totals = |requests: i64, produce: i64| ClientTotals {
            requests,
            tx_messages: requests * 10,
            requests_by_kind: BTreeMap::from([
                ("Produce".to_string(), produce),
                ("Metadata".to_string(), 2),
            ]),
            ..ClientTotals::default()
        };
        let run = totals(50, 40).since(Some(&totals(10, 5)));
        assert_eq!((run.requests, run.tx_messages), (40, 400));
        assert_eq!(
            run.requests_by_kind,
            BTreeMap::from([("Produce".to_string(), 35)]),
            "kinds that did not change are left out"
        );
        assert_eq!(totals(3, 1).since(None), totals(3, 1));
    }
}
