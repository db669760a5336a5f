//! The double's catalog: one agent node, its services and checks, and Raft-style indexes.
//!
//! Blocking queries are only correct if every change that a `/health/service/<name>` reader
//! could see moves that name's index, and nothing else does; otherwise watchers either miss
//! updates or spin. Every mutation here takes the next Raft index, stamps the touched service or
//! check with it (`ModifyIndex`), and records it as the index of the lower-cased service name
//! together with the instant it moved. Mutations return a [`Changes`] list telling the caller
//! which names to wake and which check runners to start or stop. A no-op (identical
//! re-registration, a check update that only repeats the status) moves nothing, as in Consul.

use std::collections::{BTreeMap, HashMap};
use std::time::Instant;

mod mutations;

use super::options::CheckStatus;
use super::registration::{CheckKind, ServiceSpec};

/// The single agent node every service lives on.
#[derive(Debug, Clone)]
pub(crate) struct NodeInfo {
    pub(crate) id: String,
    pub(crate) name: String,
    pub(crate) address: String,
    pub(crate) datacenter: String,
    pub(crate) create_index: u64,
}

/// A registered service instance.
#[derive(Debug, Clone)]
pub(crate) struct ServiceEntry {
    pub(crate) spec: ServiceSpec,
    pub(crate) create_index: u64,
    pub(crate) modify_index: u64,
}

/// A check of a service (a registered check or the maintenance check).
#[derive(Debug, Clone)]
pub(crate) struct CheckEntry {
    pub(crate) id: String,
    pub(crate) service_id: String,
    pub(crate) name: String,
    pub(crate) notes: String,
    /// `None` for the maintenance check.
    pub(crate) kind: Option<CheckKind>,
    pub(crate) status: CheckStatus,
    pub(crate) output: String,
    pub(crate) deregister_after: Option<std::time::Duration>,
    pub(crate) critical_since: Option<tokio::time::Instant>,
    pub(crate) ttl_deadline: Option<tokio::time::Instant>,
    pub(crate) create_index: u64,
    pub(crate) modify_index: u64,
}

/// Index of one lower-cased service name.
#[derive(Debug, Clone, Copy)]
struct NameIndex {
    index: u64,
    changed_at: Instant,
}

/// What a mutation changed.
#[derive(Debug, Default)]
pub(crate) struct Changes {
    /// Lower-cased service names whose index moved.
    pub(crate) names: Vec<String>,
    /// Whether the set of services (the `/catalog/services` view) changed.
    pub(crate) catalog: bool,
    /// Checks whose runner must be (re)started.
    pub(crate) start_checks: Vec<String>,
    /// Checks whose runner must be stopped.
    pub(crate) stop_checks: Vec<String>,
}

/// The whole state store.
#[derive(Debug)]
pub(crate) struct Catalog {
    pub(crate) node: NodeInfo,
    raft_index: u64,
    services_index: u64,
    pub(crate) services: BTreeMap<String, ServiceEntry>,
    pub(crate) checks: BTreeMap<String, CheckEntry>,
    names: HashMap<String, NameIndex>,
}

impl Catalog {
    pub(crate) fn new(node: NodeInfo) -> Self {
        let start = node.create_index.max(1);
        Self {
            node,
            raft_index: start,
            services_index: start,
            services: BTreeMap::new(),
            checks: BTreeMap::new(),
            names: HashMap::new(),
        }
    }

    fn next_index(&mut self) -> u64 {
        self.raft_index += 1;
        self.raft_index
    }

    fn touch(&mut self, name: &str, index: u64, changes: &mut Changes) {
        let key = name.to_lowercase();
        self.names.insert(
            key.clone(),
            NameIndex {
                index,
                changed_at: Instant::now(),
            },
        );
        if !changes.names.contains(&key) {
            changes.names.push(key);
        }
    }

    /// `X-Consul-Index` of `/health/service/<name>` (and `/catalog/service/<name>`); never 0.
    pub(crate) fn service_index(&self, name: &str) -> u64 {
        let index = match self.names.get(&name.to_lowercase()) {
            Some(entry) => entry.index,
            None => self.services_index.max(self.node.create_index),
        };
        index.max(1)
    }

    /// `X-Consul-Index` of `/catalog/services`; never 0.
    pub(crate) fn catalog_index(&self) -> u64 {
        self.services_index.max(1)
    }

    /// When the index of `name` last moved.
    pub(crate) fn last_change(&self, name: &str) -> Option<Instant> {
        self.names
            .get(&name.to_lowercase())
            .map(|entry| entry.changed_at)
    }

    /// Instances of `name` (case-insensitive), in deterministic order (by service id).
    pub(crate) fn instances<'a>(
        &'a self,
        name: &str,
    ) -> impl Iterator<Item = &'a ServiceEntry> + 'a {
        let key = name.to_lowercase();
        self.services
            .values()
            .filter(move |entry| entry.spec.name.to_lowercase() == key)
    }

    /// The checks of one service, in check-id order.
    pub(crate) fn checks_of<'a>(
        &'a self,
        service_id: &'a str,
    ) -> impl Iterator<Item = &'a CheckEntry> + 'a {
        self.checks
            .values()
            .filter(move |check| check.service_id == service_id)
    }
}
