//! The record a change carries: a JSON object's text, checked once and shared by pointer.
//!
//! Parsing every received record into a `serde_json::Map` costs an allocation per key and per
//! value, all freed later on another thread, although the sync only moves most records from the
//! envelope to the target. A [`Record`] is the object's JSON text, validated when it is read
//! (well-formed and an object), serialized back as the plain object (so the envelope and every
//! stored format are unchanged), and parsed into a map only where a decision needs its fields:
//! `merge_fields`, a conflict callback, a handler that takes a dict.

use std::fmt;
use std::sync::{Arc, OnceLock};

use serde::de::{self, DeserializeSeed, IgnoredAny, MapAccess, Visitor};
use serde::{Deserialize, Deserializer, Serialize, Serializer};
use serde_json::value::RawValue;
use serde_json::{Map, Value};

/// A record: a JSON object's text. Cloning copies a pointer; equality is equality of the
/// objects (same text, or the same keys and values in another order or spacing).
#[derive(Clone)]
pub struct Record(Arc<RawValue>);

impl Record {
    /// The empty object `{}` (shared).
    pub fn empty() -> Self {
        static EMPTY: OnceLock<Record> = OnceLock::new();
        EMPTY.get_or_init(|| Record::from_map(&Map::new())).clone()
    }

    /// The record of a map (serialized once).
    pub fn from_map(map: &Map<String, Value>) -> Self {
        // A map of JSON values always serializes, and to an object.
        match serde_json::value::to_raw_value(map) {
            Ok(raw) => Record(Arc::from(raw)),
            Err(_) => Record::empty(),
        }
    }

    /// The record of a JSON object's text; an error naming what is wrong if it is not JSON or
    /// not an object.
    pub fn parse(json: &str) -> Result<Self, String> {
        let raw = RawValue::from_string(json.to_owned()).map_err(|e| e.to_string())?;
        Self::from_raw(raw)
    }

    fn from_raw(raw: Box<RawValue>) -> Result<Self, String> {
        match raw.get().trim_start().as_bytes().first() {
            Some(b'{') => Ok(Record(Arc::from(raw))),
            _ => Err(format!(
                "data must be a JSON object, found {}",
                kind(raw.get())
            )),
        }
    }

    /// The JSON text of the object.
    pub fn json(&self) -> &str {
        self.0.get()
    }

    /// The record as a map (parsed on each call).
    pub fn to_map(&self) -> Map<String, Value> {
        // Checked to be a JSON object when the record was made.
        serde_json::from_str(self.json()).unwrap_or_default()
    }

    /// The record read as `T` (e.g. a struct with the fields a handler needs).
    pub fn parse_as<T: de::DeserializeOwned>(&self) -> Result<T, serde_json::Error> {
        serde_json::from_str(self.json())
    }

    /// Whether both are the same shared record (no comparison of contents).
    pub fn ptr_eq(a: &Record, b: &Record) -> bool {
        Arc::ptr_eq(&a.0, &b.0)
    }

    /// Which of `fields` the object lacks as top-level keys (read without building a map).
    pub fn missing<'f>(&self, fields: &'f [String]) -> Vec<&'f str> {
        if fields.is_empty() {
            return Vec::new();
        }
        let mut present = Present {
            fields,
            found: vec![false; fields.len()],
        };
        let mut deserializer = serde_json::Deserializer::from_str(self.json());
        // Checked to be a JSON object when the record was made; if reading failed anyway,
        // every field not yet found counts as missing.
        let _ = (&mut present).deserialize(&mut deserializer);
        fields
            .iter()
            .zip(&present.found)
            .filter(|(_, found)| !**found)
            .map(|(field, _)| field.as_str())
            .collect()
    }
}

impl Default for Record {
    fn default() -> Self {
        Record::empty()
    }
}

impl From<Map<String, Value>> for Record {
    fn from(map: Map<String, Value>) -> Self {
        Record::from_map(&map)
    }
}

