//! Acknowledgements on the wire: many per record, and read back in either form.
//!
//! One ack record per applied change made the brokers store, replicate and serve a second record
//! for every change, and the origin's ack reader decode one record per change
//! (`federation bench --scenario sync`, docs/BENCHMARKS.md G9). The subscriber therefore
//! collects the acks of the messages finished since its last offset commit ([`OwedAcks`]) and,
//! right before that commit, queues them as few records as possible per origin: compact records
//! ([`crate::ack_compact`]: the cluster once, each ack a short array, "applied" implicit), split
//! so that no record exceeds the size limit. The reader ([`decode`]) also takes the formats
//! written before (a JSON array of [`Ack`] objects; a single ack object), so an acks topic that
//! still holds such records rebuilds the same status.

use rdkafka::message::OwnedHeaders;

use crate::ack_compact;
use crate::process::send as send_report;
use crate::runtime::Shared;
use crate::status::{Ack, AckView};

/// Largest ack record (when `sync.max_message_bytes` is not smaller): far below any broker's
/// limit, and a commit batch's acks (≈ 200 bytes each, up to 1,000) fit in one.
const RECORD_BYTES: usize = 256 * 1024;

/// Acks owed to origin clusters, collected until the next offset commit. Each ack is encoded
/// into its origin's records when it is owed, so no ack is kept until the commit (up to
/// [`crate::commits::COMMIT_BATCH`] of them, each several strings, freed in bulk: measured as
/// allocator work in docs/BENCHMARKS.md G9) and the record buffers keep their capacity.
#[derive(Debug)]
pub(crate) struct OwedAcks {
    limit: usize,
    /// Few origins: found by name without allocating one per ack.
    by_origin: Vec<(String, Records)>,
}

impl OwedAcks {
    /// Nothing owed yet; records of at most the configured size.
    pub(crate) fn new(shared: &Shared) -> Self {
        let limit = usize::try_from(shared.config.max_message_bytes)
            .unwrap_or(usize::MAX)
            .min(RECORD_BYTES);
        Self::with_limit(limit)
    }

    fn with_limit(limit: usize) -> Self {
        Self {
            limit,
            by_origin: Vec::new(),
        }
    }

    /// Owe `ack` to `origin`.
    pub(crate) fn push(&mut self, origin: &str, ack: &Ack) {
        if let Some((_, records)) = self.by_origin.iter_mut().find(|(o, _)| o == origin) {
            records.push(ack);
            return;
        }
        let mut records = Records::new(self.limit);
        records.push(ack);
        self.by_origin.push((origin.to_string(), records));
    }
}

/// Ack records being filled: compact records ([`crate::ack_compact`]) of one consuming cluster
/// each, at most `limit` bytes unless a single ack is larger on its own (it then travels alone).
#[derive(Debug)]
struct Records {
    limit: usize,
    full: Vec<Vec<u8>>,
    /// The open record (empty: none open); its buffer keeps its capacity from commit to commit.
    open: Vec<u8>,
    /// The open record's cluster and header length.
    cluster: String,
    header: usize,
}

impl Records {
    fn new(limit: usize) -> Self {
        Self {
            limit,
            full: Vec::new(),
            open: Vec::new(),
            cluster: String::new(),
            header: 0,
        }
    }

    fn push(&mut self, ack: &Ack) {
        if !self.open.is_empty() && self.cluster != ack.cluster {
            self.finish();
        }
        if self.open.is_empty() {
            self.start(&ack.cluster);
        }
        let before = self.open.len();
        if before > self.header {
            self.open.push(b',');
        }
        ack_compact::write_ack(ack, &mut self.open);
        if self.open.len() + ack_compact::CLOSE.len() > self.limit && before > self.header {
            let tail = self.open.split_off(before + 1);
            self.open.truncate(before);
            self.finish();
            self.start(&ack.cluster);
            self.open.extend_from_slice(&tail);
        }
    }

