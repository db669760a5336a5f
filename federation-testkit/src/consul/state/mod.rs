//! The double's catalog: one agent node, its services and checks, and Raft-style indexes.
//!
//! Blocking queries are only correct if every change that a `/health/service/<name>` reader
//! could see moves that name's index, and nothing else does; otherwise watchers either miss
//! updates or spin. Every mutation here takes the next Raft index, stamps the touched service or
//! check with it (`ModifyIndex`), and records it as the index of the lower-cased service name
//! together with the instant it moved. Mutations return a [`Changes`] list telling the caller
//! which names to wake and which check runners to start or stop. A no-op (identical
//! re-registration, a check update that only repeats the status) moves nothing, as in Consul.
//!
//! A double holding 40,000 instances (the scale benchmark) must answer one service's read
//! without walking every instance and every check: services are indexed by lower-cased name and
//! checks by service id, both kept in step by the only functions that insert or remove them
//! ([`Catalog::insert_service`], [`Catalog::remove_service`], [`Catalog::insert_check`],
//! [`Catalog::remove_check`]).

use std::collections::{BTreeMap, BTreeSet, HashMap};
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
    /// Lower-cased service name → ids of its instances.
    by_name: HashMap<String, BTreeSet<String>>,
    /// Service id → ids of its checks.
    by_service: HashMap<String, BTreeSet<String>>,
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
            by_name: HashMap::new(),
            by_service: HashMap::new(),
        }
    }

    /// Stores `entry` (replacing the service of the same id) and indexes it by name.
    fn insert_service(&mut self, entry: ServiceEntry) {
        let id = entry.spec.id.clone();
        let name = entry.spec.name.to_lowercase();
        if let Some(old) = self.services.insert(id.clone(), entry) {
            unindex(&mut self.by_name, &old.spec.name.to_lowercase(), &id);
        }
        self.by_name.entry(name).or_default().insert(id);
    }

    /// Removes the service `id` from the store and the name index.
    fn remove_service(&mut self, id: &str) -> Option<ServiceEntry> {
        let entry = self.services.remove(id)?;
        unindex(&mut self.by_name, &entry.spec.name.to_lowercase(), id);
        Some(entry)
    }

    /// Stores `check` (replacing the check of the same id) and indexes it by service.
    fn insert_check(&mut self, check: CheckEntry) {
        let id = check.id.clone();
        let service = check.service_id.clone();
        if let Some(old) = self.checks.insert(id.clone(), check) {
            unindex(&mut self.by_service, &old.service_id, &id);
        }
        self.by_service.entry(service).or_default().insert(id);
    }

    /// Removes the check `id` from the store and the service index.
    fn remove_check(&mut self, id: &str) -> Option<CheckEntry> {
        let check = self.checks.remove(id)?;
        unindex(&mut self.by_service, &check.service_id, id);
        Some(check)
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
        self.by_name
            .get(&name.to_lowercase())
            .into_iter()
            .flatten()
            .filter_map(|id| self.services.get(id))
    }

    /// The checks of one service, in check-id order.
    pub(crate) fn checks_of<'a>(
        &'a self,
        service_id: &'a str,
    ) -> impl Iterator<Item = &'a CheckEntry> + 'a {
        self.by_service
            .get(service_id)
            .into_iter()
            .flatten()
            .filter_map(|id| self.checks.get(id))
    }
}

/// Removes `id` from the set under `key`, dropping the set when it empties.
fn unindex(index: &mut HashMap<String, BTreeSet<String>>, key: &str, id: &str) {
    if let Some(ids) = index.get_mut(key) {
        ids.remove(id);
        if ids.is_empty() {
            index.remove(key);
        }
    }
}
