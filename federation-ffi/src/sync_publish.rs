//! Publishing through the C ABI: a change as JSON in, the published change as JSON out,
//! completed through a callback.
//!
//! **Failure prevented.** A publish waits for the broker's durable acknowledgement, up to the
//! whole deadline when the broker is down; a blocking function would pin a caller thread per
//! publish. Here it completes through a callback, honours a cancel token and a per-call
//! deadline, and a malformed change is refused before anything is sent, naming the field.

use std::ffi::{c_char, c_void};
use std::time::Duration;

use federation_sync::Change;
use federation_sync::model::{ChangeEvent, EntityState, Operation, Stamp};
use serde::{Deserialize, Serialize};
use serde_json::Value;

use crate::cancel::federation_cancel_t;
use crate::error::{
    FEDERATION_ERROR_INTERNAL, FEDERATION_ERROR_INVALID_REQUEST, federation_error_t,
};
use crate::guard::catch;
use crate::input::{MAX_BODY, c_str, handle, invalid};
use crate::registry::{UserData, cancel_token};
use crate::sync::{
    federation_sync_t, federation_text_callback_t, from_sync, spawn_completing, split,
};
use crate::text::federation_string_t;

fn bad(message: String) -> Box<federation_error_t> {
    invalid(FEDERATION_ERROR_INVALID_REQUEST, message)
}

/// A change as C passes it.
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct ChangeJson {
    entity_type: String,
    entity_id: String,
    operation: Operation,
    #[serde(default)]
    data: Value,
    #[serde(default)]
    base: Option<EntityState>,
}

/// A published change as C receives it.
#[derive(Serialize)]
struct PublishedJson<'a> {
    stamp: &'a Stamp,
    event: &'a ChangeEvent,
    state: &'a EntityState,
    partition: i32,
    offset: i64,
}

fn parse_change(json: &str) -> Result<Change, Box<federation_error_t>> {
    let parsed: ChangeJson = serde_json::from_str(json)
        .map_err(|e| bad(format!("`change_json` is not a valid change: {e}")))?;
    if !matches!(parsed.data, Value::Object(_) | Value::Null) {
        return Err(bad(
            "`change_json`: `data` must be a JSON object (or null)".to_owned()
        ));
    }
    Ok(
        Change::new(parsed.entity_type, parsed.entity_id, parsed.operation)
            .data(parsed.data)
            .base(parsed.base),
    )
}

/// Publishes a change and returns at once; the callback runs once the broker acknowledged it
/// durably (idempotent producer, `acks=all`) or it failed.
///
/// `change_json` is `{"entity_type": "user", "entity_id": "42", "operation":
/// "create"|"update"|"delete", "data": {...}, "base": <entity state or null>}` (`data` and
/// `base` optional; `base` is the state the writer based the change on, as stored with its
/// record; unknown fields are errors). `timeout_ms` is the publish deadline; 0 means
/// `sync.publish_timeout`. On success returns NULL and later calls `callback(user_data, text,
/// error)` exactly once on a worker thread, `text` being `{"stamp", "event", "state",
/// "partition", "offset"}` (`state`: the entity's state after the change, to store with the
/// record and pass as the next change's `base`). An unknown entity type, a missing required
/// field or an oversized change arrive as `INVALID_REQUEST`; no acknowledgement within the
/// deadline as `TIMEOUT` (the change may still be delivered later, never twice: retrying it is
/// safe); a broker refusal as `TRANSPORT`; cancelling (`out_cancel`) as `CANCELLED`. Malformed
/// JSON and other invalid input return an `INVALID_REQUEST` error; the callback never runs.
///
/// # Safety
/// `sync` is a live handle; `change_json` is a NUL-terminated string (at most 256 MiB),
/// borrowed for this call only; `user_data` is handed to `callback` on another thread;
/// `out_cancel` is NULL or valid for a write. Thread-safe.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn federation_sync_publish(
    sync: *const federation_sync_t,
    change_json: *const c_char,
    timeout_ms: u64,
    callback: federation_text_callback_t,
    user_data: *mut c_void,
    out_cancel: *mut *mut federation_cancel_t,
) -> *mut federation_error_t {
    catch(|| {
        let kind = FEDERATION_ERROR_INVALID_REQUEST;
        // SAFETY (both reads): forwarded from the caller.
        let sync = unsafe { handle(sync, "sync") }?.sync.clone();
        let json = unsafe { c_str(change_json, "change_json", MAX_BODY, kind) }?;
        let callback = callback.ok_or_else(|| bad("`callback` is NULL".to_owned()))?;
        let change = parse_change(json)?;
        let user_data = UserData(user_data);
        let work = async move {
            let published = if timeout_ms == 0 {
                sync.publish(change).await
            } else {
                sync.publish_within(change, Duration::from_millis(timeout_ms))
                    .await
            }
            .map_err(|e| from_sync(&e))?;
            serde_json::to_string(&PublishedJson {
                stamp: &published.stamp,
                event: &published.event,
                state: &published.state,
                partition: published.partition,
                offset: published.offset,
            })
            .map_err(|e| federation_error_t::boxed(FEDERATION_ERROR_INTERNAL, e.to_string()))
        };
        spawn_completing(
            work,
            cancel_token(out_cancel),
            "the publish",
            move |outcome| {
                let (text, error) = split(outcome, federation_string_t::raw);
                let user_data = user_data;
                // SAFETY: as in `federation_sync_new`.
                unsafe { callback(user_data.0, text, error) };
            },
        )
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn message(result: Result<Change, Box<federation_error_t>>) -> String {
        match result {
            Ok(change) => panic!("expected an error, got {change:?}"),
            Err(e) => e.message_text(),
        }
    }

    #[test]
    fn a_change_parses_with_its_base() {
        let change = parse_change(
            r#"{"entity_type": "user", "entity_id": "42", "operation": "update",
                "data": {"name": "Ada"}}"#,
        )
        .unwrap_or_else(|e| panic!("valid change: {}", e.message_text()));
        assert_eq!(change.entity_id, "42");
        assert_eq!(change.operation, Operation::Update);
        assert_eq!(change.data.get("name"), Some(&Value::from("Ada")));
        assert!(change.base.is_none());
    }

    #[test]
    fn bad_changes_name_the_problem() {
        let unknown_op = message(parse_change(
            r#"{"entity_type": "user", "entity_id": "1", "operation": "upsert"}"#,
        ));
        assert!(unknown_op.contains("upsert"), "{unknown_op}");
        let not_object = message(parse_change(
            r#"{"entity_type": "user", "entity_id": "1", "operation": "create", "data": [1]}"#,
        ));
        assert!(
            not_object.contains("`data` must be a JSON object"),
            "{not_object}"
        );
        let unknown_field = message(parse_change(
            r#"{"entity_type": "user", "entity_id": "1", "operation": "create", "x": 1}"#,
        ));
        assert!(
            unknown_field.contains("unknown field `x`"),
            "{unknown_field}"
        );
    }
}
