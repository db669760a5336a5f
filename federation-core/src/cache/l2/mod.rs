//! The shared L2 tier of a service's result cache, on Redis (standalone, unix socket or Cluster).
//!
//! The failures it prevents: a fleet of processes each computing the same expensive answer (one
//! process's L1 helps nobody else), and a process serving a record another process already
//! invalidated. What it must never cause: a failed or slower call because Redis is down, slow or
//! full.
//!
//! - **Read**: after an L1 miss, one `GET` per key per process (single flight), bounded by the
//!   configured `timeout`; a hit fills L1. Values carry the wall-clock start of the fetch that
//!   produced them and their freshness, so stale-while-revalidate and stale-if-error keep their
//!   meaning across processes.
//! - **Fleet single flight**: a process that must fetch takes a lease (`SET NX PX`); the others
//!   poll for the value until it appears, the lease disappears (the holder failed or the answer
//!   was not storable) or their wait limit passes, and only then fetch themselves.
//! - **Invalidation**: [`bus`] (pub/sub) carries it to every process; [`tombstones`] make values
//!   fetched before it unusable everywhere even if they are written back late; [`purge`]
//!   deletes the keys. A lost subscription drops L1 (it may have missed messages).
//! - **Degraded**: no connection, a failed or timed-out operation, or no subscription; calls then
//!   use L1 and upstream only, each L2 step costing at most `timeout`. See [`stats`].
//! - Values larger than `max_value_bytes` stay in L1 only.

mod bus;
pub(crate) mod codec;
mod coherence;
mod conn;
mod purge;
mod stats;
mod tombstones;

use std::sync::{Arc, Mutex, OnceLock, Weak};
use std::time::Duration;

use bytes::Bytes;
use tokio::sync::watch;
use tokio::time::Instant;

use crate::config::{L2Policy, L2Target, Secret};
use crate::telemetry::L2Counters;
pub use crate::telemetry::L2Health;
use codec::{Names, Record, px};
use conn::{Conn, Ended, Endpoint, Slot, bounded};
use stats::Event;
pub(crate) use tombstones::Scope;

/// A callback into the L1 tier: drop what `Scope` covers (`Scope::All` on a resync).
pub(crate) type L1Hook = Box<dyn Fn(&Scope) + Send + Sync>;

/// Most invalidations kept for replay while Redis is unreachable; beyond it, the whole service
/// is purged on reconnect instead.
const MAX_PENDING: usize = 1024;

/// The outcome of asking for the fleet-wide lease of a key.
pub(crate) enum Lease {
    /// This process fetches for the fleet; release with this token.
    Won(String),
    /// Another process is fetching.
    Held,
    /// Redis did not answer: fetch without a lease.
    Unavailable,
}

/// One service's L2 tier. Cheap to clone.
#[derive(Clone)]
pub(crate) struct L2 {
    shared: Arc<Shared>,
}

pub(crate) struct Shared {
    service: Arc<str>,
    endpoint: Endpoint,
    names: Names,
    timeout: Duration,
    lease: Duration,
    /// Freshness bound of a value in Redis.
    pub(crate) fresh: Duration,
    /// Redis lifetime of a value: `fresh` plus the longer stale window.
    retention: Duration,
    pub(crate) max_value_bytes: u64,
    slot: Slot,
    stats: stats::Stats,
    tombstones: tombstones::Tombstones,
    origin: u64,
    l1: OnceLock<L1Hook>,
    /// Invalidations not yet delivered to Redis, and whether some were dropped.
    pending: Mutex<(Vec<(Scope, u64)>, bool)>,
    /// The runtime the tier was started on: background work started from a thread outside
    /// any runtime (a binding's caller) runs there.
    home: OnceLock<tokio::runtime::Handle>,
    stop: watch::Sender<()>,
}

impl L2 {
    /// A tier for `service`; `cache_ttl`/`stale` are the cache's TTL and longer stale window.
    /// Nothing connects until [`start`](Self::start) (the first use).
    pub(crate) fn new(
        service: &str,
        policy: &L2Policy,
        password: Option<Secret>,
        cache_ttl: Duration,
        stale: Duration,
        metrics: Option<L2Counters>,
    ) -> Self {
        let fresh = policy.ttl.unwrap_or(cache_ttl);
        let retention = fresh.saturating_add(stale);
        let (stop, _) = watch::channel(());
        Self {
            shared: Arc::new(Shared {
                service: Arc::from(service),
                endpoint: Endpoint {
                    target: policy.target.clone(),
                    password,
                },
                names: Names::new(&policy.key_prefix, service),
                timeout: policy.timeout,
                lease: policy.lease,
                fresh,
                retention,
                max_value_bytes: policy.max_value_bytes,
                slot: Slot::default(),
                stats: stats::Stats::new(metrics),
                tombstones: tombstones::Tombstones::new(px(retention)),
                origin: rand::random(),
                l1: OnceLock::new(),
                pending: Mutex::default(),
                home: OnceLock::new(),
                stop,
            }),
        }
    }

