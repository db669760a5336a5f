//! librdkafka's request and byte counters per Kafka client, per stored event, for each G9
//! variant's closed-loop runs (`FEDERATION_BENCH_KAFKA_STATS=1`; off by default).
//!
//! CPU per event says that one pipe costs more, not which client's traffic does: the counters
//! show requests of each kind, bytes on the wire and messages per event for every client of the
//! process (the plain pair's two, the SDK's producers, ack reader and subscriber) while each
//! variant ran. A client idle during a run still shows its background requests (metadata,
//! heartbeats, empty fetches): they cost the machine whichever variant is running.

use std::collections::BTreeMap;
use std::time::Duration;

use federation_sync::kafka_stats::{self, ClientTotals};

/// The environment variable that turns the counters on.
const SWITCH: &str = "FEDERATION_BENCH_KAFKA_STATS";
/// How often each client reports (a fraction of a run, so a run's difference is close).
const INTERVAL: Duration = Duration::from_millis(200);

/// Turn the counters on for the clients created from now on, when asked for; whether they are.
pub fn enable_if_asked() -> bool {
    let asked = std::env::var(SWITCH).is_ok_and(|v| !v.is_empty() && v != "0");
    if asked {
        kafka_stats::enable(INTERVAL);
    }
    asked
}

/// What every client did during one variant's runs, and how many events those runs stored.
#[derive(Debug, Default)]
pub struct ClientWork {
    events: u64,
    by_client: BTreeMap<String, ClientTotals>,
}

impl ClientWork {
    /// Add one run: the counters `before` and `after` it, `events` stored.
    pub fn add(
        &mut self,
        before: &BTreeMap<String, ClientTotals>,
        after: &BTreeMap<String, ClientTotals>,
        events: u64,
    ) {
        self.events += events;
        for (name, totals) in after {
            let run = totals.since(before.get(name));
            self.by_client.entry(name.clone()).or_default().add(&run);
        }
    }
}

/// The table: one row per client with traffic, per stored event.
pub fn table(names: &[&str], work: &[ClientWork]) -> String {
    let mut out = String::from(
        "#### Kafka clients per stored event (librdkafka statistics, closed-loop runs)\n\n\
         | variant running | client | requests /1k events | by kind /1k events | \
         tx B/event | rx B/event | msgs out /event | B/msg out | msgs in /event | B/msg in |\n\
         |---|---|---|---|---|---|---|---|---|---|\n",
    );
    for (name, work) in names.iter().zip(work) {
        if work.events == 0 {
            continue;
        }
        let per_k = |n: i64| n as f64 * 1000.0 / work.events as f64;
        let per = |n: i64| n as f64 / work.events as f64;
        let avg = |bytes: i64, msgs: i64| {
            if msgs > 0 {
                format!("{:.0}", bytes as f64 / msgs as f64)
            } else {
                "-".into()
            }
        };
        for (client, t) in &work.by_client {
            if t.requests == 0 {
                continue;
            }
            let kinds: Vec<String> = t
                .requests_by_kind
                .iter()
                .filter(|(_, n)| **n > 0)
                .map(|(kind, n)| format!("{kind} {:.1}", per_k(*n)))
                .collect();
            out.push_str(&format!(
                "| {name} | {client} | {:.1} | {} | {:.0} | {:.0} | {:.3} | {} | {:.3} | {} |\n",
                per_k(t.requests),
                kinds.join(", "),
                per(t.tx_bytes),
                per(t.rx_bytes),
                per(t.tx_messages),
                avg(t.tx_message_bytes, t.tx_messages),
                per(t.rx_messages),
                avg(t.rx_message_bytes, t.rx_messages),
            ));
        }
    }
    out
}