    fn start(&mut self, cluster: &str) {
        if self.cluster != cluster {
            self.cluster.clear();
            self.cluster.push_str(cluster);
        }
        ack_compact::open(cluster, &mut self.open);
        self.header = self.open.len();
    }

    /// Close the open record into the full ones.
    fn finish(&mut self) {
        self.open.extend_from_slice(ack_compact::CLOSE);
        self.full.push(std::mem::take(&mut self.open));
    }

    /// Close the open record; the records, in order.
    fn close(&mut self) -> impl Iterator<Item = &[u8]> {
        let open = if self.open.is_empty() {
            None
        } else {
            self.open.extend_from_slice(ack_compact::CLOSE);
            Some(self.open.as_slice())
        };
        self.full.iter().map(Vec::as_slice).chain(open)
    }

    /// Forget every record (after they were sent), keeping the open buffer's capacity.
    fn clear(&mut self) {
        self.full.clear();
        self.open.clear();
    }
}

/// The records carrying `acks` (see [`Records`]).
#[cfg(test)]
pub(crate) fn encode(acks: &[Ack], limit: usize) -> Vec<Vec<u8>> {
    let mut records = Records::new(limit);
    for ack in acks {
        records.push(ack);
    }
    records.close().map(<[u8]>::to_vec).collect()
}

/// The acks of one record, in any format ever written: a compact record (the current one), a
/// JSON array of ack objects, or one ack object (the first format); their strings borrowed
/// from `payload`.
pub(crate) fn decode(payload: &[u8]) -> Result<Vec<AckView<'_>>, serde_json::Error> {
    use serde::de::Error;
    let first = payload.iter().find(|b| !b.is_ascii_whitespace());
    let acks = if first == Some(&b'[') {
        serde_json::from_slice(payload)?
    } else {
        match serde_json::from_slice::<ack_compact::RecordView<'_>>(payload) {
            Ok(record) => record.into_acks().map_err(serde_json::Error::custom)?,
            Err(compact) => match serde_json::from_slice::<AckView<'_>>(payload) {
                Ok(one) => vec![one],
                Err(single) => {
                    return Err(serde_json::Error::custom(format!(
                        "neither a compact ack record ({compact}) nor a single ack ({single})"
                    )));
                }
            },
        }
    };
    match acks.iter().find_map(AckView::invalid) {
        Some(why) => Err(serde_json::Error::custom(why)),
        None => Ok(acks),
    }
}

/// Queue every owed ack in the producers of their origins (without waiting for the brokers;
/// see [`crate::process::send`]), keyed by this cluster's name so one cluster's ack records stay
/// in order.
pub(crate) async fn send(shared: &Shared, owed: &mut OwedAcks) {
    for (origin, records) in &mut owed.by_origin {
        let topic = shared.config.acks_topic(origin);
        for record in records.close() {
            send_report(
                shared,
                origin,
                &topic,
                &shared.local,
                record,
                OwnedHeaders::new(),
            )
            .await;
        }
        records.clear();
    }
}