    /// Where background work runs: a driven call's main runtime, the current one, or the one
    /// the tier was started on.
    fn runtime(&self) -> Option<tokio::runtime::Handle> {
        crate::driven::spawn_handle().or_else(|| self.shared.home.get().cloned())
    }

    /// Freshness bound of a value in Redis (`cache.l2.ttl`, else the cache `ttl`).
    pub(crate) fn fresh(&self) -> Duration {
        self.shared.fresh
    }

    /// Sets the L1 callback (once, right after construction).
    pub(crate) fn set_l1_hook(&self, hook: L1Hook) {
        let _ = self.shared.l1.set(hook);
    }

    /// Starts the background connection and subscription (once; needs a tokio runtime, else
    /// a later call starts them).
    pub(crate) fn start(&self) {
        if self.shared.home.get().is_some() {
            return;
        }
        let Some(runtime) = crate::driven::spawn_handle() else {
            return;
        };
        if self.shared.home.set(runtime.clone()).is_err() {
            return;
        }
        let weak = Arc::downgrade(&self.shared);
        runtime.spawn(connect_loop(weak.clone(), self.shared.stop.subscribe()));
        runtime.spawn(bus::subscribe_loop(weak, self.shared.stop.subscribe()));
    }

    /// Waits until the tier is connected and subscribed, at most `limit`; whether it is.
    pub(crate) async fn ready(&self, limit: Duration) -> bool {
        self.start();
        let until = Instant::now() + limit;
        while !self.shared.stats.is_ready() {
            if Instant::now() >= until {
                return false;
            }
            tokio::time::sleep(Duration::from_millis(5)).await;
        }
        true
    }

    /// Health as `client.health()` reports it.
    pub(crate) fn health(&self) -> L2Health {
        let target = match &self.shared.endpoint.target {
            L2Target::Address(a) => format!("redis {a}"),
            L2Target::Cluster(seeds) => format!("cluster [{}]", seeds.join(", ")),
            L2Target::UnixSocket(p) => format!("unix {p}"),
        };
        self.shared.stats.health(target)
    }

    /// The value stored for a cache key (`key_text`, of path `path`), unless absent, not a
    /// record, invalidated since it was fetched, or Redis did not answer in time.
    pub(crate) async fn get(&self, key_text: &str, path: &str) -> Option<Record> {
        self.start();
        let s = &self.shared;
        let key = s.names.value(key_text);
        let bytes: Option<Vec<u8>> = s
            .run("get", move |mut c| async move {
                c.query(redis::cmd("GET").arg(key)).await
            })
            .await?;
        let record = bytes.and_then(|b| codec::decode(Bytes::from(b)));
        match record {
            Some(r) if !s.tombstones.kills(path, r.as_of_ms) => {
                s.stats.count(Event::Hit);
                Some(r)
            }
            _ => {
                s.stats.count(Event::Miss);
                None
            }
        }
    }

    /// Stores an encoded record for `fresh` (plus the stale windows) and then releases the
    /// lease `token`, in the background. Values over `max_value_bytes` are not stored.
    pub(crate) fn put(
        &self,
        key_text: &str,
        record: Option<Bytes>,
        fresh: Duration,
        token: Option<String>,
    ) {
        let s = &self.shared;
        let Some(runtime) = self.runtime() else {
            return;
        };
        let oversized = record
            .as_ref()
            .is_some_and(|r| r.len() as u64 > s.max_value_bytes);
        if oversized {
            s.stats.count(Event::Oversized);
        }
        let record = record.filter(|_| !oversized);
        let this = self.clone();
        let key_text = key_text.to_owned();
        let life = fresh
            .min(s.fresh)
            .saturating_add(s.retention.saturating_sub(s.fresh));
        runtime.spawn(async move {
            let s = &this.shared;
            if let Some(record) = record {
                let key = s.names.value(&key_text);
                let ms = px(life);
                let stored: Option<()> = s
                    .run("set", move |mut c| async move {
                        c.query(
                            redis::cmd("SET")
                                .arg(key)
                                .arg(&record[..])
                                .arg("PX")
                                .arg(ms),
                        )
                        .await
                    })
                    .await;
                if stored.is_some() {
                    s.stats.count(Event::Stored);
                }
            }
            if let Some(token) = token {
                this.release(&key_text, token).await;
            }
        });
    }

