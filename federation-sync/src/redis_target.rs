//! [`RedisTarget`]: synced entities stored in Redis, one hash per entity holding the record and
//! its sync stamp, written atomically.
//!
//! A store that writes the record and its version in two steps, or checks the version and
//! writes in two round trips, lets a concurrent writer (the service's own `apply_local`, another
//! consumer after a rebalance) slip in between: the stamp then describes a record that is not
//! there, and the next conflict check decides from a lie. Here every write is one Lua script
//! that compares the stored sync state with the one the decision was made from and, only if
//! they are equal, sets record, state and tombstone index together; otherwise the subscriber
//! reads and decides again ([`TargetError::stale`]).
//!
//! Layout for entity `user`/`42` under prefix `sync` (standalone Redis; the scripts touch two
//! keys, so a Redis Cluster would need both in one slot):
//!
//! - `sync:user:42` (hash): `record` (the record as a JSON object; absent while the entity is
//!   deleted), `version` (the version's stamp, `origin@hlc#event_id`, for people), `sync` (the
//!   [`EntityState`] without its record, as JSON: version, what was seen, concurrent heads).
//! - `sync:tombstones` (sorted set): every deleted entity's hash key, scored by the wall time of
//!   its delete, so [`PurgeTombstones`] finds old tombstones without a scan.

use std::time::Duration;

use futures_util::future::BoxFuture;
use redis::Script;
use redis::aio::{ConnectionManager, ConnectionManagerConfig};

use crate::error::TargetError;
use crate::model::EntityState;
use crate::purge::{PurgeTombstones, TombstoneCutoff};
use crate::target::{AppliedChange, SyncTarget};

/// Compare-and-set of one entity: KEYS = hash, tombstone index; ARGV = expected `sync` ('' =
/// nothing stored), new `sync`, record ('' = deleted), delete wall ms, version text.
const WRITE: &str = r"
local current = redis.call('HGET', KEYS[1], 'sync')
if (current or '') ~= ARGV[1] then return 0 end
redis.call('HSET', KEYS[1], 'sync', ARGV[2], 'version', ARGV[5])
if ARGV[3] == '' then
  redis.call('HDEL', KEYS[1], 'record')
  redis.call('ZADD', KEYS[2], ARGV[4], KEYS[1])
else
  redis.call('HSET', KEYS[1], 'record', ARGV[3])
  redis.call('ZREM', KEYS[2], KEYS[1])
end
return 1
";

/// Purge of one tombstone: KEYS = hash, tombstone index; ARGV = cutoff ms. Removes the hash only
/// if it is still deleted and its delete is still older than the cutoff.
const PURGE: &str = r"
local score = redis.call('ZSCORE', KEYS[2], KEYS[1])
if not score or tonumber(score) >= tonumber(ARGV[1]) then return 0 end
redis.call('ZREM', KEYS[2], KEYS[1])
if redis.call('HEXISTS', KEYS[1], 'record') == 1 then return 0 end
redis.call('DEL', KEYS[1])
return 1
";

/// Tombstones looked at per round trip of a purge.
const PURGE_BATCH: usize = 500;

/// A [`SyncTarget`] on a standalone Redis server (see the module docs for the layout). Cheap to
/// clone; clones share one multiplexed, reconnecting connection.
#[derive(Clone)]
pub struct RedisTarget {
    conn: ConnectionManager,
    prefix: String,
    write: Script,
    purge: Script,
}

impl std::fmt::Debug for RedisTarget {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RedisTarget")
            .field("prefix", &self.prefix)
            .finish_non_exhaustive()
    }
}

impl RedisTarget {
    /// Connect to `url` (`redis://host:port[/db]`, `unix:///path`) and keep entities under
    /// `prefix` (non-empty, no spaces; keys are `<prefix>:<type>:<id>`).
    pub async fn connect(url: &str, prefix: &str) -> Result<Self, TargetError> {
        check_prefix(prefix)?;
        let client = redis::Client::open(url)
            .map_err(|e| TargetError::new(format!("redis target: bad url {url:?}: {e}")))?;
        let config = ConnectionManagerConfig::new()
            .set_connection_timeout(Some(Duration::from_secs(2)))
            .set_response_timeout(Some(Duration::from_secs(2)))
            .set_max_delay(Duration::from_millis(500))
            .set_number_of_retries(2);
        let conn = client
            .get_connection_manager_with_config(config)
            .await
            .map_err(|e| TargetError::new(format!("redis target: connecting to {url}: {e}")))?;
        Self::with_connection(conn, prefix)
    }

    /// Use an existing connection.
    pub fn with_connection(conn: ConnectionManager, prefix: &str) -> Result<Self, TargetError> {
        check_prefix(prefix)?;
        Ok(Self {
            conn,
            prefix: prefix.to_string(),
            write: Script::new(WRITE),
            purge: Script::new(PURGE),
        })
    }

