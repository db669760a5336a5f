//! State shared by the HTTP handlers, the check runners and the public handle.
//!
//! An in-process change that skipped the wake-ups or the check runners would behave differently
//! from the same change made over HTTP, and tests would prove the wrong thing. Every change
//! therefore goes through [`Shared::commit`]: mutate the catalog under its lock, then (with the
//! lock released) wake the touched names and start or stop check runners.

use std::collections::{HashMap, HashSet};
use std::sync::{Arc, Mutex, MutexGuard, PoisonError, Weak};

use tokio::task::AbortHandle;

use super::checks;
use super::error::ConsulDoubleError;
use super::options::{CheckStatus, ConsulOptions, Fault};
use super::registration::{CheckKind, ServiceRegistration};
use super::server::ServerControl;
use super::state::{Catalog, Changes, NodeInfo};
use super::waiters::Waiters;

/// Locks a mutex, ignoring poisoning (a panicked test thread must not wedge the double).
pub(crate) fn lock<T>(mutex: &Mutex<T>) -> MutexGuard<'_, T> {
    mutex.lock().unwrap_or_else(PoisonError::into_inner)
}

/// Everything a running double owns.
pub(crate) struct Shared {
    pub(crate) opts: ConsulOptions,
    catalog: Mutex<Catalog>,
    pub(crate) waiters: Waiters,
    fault: Mutex<Option<Fault>>,
    health_requests: Mutex<HashMap<String, u64>>,
    /// Paths already answered with `?cached` (the agent cache's background-refresh entries).
    cached_paths: Mutex<HashSet<String>>,
    check_tasks: Mutex<HashMap<String, AbortHandle>>,
    reaper: Mutex<Option<AbortHandle>>,
    pub(crate) runtime: tokio::runtime::Handle,
    pub(crate) probes: checks::Probes,
    pub(crate) server: ServerControl,
    me: Weak<Shared>,
}

impl Shared {
    pub(crate) fn new(
        opts: ConsulOptions,
        server: ServerControl,
        probes: checks::Probes,
    ) -> Arc<Self> {
        let node = NodeInfo {
            id: node_uuid(&opts.datacenter, &opts.node_name),
            name: opts.node_name.clone(),
            address: "127.0.0.1".to_owned(),
            datacenter: opts.datacenter.clone(),
            create_index: opts.initial_index.max(1),
        };
        Arc::new_cyclic(|me| Self {
            opts,
            catalog: Mutex::new(Catalog::new(node)),
            waiters: Waiters::new(),
            fault: Mutex::new(None),
            health_requests: Mutex::new(HashMap::new()),
            cached_paths: Mutex::new(HashSet::new()),
            check_tasks: Mutex::new(HashMap::new()),
            reaper: Mutex::new(None),
            runtime: tokio::runtime::Handle::current(),
            probes,
            server,
            me: me.clone(),
        })
    }

    /// Whether a `?cached` read of `path` is a cache hit: the first read of a path is a `MISS`
    /// (the agent fetches and starts refreshing it in the background), later ones `HIT`.
    pub(crate) fn cache_lookup(&self, path: &str) -> bool {
        !lock(&self.cached_paths).insert(path.to_owned())
    }

    /// Reads the catalog under its lock.
    pub(crate) fn read<R>(&self, f: impl FnOnce(&Catalog) -> R) -> R {
        f(&lock(&self.catalog))
    }

    /// Mutates the catalog and publishes the changes.
    pub(crate) fn commit<E>(
        &self,
        f: impl FnOnce(&mut Catalog) -> Result<Changes, E>,
    ) -> Result<(), E> {
        let changes = f(&mut lock(&self.catalog))?;
        self.publish(changes, false);
        Ok(())
    }

    fn publish(&self, changes: Changes, force: bool) {
        for name in &changes.names {
            self.waiters.wake(name, force);
        }
        if changes.catalog {
            self.waiters.wake_catalog(force);
        }
        let mut tasks = lock(&self.check_tasks);
        for id in changes
            .stop_checks
            .iter()
            .chain(changes.start_checks.iter())
        {
            if let Some(task) = tasks.remove(id) {
                task.abort();
            }
        }
        if let Some(me) = self.me.upgrade() {
            for id in changes.start_checks {
                let task = checks::spawn_runner(&me, id.clone());
                tasks.insert(id, task);
            }
        }
    }