    /// Asks for the fleet-wide lease of a key.
    pub(crate) async fn lease(&self, key_text: &str) -> Lease {
        let s = &self.shared;
        let key = s.names.lease(key_text);
        let token = format!("{:x}-{:x}", s.origin, rand::random::<u64>());
        let ms = px(s.lease);
        let t = token.clone();
        let won: Option<Option<String>> = s
            .run("lease", move |mut c| async move {
                c.query(
                    redis::cmd("SET")
                        .arg(key)
                        .arg(t)
                        .arg("NX")
                        .arg("PX")
                        .arg(ms),
                )
                .await
            })
            .await;
        match won {
            Some(Some(_)) => {
                s.stats.count(Event::LeaseWon);
                Lease::Won(token)
            }
            Some(None) => {
                s.stats.count(Event::LeaseWaited);
                Lease::Held
            }
            None => Lease::Unavailable,
        }
    }

    async fn release(&self, key_text: &str, token: String) {
        const RELEASE: &str = "if redis.call('GET', KEYS[1]) == ARGV[1] then return redis.call('DEL', KEYS[1]) end return 0";
        let key = self.shared.names.lease(key_text);
        let _: Option<i64> = self
            .shared
            .run("lease", move |mut c| async move {
                c.query(redis::cmd("EVAL").arg(RELEASE).arg(1).arg(key).arg(token))
                    .await
            })
            .await;
    }

    /// Waits for another process's value of a key until it appears, the lease is gone, or
    /// `limit` passes (polling every few milliseconds).
    pub(crate) async fn wait(&self, key_text: &str, path: &str, limit: Duration) -> Option<Record> {
        let deadline = Instant::now() + limit.min(self.shared.lease);
        let mut pause = Duration::from_millis(2);
        loop {
            let left = deadline.saturating_duration_since(Instant::now());
            if left.is_zero() {
                return None;
            }
            tokio::time::sleep(pause.min(left)).await;
            pause = (pause * 3 / 2).min(Duration::from_millis(25));
            if let Some(record) = self.get(key_text, path).await {
                return Some(record);
            }
            let key = self.shared.names.lease(key_text);
            let held: Option<bool> = self
                .shared
                .run("lease", move |mut c| async move {
                    c.query(redis::cmd("EXISTS").arg(key)).await
                })
                .await;
            if held != Some(true) {
                // Released without a value (not storable, or the holder failed) or Redis is
                // away: one last look, then fetch.
                return self.get(key_text, path).await;
            }
        }
    }
}

impl Shared {
    /// Runs one operation on the current connection, bounded by the timeout, and records it.
    /// `None` when there is no connection, it failed or timed out.
    async fn run<T, F, Fut>(&self, op: &'static str, f: F) -> Option<T>
    where
        F: FnOnce(Conn) -> Fut,
        Fut: std::future::Future<Output = redis::RedisResult<T>> + Send + 'static,
        T: Send + 'static,
    {
        let conn = self.slot.get()?;
        let start = Instant::now();
        let ended = bounded(self.timeout, f(conn)).await;
        let elapsed = start.elapsed();
        match ended {
            Ended::Done(v) => {
                self.stats.op(op, elapsed, true);
                Some(v)
            }
            Ended::Failed => {
                self.stats.count(Event::Error);
                self.stats.op(op, elapsed, false);
                None
            }
            Ended::TimedOut => {
                self.stats.count(Event::Timeout);
                self.stats.op(op, elapsed, false);
                None
            }
        }
    }
}

/// Establishes the main connection (retrying with backoff) until the tier is dropped. Once
/// made, the connection reconnects by itself.
async fn connect_loop(weak: Weak<Shared>, mut stop: watch::Receiver<()>) {
    let mut backoff = Duration::from_millis(20);
    loop {
        let Some(shared) = weak.upgrade() else { return };
        let endpoint = shared.endpoint.clone();
        drop(shared);
        let made = tokio::select! {
            r = tokio::time::timeout(conn::CONNECT_TIMEOUT, endpoint.connect()) => r.ok().and_then(Result::ok),
            _ = stop.changed() => return,
        };
        if let Some(conn) = made {
            let Some(shared) = weak.upgrade() else { return };
            shared.slot.set(conn);
            shared.stats.set_connected(true);
            return;
        }
        tokio::select! {
            () = tokio::time::sleep(backoff) => {}
            _ = stop.changed() => return,
        }
        backoff = (backoff * 2).min(Duration::from_secs(1));
    }
}