    /// The hash key of an entity.
    pub fn key(&self, entity_type: &str, entity_id: &str) -> String {
        format!("{}:{entity_type}:{entity_id}", self.prefix)
    }

    /// The sorted set indexing deleted entities by the time of their delete.
    pub fn tombstones_key(&self) -> String {
        format!("{}:tombstones", self.prefix)
    }

    /// The stored state of an entity (what the subscriber reads).
    pub async fn get(
        &self,
        entity_type: &str,
        entity_id: &str,
    ) -> Result<Option<EntityState>, TargetError> {
        let key = self.key(entity_type, entity_id);
        let (sync, record): (Option<String>, Option<String>) = redis::cmd("HMGET")
            .arg(&key)
            .arg("sync")
            .arg("record")
            .query_async(&mut self.conn.clone())
            .await
            .map_err(|e| TargetError::new(format!("redis target: reading {key}: {e}")))?;
        let Some(sync) = sync else {
            return Ok(None);
        };
        let mut state: EntityState = serde_json::from_str(&sync)
            .map_err(|e| TargetError::new(format!("redis target: {key} field sync: {e}")))?;
        state.data = record
            .map(|r| serde_json::from_str(&r))
            .transpose()
            .map_err(|e| TargetError::new(format!("redis target: {key} field record: {e}")))?;
        Ok(Some(state))
    }

    async fn put(&self, change: &AppliedChange) -> Result<(), TargetError> {
        let event = &change.event;
        let key = self.key(&event.entity_type, &event.entity_id);
        let expected = change
            .previous
            .as_ref()
            .map(sync_field)
            .transpose()?
            .unwrap_or_default();
        let state = &change.state;
        let record = match &state.data {
            Some(data) => data.json().to_owned(),
            None => String::new(),
        };
        let written: i64 = self
            .write
            .key(&key)
            .key(self.tombstones_key())
            .arg(expected)
            .arg(sync_field(state)?)
            .arg(record)
            .arg(state.version.hlc.wall_ms)
            .arg(state.version.to_string())
            .invoke_async(&mut self.conn.clone())
            .await
            .map_err(|e| TargetError::new(format!("redis target: writing {key}: {e}")))?;
        if written == 1 {
            Ok(())
        } else {
            Err(TargetError::stale())
        }
    }

    async fn purge_before(&self, cutoff: TombstoneCutoff) -> Result<u64, TargetError> {
        let index = self.tombstones_key();
        let mut purged = 0;
        loop {
            let keys: Vec<String> = redis::cmd("ZRANGEBYSCORE")
                .arg(&index)
                .arg("-inf")
                .arg(format!("({}", cutoff.before_ms()))
                .arg("LIMIT")
                .arg(0)
                .arg(PURGE_BATCH)
                .query_async(&mut self.conn.clone())
                .await
                .map_err(|e| TargetError::new(format!("redis target: reading {index}: {e}")))?;
            for key in &keys {
                let removed: i64 = self
                    .purge
                    .key(key)
                    .key(&index)
                    .arg(cutoff.before_ms())
                    .invoke_async(&mut self.conn.clone())
                    .await
                    .map_err(|e| TargetError::new(format!("redis target: purging {key}: {e}")))?;
                purged += u64::try_from(removed).unwrap_or(0);
            }
            if keys.len() < PURGE_BATCH {
                return Ok(purged);
            }
        }
    }
}

fn check_prefix(prefix: &str) -> Result<(), TargetError> {
    if prefix.is_empty() || prefix.chars().any(char::is_whitespace) {
        return Err(TargetError::new(format!(
            "redis target: prefix {prefix:?} must be non-empty and without whitespace"
        )));
    }
    Ok(())
}

/// The `sync` field: the state without its record (kept in `record`).
fn sync_field(state: &EntityState) -> Result<String, TargetError> {
    let meta = EntityState {
        data: None,
        ..state.clone()
    };
    serde_json::to_string(&meta)
        .map_err(|e| TargetError::new(format!("redis target: encoding the sync state: {e}")))
}

impl SyncTarget for RedisTarget {
    fn read<'a>(
        &'a self,
        entity_type: &'a str,
        entity_id: &'a str,
    ) -> BoxFuture<'a, Result<Option<EntityState>, TargetError>> {
        Box::pin(self.get(entity_type, entity_id))
    }

    fn write<'a>(&'a self, change: &'a AppliedChange) -> BoxFuture<'a, Result<(), TargetError>> {
        Box::pin(self.put(change))
    }
}

impl PurgeTombstones for RedisTarget {
    fn purge_tombstones(&self, cutoff: TombstoneCutoff) -> BoxFuture<'_, Result<u64, TargetError>> {
        Box::pin(self.purge_before(cutoff))
    }
}
