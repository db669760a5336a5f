//! A small map keyed by cluster name, for the per-cluster bookkeeping every event touches
//! (`seen`, heads).
//!
//! A `BTreeMap<String, _>` costs a node allocation and a `String` per cluster each time a state is
//! read, decided or written, and there are only ever a few clusters. [`ClusterMap`] keeps its
//! entries inline, sorted by name, with names shared (`Arc<str>`, one allocation per distinct
//! name per thread), so copying a state copies pointers; its JSON form is the same object
//! `{cluster: value}` as before.

use std::cell::RefCell;
use std::fmt;
use std::marker::PhantomData;
use std::sync::Arc;

use serde::de::{MapAccess, Visitor};
use serde::ser::SerializeMap;
use serde::{Deserialize, Deserializer, Serialize, Serializer};
use smallvec::SmallVec;

/// Entries by cluster name, sorted by name.
#[derive(Clone, PartialEq)]
pub struct ClusterMap<V>(SmallVec<[(Arc<str>, V); 2]>);

impl<V> Default for ClusterMap<V> {
    fn default() -> Self {
        ClusterMap(SmallVec::new())
    }
}

impl<V> ClusterMap<V> {
    /// An empty map.
    pub fn new() -> Self {
        Self::default()
    }

    fn position(&self, cluster: &str) -> Result<usize, usize> {
        self.0.binary_search_by(|(name, _)| (**name).cmp(cluster))
    }

    /// The value of `cluster`.
    pub fn get(&self, cluster: &str) -> Option<&V> {
        self.position(cluster).ok().map(|i| &self.0[i].1)
    }

    /// Whether `cluster` has an entry.
    pub fn contains_key(&self, cluster: &str) -> bool {
        self.position(cluster).is_ok()
    }

    /// Set the value of `cluster`; returns the one it replaced.
    pub fn insert(&mut self, cluster: &str, value: V) -> Option<V> {
        match self.position(cluster) {
            Ok(i) => Some(std::mem::replace(&mut self.0[i].1, value)),
            Err(i) => {
                self.0.insert(i, (intern(cluster), value));
                None
            }
        }
    }

    /// The value of `cluster`, inserted by `make` if absent.
    pub fn get_or_insert_with(&mut self, cluster: &str, make: impl FnOnce() -> V) -> &mut V {
        let i = match self.position(cluster) {
            Ok(i) => i,
            Err(i) => {
                self.0.insert(i, (intern(cluster), make()));
                i
            }
        };
        &mut self.0[i].1
    }

    /// Remove `cluster`'s entry.
    pub fn remove(&mut self, cluster: &str) -> Option<V> {
        self.position(cluster).ok().map(|i| self.0.remove(i).1)
    }

    /// Keep the entries `keep` accepts.
    pub fn retain(&mut self, mut keep: impl FnMut(&str, &V) -> bool) {
        self.0.retain(|(name, value)| keep(name, value));
    }

    /// Entries in name order.
    pub fn iter(&self) -> impl Iterator<Item = (&str, &V)> {
        self.0.iter().map(|(name, value)| (&**name, value))
    }

    /// Values in name order.
    pub fn values(&self) -> impl Iterator<Item = &V> {
        self.0.iter().map(|(_, value)| value)
    }

    /// Number of clusters.
    pub fn len(&self) -> usize {
        self.0.len()
    }

    /// Whether there is no entry.
    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }
}

impl<V: fmt::Debug> fmt::Debug for ClusterMap<V> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_map().entries(self.iter()).finish()
    }
}

impl<'a, V> FromIterator<(&'a str, V)> for ClusterMap<V> {
    fn from_iter<I: IntoIterator<Item = (&'a str, V)>>(entries: I) -> Self {
        let mut map = ClusterMap::new();
        for (cluster, value) in entries {
            map.insert(cluster, value);
        }
        map
    }
}

impl<V: Serialize> Serialize for ClusterMap<V> {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        let mut map = serializer.serialize_map(Some(self.len()))?;
        for (name, value) in self.iter() {
            map.serialize_entry(name, value)?;
        }
        map.end()
    }
}

impl<'de, V: Deserialize<'de>> Deserialize<'de> for ClusterMap<V> {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        deserializer.deserialize_map(MapVisitor(PhantomData))
    }
}

struct MapVisitor<V>(PhantomData<V>);

impl<'de, V: Deserialize<'de>> Visitor<'de> for MapVisitor<V> {
    type Value = ClusterMap<V>;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("an object keyed by cluster name")
    }

    fn visit_map<A: MapAccess<'de>>(self, mut access: A) -> Result<Self::Value, A::Error> {
        let mut map = ClusterMap::new();
        while let Some(Name(name)) = access.next_key::<Name>()? {
            let value = access.next_value()?;
            map.insert(&name, value);
        }
        Ok(map)
    }
}

/// A cluster name read as a shared string (no `String` per key).
struct Name(Arc<str>);

impl<'de> Deserialize<'de> for Name {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        deserializer.deserialize_str(NameVisitor)
    }
}

struct NameVisitor;

impl Visitor<'_> for NameVisitor {
    type Value = Name;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("a cluster name")
    }

    fn visit_str<E: serde::de::Error>(self, name: &str) -> Result<Name, E> {
        Ok(Name(intern(name)))
    }
}

thread_local! {
    /// Cluster names met on this thread (there are only a few).
    static NAMES: RefCell<Vec<Arc<str>>> = const { RefCell::new(Vec::new()) };
}

/// Names this thread keeps at most; past it, a name is allocated each time (a misuse of cluster
/// names as arbitrary keys must not grow memory).
const NAMES_KEPT: usize = 32;

/// `name` as a shared string: allocated once per thread for the first few names.
pub(crate) fn intern(name: &str) -> Arc<str> {
    NAMES.with(|names| {
        let mut names = names.borrow_mut();
        if let Some(known) = names.iter().find(|known| ***known == *name) {
            return Arc::clone(known);
        }
        let new: Arc<str> = Arc::from(name);
        if names.len() < NAMES_KEPT {
            names.push(Arc::clone(&new));
        }
        new
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn same_json_as_a_map_and_sorted_whatever_the_insert_order() {
        let mut map = ClusterMap::new();
        map.insert("zervigo", 2);
        map.insert("looma", 1);
        assert_eq!(map.insert("zervigo", 3), Some(2));
        let json = serde_json::to_string(&map).expect("encodes");
        assert_eq!(json, r#"{"looma":1,"zervigo":3}"#);
        let back: ClusterMap<u32> =
            serde_json::from_str(r#"{"zervigo":3,"looma":1}"#).expect("decodes");
        assert_eq!(back, map);
        assert_eq!(back.get("looma"), Some(&1));
        assert_eq!(back.get("other"), None);
    }

    #[test]
    fn names_are_shared_not_copied() {
        let a: ClusterMap<u8> = [("zervigo", 1)].into_iter().collect();
        let b: ClusterMap<u8> = serde_json::from_str(r#"{"zervigo": 2}"#).expect("decodes");
        assert!(Arc::ptr_eq(&a.0[0].0, &b.0[0].0), "one allocation per name");
    }
}