impl PartialEq for Record {
    fn eq(&self, other: &Self) -> bool {
        Record::ptr_eq(self, other)
            || self.json() == other.json()
            || self.to_map() == other.to_map()
    }
}

impl fmt::Debug for Record {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.json())
    }
}

impl Serialize for Record {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        self.0.serialize(serializer)
    }
}

impl<'de> Deserialize<'de> for Record {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let raw = Box::<RawValue>::deserialize(deserializer)?;
        Record::from_raw(raw).map_err(de::Error::custom)
    }
}

/// What kind of JSON value `json` is (for the error of a record that is not an object).
fn kind(json: &str) -> &'static str {
    match json.trim_start().as_bytes().first() {
        Some(b'[') => "an array",
        Some(b'"') => "a string",
        Some(b'n') => "null",
        Some(b't' | b'f') => "a boolean",
        _ => "a number",
    }
}

/// Reads an object's keys, marking which of `fields` occur.
struct Present<'f> {
    fields: &'f [String],
    found: Vec<bool>,
}

impl<'de> DeserializeSeed<'de> for &mut Present<'_> {
    type Value = ();

    fn deserialize<D: Deserializer<'de>>(self, deserializer: D) -> Result<(), D::Error> {
        deserializer.deserialize_map(self)
    }
}

impl<'de> Visitor<'de> for &mut Present<'_> {
    type Value = ();

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("a JSON object")
    }

    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<(), A::Error> {
        while let Some(index) = map.next_key_seed(KeyIndex(self.fields))? {
            if let Some(found) = index.and_then(|i| self.found.get_mut(i)) {
                *found = true;
            }
            map.next_value::<IgnoredAny>()?;
        }
        Ok(())
    }
}

/// A key, read as its index among the fields looked for (no copy of the key).
struct KeyIndex<'f>(&'f [String]);

impl<'de> DeserializeSeed<'de> for KeyIndex<'_> {
    type Value = Option<usize>;

    fn deserialize<D: Deserializer<'de>>(self, deserializer: D) -> Result<Self::Value, D::Error> {
        deserializer.deserialize_str(self)
    }
}

impl<'de> Visitor<'de> for KeyIndex<'_> {
    type Value = Option<usize>;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("an object key")
    }

    fn visit_str<E: de::Error>(self, key: &str) -> Result<Self::Value, E> {
        Ok(self.0.iter().position(|f| f == key))
    }
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    #[test]
    fn an_object_round_trips_as_the_plain_object() {
        let record = Record::parse(r#"{"name": "Ada", "n": 1}"#).expect("an object");
        assert_eq!(
            serde_json::to_value(&record).expect("encodes"),
            json!({"name": "Ada", "n": 1})
        );
        let back: Record = serde_json::from_str(r#"{"n":1,"name":"Ada"}"#).expect("decodes");
        assert_eq!(back, record, "equal objects in another order and spacing");
        assert_ne!(back, Record::empty());
    }

    #[test]
    fn anything_but_an_object_is_refused_with_its_kind() {
        for (json, found) in [
            ("[1]", "an array"),
            ("\"x\"", "a string"),
            ("3", "a number"),
        ] {
            let error = Record::parse(json).expect_err(json);
            assert!(error.contains(found), "{json}: {error}");
        }
        assert!(Record::parse("{").is_err(), "not JSON");
        let in_envelope = serde_json::from_str::<Record>("null").expect_err("null");
        assert!(
            in_envelope
                .to_string()
                .contains("data must be a JSON object, found null")
        );
    }

    #[test]
    fn missing_fields_are_named_without_building_a_map() {
        let record = Record::parse(r#"{"name": "Ada", "nested": {"email": 1}}"#).expect("object");
        let fields = ["name".to_string(), "email".to_string()];
        assert_eq!(
            record.missing(&fields),
            vec!["email"],
            "only top-level keys count"
        );
        assert!(record.missing(&fields[..1]).is_empty());
    }
}