/// Queue one ack at once (replayed dead letters, which are committed one by one).
pub(crate) async fn send_now(shared: &Shared, ack: Option<(String, Ack)>) {
    let mut owed = OwedAcks::new(shared);
    if let Some((origin, ack)) = ack {
        owed.push(&origin, &ack);
    }
    send(shared, &mut owed).await;
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::Hlc;
    use crate::status::TargetStatus;

    fn owned(payload: &[u8]) -> Result<Vec<Ack>, serde_json::Error> {
        decode(payload).map(|views| views.iter().map(AckView::to_ack).collect())
    }

    pub(super) fn ack(n: u64) -> Ack {
        Ack {
            event_id: format!("{n:032x}"),
            hlc: Hlc {
                wall_ms: 1_700_000_000_000 + n,
                logical: 0,
            },
            entity_type: "user".into(),
            entity_id: n.to_string(),
            cluster: "looma".into(),
            status: TargetStatus::Completed {
                effect: "applied".into(),
            },
        }
    }

    #[test]
    fn acks_travel_in_records_under_the_limit_and_come_back_whole_and_in_order() {
        let acks: Vec<Ack> = (0..50).map(ack).collect();
        let one = encode(&acks[..1], 1 << 20)[0].len();
        let records = encode(&acks, one * 10);
        assert!(records.len() >= 3, "split: {} records", records.len());
        assert!(records.iter().all(|r| r.len() <= one * 10));
        let back: Vec<Ack> = records
            .iter()
            .flat_map(|r| owned(r).expect("each record decodes"))
            .collect();
        assert_eq!(back, acks);
        assert_eq!(encode(&acks, 1 << 20).len(), 1, "all in one record");
        assert!(encode(&[], 1 << 20).is_empty(), "nothing owed: no record");
    }

    #[test]
    fn an_ack_larger_than_the_limit_travels_alone() {
        let mut big = ack(2);
        big.status = TargetStatus::Failed {
            reason: "x".repeat(500),
        };
        let records = encode(&[ack(1), big.clone(), ack(3)], 300);
        assert_eq!(records.len(), 3);
        assert_eq!(owned(&records[1]).expect("decodes"), vec![big]);
    }

    #[test]
    fn an_applied_ack_is_a_short_array_and_any_other_status_travels_with_it() {
        let record = encode(&[ack(1)], 1 << 20).remove(0);
        let text = String::from_utf8(record.clone()).expect("utf-8");
        assert_eq!(
            text,
            r#"{"v":2,"cluster":"looma","acks":[["00000000000000000000000000000001",1700000000001,0,"user","1"]]}"#
        );
        let many: Vec<Ack> = (0..100).map(ack).collect();
        let objects = serde_json::to_vec(&many).expect("encodes").len();
        let compact = encode(&many, 1 << 20)[0].len();
        assert!(compact * 5 < objects * 2, "{compact} vs {objects} bytes");
        let others = [
            TargetStatus::Completed {
                effect: "duplicate".into(),
            },
            TargetStatus::Failed {
                reason: "no \"handler\"".into(),
            },
            TargetStatus::Pending,
        ];
        let acks: Vec<Ack> = others
            .into_iter()
            .enumerate()
            .map(|(n, status)| Ack {
                status,
                ..ack(n as u64)
            })
            .collect();
        let records = encode(&acks, 1 << 20);
        assert_eq!(owned(&records[0]).expect("decodes"), acks);
    }

    #[test]
    fn acks_of_different_clusters_travel_in_records_of_their_own() {
        let other = Ack {
            cluster: "third".into(),
            ..ack(2)
        };
        let acks = [ack(1), other, ack(3)];
        let records = encode(&acks, 1 << 20);
        assert_eq!(records.len(), 3);
        let back: Vec<Ack> = records
            .iter()
            .flat_map(|r| owned(r).expect("decodes"))
            .collect();
        assert_eq!(back, acks);
    }

    #[test]
    fn a_broken_or_unknown_compact_record_is_an_error_that_says_why() {
        let cases: [(&[u8], &str); 4] = [
            (br#"{"v":3,"cluster":"looma","acks":[]}"#, "version 3"),
            (
                br#"{"v":2,"cluster":"looma","acks":[["e",1,0,"user"]]}"#,
                "entity id",
            ),
            (
                br#"{"v":2,"cluster":"looma","acks":[["e",1,0,"user","1",{"state":"completed"}]]}"#,
                "effect",
            ),
            (br#"{"v":2,"acks":[]}"#, "compact ack record"),
        ];
        for (payload, why) in cases {
            let error = decode(payload).expect_err("not a valid record").to_string();
            assert!(error.contains(why), "{error} should say {why}");
        }
    }

    #[test]
    fn records_in_the_formats_written_before_are_still_read() {
        let old = serde_json::to_vec(&ack(7)).expect("encodes");
        assert_eq!(owned(&old).expect("decodes"), vec![ack(7)]);
        let array = serde_json::to_vec(&[ack(5), ack(6)]).expect("encodes");
        assert_eq!(owned(&array).expect("decodes"), vec![ack(5), ack(6)]);
        let spaced = [b" \n".as_slice(), &encode(&[ack(8)], 1 << 20)[0]].concat();
        assert_eq!(owned(&spaced).expect("decodes"), vec![ack(8)]);
        assert!(
            decode(b"[{\"event_id\": 1}]").is_err(),
            "a broken record is an error"
        );
        assert!(decode(b"not json").is_err());
        let no_effect = br#"[{"event_id":"e","hlc":{"wall_ms":1,"logical":0},"entity_type":"user","entity_id":"1","cluster":"looma","status":{"state":"completed"}}]"#;
        assert!(
            decode(no_effect).is_err(),
            "a completed ack needs its effect"
        );
        let escaped = serde_json::to_vec(&Ack {
            entity_id: "a\"b".into(),
            ..ack(9)
        })
        .expect("encodes");
        assert_eq!(owned(&escaped).expect("decodes")[0].entity_id, "a\"b");
        let quoted = Ack {
            entity_id: "a\"b".into(),
            cluster: "lo\\oma".into(),
            ..ack(9)
        };
        let compact = encode(std::slice::from_ref(&quoted), 1 << 20);
        assert_eq!(owned(&compact[0]).expect("decodes"), vec![quoted]);
    }

    #[test]
    fn owed_acks_are_grouped_by_origin_and_sent_once() {
        let mut owed = OwedAcks::with_limit(1 << 20);
        owed.push("zervigo", &ack(1));
        owed.push("third", &ack(2));
        owed.push("zervigo", &ack(3));
        let sent = |owed: &mut OwedAcks| -> Vec<(String, Vec<Ack>)> {
            let out = owed
                .by_origin
                .iter_mut()
                .map(|(origin, records)| {
                    let acks = records.close().flat_map(|r| owned(r).expect("decodes"));
                    (origin.clone(), acks.collect())
                })
                .collect();
            owed.by_origin.iter_mut().for_each(|(_, r)| r.clear());
            out
        };
        assert_eq!(
            sent(&mut owed),
            vec![
                ("zervigo".to_string(), vec![ack(1), ack(3)]),
                ("third".to_string(), vec![ack(2)])
            ]
        );
        assert!(
            sent(&mut owed).iter().all(|(_, acks)| acks.is_empty()),
            "nothing owed twice"
        );
        owed.push("third", &ack(4));
        assert_eq!(sent(&mut owed)[1], ("third".to_string(), vec![ack(4)]));
    }
}

/// Cost of the ack wire per ack, the earlier JSON objects against the compact record (run with
/// `cargo test --release -p federation-sync --lib -- --ignored ack_wire_cost --nocapture`).
#[cfg(test)]
mod cost {
    use std::time::Instant;

    use super::*;

    #[test]
    #[ignore = "a measurement, not a check"]
    fn ack_wire_cost() {
        let acks: Vec<Ack> = (0..1_000).map(super::tests::ack).collect();
        let rounds = 2_000;
        let time = |what: &str, f: &dyn Fn() -> usize| {
            let start = Instant::now();
            let mut bytes = 0;
            for _ in 0..rounds {
                bytes = f();
            }
            let ns = start.elapsed().as_nanos() as f64 / (rounds * acks.len()) as f64;
            println!(
                "{what}: {ns:.0} ns per ack, {} bytes per ack",
                bytes / acks.len()
            );
        };
        time("objects: encode + decode", &|| {
            let mut record = vec![b'['];
            for (n, ack) in acks.iter().enumerate() {
                if n > 0 {
                    record.push(b',');
                }
                let _ = serde_json::to_writer(&mut record, ack);
            }
            record.push(b']');
            assert_eq!(decode(&record).expect("decodes").len(), acks.len());
            record.len()
        });
        time("compact: encode + decode", &|| {
            let record = encode(&acks, 1 << 20).remove(0);
            assert_eq!(decode(&record).expect("decodes").len(), acks.len());
            record.len()
        });
    }
}
