//! Catalog mutations: registration, deregistration, check status, maintenance, TTL expiry,
//! reaping and index resets. Each takes the next Raft index only when something visible
//! changes, and reports what it touched in a [`Changes`].

use super::{Catalog, Changes, CheckEntry, ServiceEntry};
use crate::consul::options::CheckStatus;
use crate::consul::registration::{CheckKind, CheckSpec, ServiceSpec};

/// Prefix of the critical check that service maintenance mode adds.
const MAINTENANCE_PREFIX: &str = "_service_maintenance:";
const MAINTENANCE_DEFAULT_NOTES: &str = "Maintenance mode is enabled for this service, but no reason was provided. This is a default message.";

impl Catalog {
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
        let service_changed = previous
            .as_ref()
            .is_none_or(|old| old.spec.without_checks() != spec.without_checks());
        let checks_changed = !stale.is_empty()
            || spec
                .checks
                .iter()
                .any(|check| self.check_differs(&spec.id, check));
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
            self.remove_check(&id);
            changes.stop_checks.push(id);
        }
        for check in &spec.checks {
            let (status, output, create_index) = match self.checks.get(&check.id) {
                Some(old) if old.service_id == spec.id => {
                    (old.status, old.output.clone(), old.create_index)
                }
                _ => (
                    check.initial_status.unwrap_or(CheckStatus::Critical),
                    String::new(),
                    index,
                ),
            };
            let ttl_deadline = match check.kind {
                CheckKind::Ttl(ttl) => Some(now + ttl),
                _ => None,
            };
            self.insert_check(CheckEntry {
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
        self.insert_service(ServiceEntry {
            spec,
            create_index,
            modify_index: index,
        });
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
        let entry = self.remove_service(service_id)?;
        let mut changes = Changes::default();
        let index = self.next_index();
        let removed: Vec<String> = self
            .checks_of(service_id)
            .map(|check| check.id.clone())
            .collect();
        for id in removed {
            self.remove_check(&id);
            changes.stop_checks.push(id);
        }
        self.touch(&entry.spec.name, index, &mut changes);
        self.services_index = index;
        changes.catalog = true;
        Some(changes)
    }

    /// Sets a check's status and output. The index moves only when the status changes;
    /// output-only changes are stored without waking watchers (Consul syncs them lazily).
    pub(crate) fn set_status(
        &mut self,
        check_id: &str,
        status: CheckStatus,
        output: &str,
    ) -> Option<Changes> {
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
        if let Some(name) = self
            .services
            .get(&service_id)
            .map(|entry| entry.spec.name.clone())
        {
            self.touch(&name, index, &mut changes);
        }
        Some(changes)
    }

    /// Turns a TTL check critical if its deadline has passed; returns the changes if it did.
    pub(crate) fn expire_ttl(
        &mut self,
        check_id: &str,
        now: tokio::time::Instant,
    ) -> Option<Changes> {
        let check = self.checks.get_mut(check_id)?;
        if check.ttl_deadline.is_none_or(|deadline| deadline > now) {
            return None;
        }
        check.ttl_deadline = None;
        let output = if check.output.is_empty() || check.output.starts_with("TTL expired") {
            "TTL expired".to_owned()
        } else {
            format!(
                "TTL expired (last output before timeout follows): {}",
                check.output
            )
        };
        let changes = self.set_status(check_id, CheckStatus::Critical, &output)?;
        if let Some(check) = self.checks.get_mut(check_id) {
            check.ttl_deadline = None;
        }
        Some(changes)
    }

    /// Adds or removes the `_service_maintenance:<id>` critical check.
    pub(crate) fn set_maintenance(
        &mut self,
        service_id: &str,
        enable: bool,
        reason: Option<&str>,
    ) -> Option<Changes> {
        let name = self.services.get(service_id)?.spec.name.clone();
        let check_id = format!("{MAINTENANCE_PREFIX}{service_id}");
        let notes = reason
            .filter(|r| !r.is_empty())
            .unwrap_or(MAINTENANCE_DEFAULT_NOTES)
            .to_owned();
        let mut changes = Changes::default();
        let present = self
            .checks
            .get(&check_id)
            .map(|check| (check.create_index, check.notes == notes));
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
            self.insert_check(CheckEntry {
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
            self.remove_check(&check_id);
        }
        self.touch(&name, index, &mut changes);
        Some(changes)
    }

    /// Services whose check has been critical longer than its `DeregisterCriticalServiceAfter`.
    pub(crate) fn reapable(&self, now: tokio::time::Instant) -> Vec<String> {
        let mut ids: Vec<String> = self
            .checks
            .values()
            .filter(
                |check| match (check.deregister_after, check.critical_since) {
                    (Some(after), Some(since)) => {
                        check.status == CheckStatus::Critical && now.duration_since(since) >= after
                    }
                    _ => false,
                },
            )
            .map(|check| check.service_id.clone())
            .collect();
        ids.dedup();
        ids
    }

    /// Restarts the index space far lower, as a snapshot restore does, restamping everything.
    pub(crate) fn reset_index(&mut self) -> Changes {
        let mut changes = Changes {
            catalog: true,
            ..Changes::default()
        };
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
        ServiceSpec {
            checks: Vec::new(),
            ..self.clone()
        }
    }
}
