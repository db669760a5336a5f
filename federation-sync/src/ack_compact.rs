//! The compact ack record (wire version 2): the consuming cluster once, each ack a short array,
//! and "completed, applied" (nearly every ack) left implicit.
//!
//! An ack as a JSON object repeated its field names, its cluster and its status for every change
//! (≈ 194 bytes per stored event in `federation bench --scenario sync` with
//! `FEDERATION_BENCH_KAFKA_STATS=1`, against a 464-byte envelope: docs/BENCHMARKS.md, G9 ack
//! path). A record is now
//!
//! ```json
//! {"v":2,"cluster":"looma","acks":[
//!   ["<event id>", <hlc wall_ms>, <hlc logical>, "<entity type>", "<entity id>"],
//!   ["<event id>", 1765150000000, 0, "user", "42", {"state":"failed","reason":"…"}]]}
//! ```
//!
//! where a sixth element, present only when the status is not completed with effect `applied`,
//! is the [`TargetStatus`](crate::status::TargetStatus) as an object (the same as in the older
//! formats). Strings are borrowed from the record when they need no unescaping.

use std::borrow::Cow;
use std::fmt;
use std::io::Write;

use serde::Deserialize;
use serde::de::{self, SeqAccess, Visitor};

use crate::ack_wire::{AckView, StatusView};
use crate::model::Hlc;
use crate::status::{Ack, TargetStatus};

/// The record's version number.
pub(crate) const VERSION: u32 = 2;

/// The start of a record of acks from `cluster`, up to the first ack.
pub(crate) fn open(cluster: &str, out: &mut Vec<u8>) {
    out.extend_from_slice(br#"{"v":2,"cluster":"#);
    write_str(cluster, out);
    out.extend_from_slice(br#","acks":["#);
}

/// The end of a record.
pub(crate) const CLOSE: &[u8] = b"]}";

/// One ack as an array (without its cluster, which the record names once).
pub(crate) fn write_ack(ack: &Ack, out: &mut Vec<u8>) {
    out.push(b'[');
    write_str(&ack.event_id, out);
    // Writing to a `Vec` cannot fail.
    let _ = write!(out, ",{},{},", ack.hlc.wall_ms, ack.hlc.logical);
    write_str(&ack.entity_type, out);
    out.push(b',');
    write_str(&ack.entity_id, out);
    let applied = matches!(&ack.status, TargetStatus::Completed { effect } if effect == "applied");
    if !applied {
        out.push(b',');
        // A status is an enum of strings: it always serializes.
        let _ = serde_json::to_writer(&mut *out, &ack.status);
    }
    out.push(b']');
}

fn write_str(text: &str, out: &mut Vec<u8>) {
    // A `&str` always serializes.
    let _ = serde_json::to_writer(&mut *out, text);
}

/// A compact record as read.
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct RecordView<'a> {
    v: u32,
    #[serde(borrow)]
    cluster: Cow<'a, str>,
    #[serde(borrow)]
    acks: Vec<Compact<'a>>,
}

impl<'a> RecordView<'a> {
    /// The acks, each naming the record's cluster; an error for a version this reader does not
    /// know.
    pub(crate) fn into_acks(self) -> Result<Vec<AckView<'a>>, String> {
        if self.v != VERSION {
            return Err(format!(
                "ack record version {} (this reader knows {VERSION})",
                self.v
            ));
        }
        let cluster = self.cluster;
        Ok(self
            .acks
            .into_iter()
            .map(|c| {
                AckView::new(
                    c.event_id,
                    c.hlc,
                    c.entity_type,
                    c.entity_id,
                    cluster.clone(),
                    c.status,
                )
            })
            .collect())
    }
}

/// One ack of a compact record.
struct Compact<'a> {
    event_id: Cow<'a, str>,
    hlc: Hlc,
    entity_type: Cow<'a, str>,
    entity_id: Cow<'a, str>,
    status: Option<StatusView<'a>>,
}

/// A string borrowed from the record where it has no escapes.
#[derive(Deserialize)]
struct Text<'a>(#[serde(borrow)] Cow<'a, str>);

impl<'de: 'a, 'a> Deserialize<'de> for Compact<'a> {
    fn deserialize<D: de::Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        deserializer.deserialize_seq(CompactVisitor(std::marker::PhantomData))
    }
}

struct CompactVisitor<'a>(std::marker::PhantomData<&'a ()>);

impl<'de: 'a, 'a> Visitor<'de> for CompactVisitor<'a> {
    type Value = Compact<'a>;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("an ack: [event id, hlc wall_ms, hlc logical, entity type, entity id, status?]")
    }

    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<Self::Value, A::Error> {
        let missing = |what: &str| de::Error::custom(format!("an ack without its {what}"));
        let Text(event_id) = seq.next_element()?.ok_or_else(|| missing("event id"))?;
        let wall_ms = seq.next_element()?.ok_or_else(|| missing("hlc wall_ms"))?;
        let logical = seq.next_element()?.ok_or_else(|| missing("hlc logical"))?;
        let Text(entity_type) = seq.next_element()?.ok_or_else(|| missing("entity type"))?;
        let Text(entity_id) = seq.next_element()?.ok_or_else(|| missing("entity id"))?;
        let status = seq.next_element()?;
        if seq.next_element::<de::IgnoredAny>()?.is_some() {
            return Err(de::Error::custom("an ack with more than six elements"));
        }
        Ok(Compact {
            event_id,
            hlc: Hlc { wall_ms, logical },
            entity_type,
            entity_id,
            status,
        })
    }
}