    pub(crate) fn register(
        &self,
        registration: &ServiceRegistration,
        replace_checks: bool,
    ) -> Result<(), ConsulDoubleError> {
        let spec = registration.validate()?;
        self.commit(|catalog| Ok(catalog.register(spec, replace_checks)))
    }

    pub(crate) fn deregister(&self, service_id: &str) -> Result<(), ConsulDoubleError> {
        self.commit(|catalog| {
            catalog
                .deregister(service_id)
                .ok_or_else(|| ConsulDoubleError::unknown_service(service_id))
        })
    }

    /// A TTL update (`/agent/check/pass|warn|fail|update`).
    pub(crate) fn update_ttl(
        &self,
        check_id: &str,
        status: CheckStatus,
        output: &str,
    ) -> Result<(), ConsulDoubleError> {
        self.commit(|catalog| {
            match catalog.checks.get(check_id) {
                None => return Err(ConsulDoubleError::unknown_check(check_id)),
                Some(check) if !matches!(check.kind, Some(CheckKind::Ttl(_))) => {
                    return Err(ConsulDoubleError::NoTtl(check_id.to_owned()));
                }
                Some(_) => {}
            }
            let changes = catalog
                .set_status(check_id, status, output)
                .unwrap_or_default();
            Ok(changes)
        })
    }

    pub(crate) fn set_maintenance(
        &self,
        service_id: &str,
        enable: bool,
        reason: Option<&str>,
    ) -> Result<(), ConsulDoubleError> {
        self.commit(|catalog| {
            catalog
                .set_maintenance(service_id, enable, reason)
                .ok_or_else(|| {
                    ConsulDoubleError::NotFound(format!(
                        "No service registered with ID \"{service_id}\""
                    ))
                })
        })
    }

    /// Restamps the state with far lower indexes and returns every blocked query at once.
    pub(crate) fn reset_index(&self) {
        let changes = lock(&self.catalog).reset_index();
        self.publish(changes, true);
        self.waiters.wake_all(true);
    }

    pub(crate) fn fault(&self) -> Option<Fault> {
        lock(&self.fault).clone()
    }

    pub(crate) fn store_fault(&self, fault: Option<Fault>) -> Option<Fault> {
        std::mem::replace(&mut lock(&self.fault), fault)
    }

    pub(crate) fn count_health_request(&self, name: &str) {
        *lock(&self.health_requests)
            .entry(name.to_lowercase())
            .or_insert(0) += 1;
    }

    pub(crate) fn health_requests(&self, name: &str) -> u64 {
        lock(&self.health_requests)
            .get(&name.to_lowercase())
            .copied()
            .unwrap_or(0)
    }

    /// Stops the listener, every connection and every check runner.
    pub(crate) fn stop_all(&self) {
        self.server.shut_down();
        for (_, task) in lock(&self.check_tasks).drain() {
            task.abort();
        }
        if let Some(reaper) = lock(&self.reaper).take() {
            reaper.abort();
        }
    }

    /// Starts the `DeregisterCriticalServiceAfter` reaper.
    pub(crate) fn start_reaper(self: &Arc<Self>) {
        let task = checks::spawn_reaper(self);
        if let Some(old) = lock(&self.reaper).replace(task) {
            old.abort();
        }
    }
}

/// A stable, UUID-shaped node id derived from the datacenter and node name.
fn node_uuid(datacenter: &str, node: &str) -> String {
    // FNV-1a: stable across runs (std's hasher is randomly seeded).
    let mut hash: u128 = 0x6c62_272e_07bb_0142_62b8_2175_6295_c58d;
    for byte in datacenter.bytes().chain([0]).chain(node.bytes()) {
        hash ^= u128::from(byte);
        hash = hash.wrapping_mul(0x0000_0000_0100_0000_0000_0000_0000_013b);
    }
    let hex = format!("{hash:032x}");
    format!(
        "{}-{}-{}-{}-{}",
        &hex[0..8],
        &hex[8..12],
        &hex[12..16],
        &hex[16..20],
        &hex[20..32]
    )
}
