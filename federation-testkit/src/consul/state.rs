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

use super::options::CheckStatus;
use super::registration::{CheckKind, CheckSpec, ServiceSpec};

/// Prefix of the critical check that service maintenance mode adds.
pub(crate) const MAINTENANCE_PREFIX: &str = "_service_maintenance:";
const MAINTENANCE_DEFAULT_NOTES: &str =
    "Maintenance mode is enabled for this service, but no reason was provided. This is a default message.";

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
        Self { node, raft_index: start, services_index: start, services: BTreeMap::new(), checks: BTreeMap::new(), names: HashMap::new() }
    }

    fn next_index(&mut self) -> u64 {
        self.raft_index += 1;
        self.raft_index
    }

    fn touch(&mut self, name: &str, index: u64, changes: &mut Changes) {
        let key = name.to_lowercase();
        self.names.insert(key.clone(), NameIndex { index, changed_at: Instant::now() });
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
        self.names.get(&name.to_lowercase()).map(|entry| entry.changed_at)
    }

    /// Instances of `name` (case-insensitive), in deterministic order (by service id).
    pub(crate) fn instances<'a>(&'a self, name: &str) -> impl Iterator<Item = &'a ServiceEntry> + 'a {
        let key = name.to_lowercase();
        self.services.values().filter(move |entry| entry.spec.name.to_lowercase() == key)
    }

    /// The checks of one service, in check-id order.
    pub(crate) fn checks_of<'a>(&'a self, service_id: &'a str) -> impl Iterator<Item = &'a CheckEntry> + 'a {
        self.checks.values().filter(move |check| check.service_id == service_id)
    }

    /// Registers or replaces a service (agent semantics: existing check state is kept).
    pub(crate) fn register(&mut self, spec: ServiceSpec, replace_existing_checks: bool) -> Changes {
        let mut changes = Changes::default();
        let now = tokio::time::Instant::now();
        let previous = self.services.get(&spec.id).cloned();
        let check_ids: Vec<String> = spec.checks.iter().map(|check| check.id.clone()).collect();
        let stale: Vec<String> = self
            .checks_of(&spec.id)
            .filter(|check| !check_ids.contains(&check.id) && check.kind.is_some())
            .filter(|_| replace_existing_checks)
            .map(|check| check.id.clone())
            .collect();
        let service_changed = previous.as_ref().is_none_or(|old| old.spec.without_checks() != spec.without_checks());
        let checks_changed = !stale.is_empty() || spec.checks.iter().any(|check| self.check_differs(&spec.id, check));
        if !service_changed && !checks_changed {
            return changes;
        }
        let index = self.next_index();
        if let Some(old) = &previous
            && old.spec.name.to_lowercase() != spec.name.to_lowercase()
        {
            self.touch(&old.spec.name, index, &mut changes);
        }
        for id in stale {
            self.checks.remove(&id);
            changes.stop_checks.push(id);
        }
        for check in &spec.checks {
            let (status, output, create_index) = match self.checks.get(&check.id) {
                Some(old) if old.service_id == spec.id => (old.status, old.output.clone(), old.create_index),
                _ => (check.initial_status.unwrap_or(CheckStatus::Critical), String::new(), index),
            };
            let ttl_deadline = match check.kind {
                CheckKind::Ttl(ttl) => Some(now + ttl),
                _ => None,
            };
            self.checks.insert(check.id.clone(), CheckEntry {
                id: check.id.clone(),
                service_id: spec.id.clone(),
                name: check.name.clone(),
                notes: check.notes.clone(),
                kind: Some(check.kind.clone()),
                status,
                output,
                deregister_after: check.deregister_after,
                critical_since: (status == CheckStatus::Critical).then_some(now),
                ttl_deadline,
                create_index,
                modify_index: index,
            });
            changes.start_checks.push(check.id.clone());
        }
        let create_index = previous.as_ref().map_or(index, |old| old.create_index);
        self.touch(&spec.name, index, &mut changes);
        self.services.insert(spec.id.clone(), ServiceEntry { spec, create_index, modify_index: index });
        if service_changed {
            self.services_index = index;
            changes.catalog = true;
        }
        changes
    }

    fn check_differs(&self, service_id: &str, check: &CheckSpec) -> bool {
        match self.checks.get(&check.id) {
            Some(old) => {
                old.service_id != service_id
                    || old.kind.as_ref() != Some(&check.kind)
                    || old.name != check.name
                    || old.notes != check.notes
                    || old.deregister_after != check.deregister_after
            }
            None => true,
        }
    }

    /// Removes a service and all its checks.
    pub(crate) fn deregister(&mut self, service_id: &str) -> Option<Changes> {
        let entry = self.services.remove(service_id)?;
        let mut changes = Changes::default();
        let index = self.next_index();
        let removed: Vec<String> = self.checks_of(service_id).map(|check| check.id.clone()).collect();
        for id in removed {
            self.checks.remove(&id);
            changes.stop_checks.push(id);
        }
        self.touch(&entry.spec.name, index, &mut changes);
        self.services_index = index;
        changes.catalog = true;
        Some(changes)
    }

    /// Sets a check's status and output. The index moves only when the status changes;
    /// output-only changes are stored without waking watchers (Consul syncs them lazily).
    pub(crate) fn set_status(&mut self, check_id: &str, status: CheckStatus, output: &str) -> Option<Changes> {
        let now = tokio::time::Instant::now();
        let check = self.checks.get_mut(check_id)?;
        check.output = output.to_owned();
        if let Some(CheckKind::Ttl(ttl)) = check.kind {
            check.ttl_deadline = Some(now + ttl);
        }
        let mut changes = Changes::default();
        if check.status == status {
            return Some(changes);
        }
        check.status = status;
        check.critical_since = (status == CheckStatus::Critical).then_some(now);
        let service_id = check.service_id.clone();
        let index = self.next_index();
        if let Some(check) = self.checks.get_mut(check_id) {
            check.modify_index = index;
        }
        if let Some(name) = self.services.get(&service_id).map(|entry| entry.spec.name.clone()) {
            self.touch(&name, index, &mut changes);
        }
        Some(changes)
    }

    /// Turns a TTL check critical if its deadline has passed; returns the changes if it did.
    pub(crate) fn expire_ttl(&mut self, check_id: &str, now: tokio::time::Instant) -> Option<Changes> {
        let check = self.checks.get_mut(check_id)?;
        if check.ttl_deadline.is_none_or(|deadline| deadline > now) {
            return None;
        }
        check.ttl_deadline = None;
        let output = if check.output.is_empty() || check.output.starts_with("TTL expired") {
            "TTL expired".to_owned()
        } else {
            format!("TTL expired (last output before timeout follows): {}", check.output)
        };
        let changes = self.set_status(check_id, CheckStatus::Critical, &output)?;
        if let Some(check) = self.checks.get_mut(check_id) {
            check.ttl_deadline = None;
        }
        Some(changes)
    }

    /// Adds or removes the `_service_maintenance:<id>` critical check.
    pub(crate) fn set_maintenance(&mut self, service_id: &str, enable: bool, reason: Option<&str>) -> Option<Changes> {
        let name = self.services.get(service_id)?.spec.name.clone();
        let check_id = format!("{MAINTENANCE_PREFIX}{service_id}");
        let notes = reason.filter(|r| !r.is_empty()).unwrap_or(MAINTENANCE_DEFAULT_NOTES).to_owned();
        let mut changes = Changes::default();
        let present = self.checks.get(&check_id).map(|check| (check.create_index, check.notes == notes));
        let unchanged = match present {
            Some((_, same_notes)) => enable && same_notes,
            None => !enable,
        };
        if unchanged {
            return Some(changes);
        }
        let index = self.next_index();
        if enable {
            let create_index = present.map_or(index, |(create_index, _)| create_index);
            self.checks.insert(check_id.clone(), CheckEntry {
                id: check_id,
                service_id: service_id.to_owned(),
                name: "Service Maintenance Mode".to_owned(),
                notes,
                kind: None,
                status: CheckStatus::Critical,
                output: String::new(),
                deregister_after: None,
                critical_since: None,
                ttl_deadline: None,
                create_index,
                modify_index: index,
            });
        } else {
            self.checks.remove(&check_id);
        }
        self.touch(&name, index, &mut changes);
        Some(changes)
    }

    /// Services whose check has been critical longer than its `DeregisterCriticalServiceAfter`.
    pub(crate) fn reapable(&self, now: tokio::time::Instant) -> Vec<String> {
        let mut ids: Vec<String> = self
            .checks
            .values()
            .filter(|check| match (check.deregister_after, check.critical_since) {
                (Some(after), Some(since)) => check.status == CheckStatus::Critical && now.duration_since(since) >= after,
                _ => false,
            })
            .map(|check| check.service_id.clone())
            .collect();
        ids.dedup();
        ids
    }

    /// Restarts the index space far lower, as a snapshot restore does, restamping everything.
    pub(crate) fn reset_index(&mut self) -> Changes {
        let mut changes = Changes { catalog: true, ..Changes::default() };
        let base = (self.raft_index / 10).max(1);
        self.raft_index = base;
        self.node.create_index = base;
        let service_ids: Vec<String> = self.services.keys().cloned().collect();
        for id in service_ids {
            let index = self.next_index();
            if let Some(entry) = self.services.get_mut(&id) {
                entry.create_index = index;
                entry.modify_index = index;
            }
        }
        let check_ids: Vec<String> = self.checks.keys().cloned().collect();
        for id in check_ids {
            let index = self.next_index();
            if let Some(check) = self.checks.get_mut(&id) {
                check.create_index = index;
                check.modify_index = index;
            }
        }
        let last = self.raft_index;
        self.services_index = last;
        let names: Vec<String> = self.names.keys().cloned().collect();
        for name in names {
            self.touch(&name, last, &mut changes);
        }
        changes
    }
}

impl ServiceSpec {
    /// The definition without its checks, for "did the service itself change" comparisons.
    fn without_checks(&self) -> ServiceSpec {
        ServiceSpec { checks: Vec::new(), ..self.clone() }
    }
}
