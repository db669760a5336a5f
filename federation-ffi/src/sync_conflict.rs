//! The `callback` conflict policy through the C ABI: a C function decides between two versions.
//!
//! **Failures prevented.** Without it, a configuration with a `policy: callback` entity type
//! cannot be used from C or Go at all (creating the sync fails), so a service that needs its
//! own merge rule has to give up the shared configuration. The decision is a pure function both
//! clusters run on the same inputs, so the runtime's callback has no error path and must not
//! block a worker: the C function gets the two versions as JSON and a `federation_sync_reply_t`
//! (the reply mechanism of the sync targets) and answers it *before it returns*. A failing
//! callback (an `ERROR` answer, no answer before returning, an answer that is not a decision)
//! neither crashes the consumer nor stalls the partition: that conflict is decided by last
//! writer wins (the newer stamp, which both clusters pick alike, as in Python) and the failure
//! is written to standard error, naming the entity type and the reason.

use std::ffi::{CString, c_char, c_void};
use std::sync::Arc;

use federation_sync::SyncBuilder;
use federation_sync::model::{ConflictCallback, Resolution, Version};
use serde_json::{Map, Value};
use tokio::sync::oneshot::error::TryRecvError;

use crate::cancel::federation_cancel_t;
use crate::client::federation_config_format_t;
use crate::error::{FEDERATION_ERROR_INVALID_REQUEST, federation_error_t, to_c_string};
use crate::guard::catch;
use crate::input::{MAX_NAME, c_str_list, invalid};
use crate::registry::UserData;
use crate::sync::{federation_sync_callback_t, start};
use crate::sync_target::{
    FEDERATION_SYNC_REPLY_ERROR, FEDERATION_SYNC_REPLY_OK, federation_sync_reply_t, reply,
};

/// The conflict callback of the entity types with `policy: callback`.
#[repr(C)]
#[derive(Clone, Copy, Debug)]
pub struct federation_sync_conflict_t {
    /// The entity types this callback decides: `entity_types_count` NUL-terminated names one
    /// after another (each must have `policy: callback`, and every such type must be listed).
    pub entity_types: *const c_char,
    /// How many names `entity_types` holds.
    pub entity_types_count: usize,
    /// Decide a conflict of `entity_type` between `first_json` and `second_json` (each
    /// `{"stamp": <stamp>, "data": <record or null for a delete>}`, the older stamp first; all
    /// NUL-terminated and valid during the call). Answer through `reply` BEFORE returning:
    /// `FEDERATION_SYNC_REPLY_OK` with `first`, `second` or a JSON object (the merged record,
    /// which takes the newer stamp). Must be deterministic (both clusters run it); with more
    /// than two concurrent versions, commutative and associative too. Runs on library worker
    /// threads, concurrently for different entities.
    pub decide: Option<
        unsafe extern "C" fn(
            user_data: *mut c_void,
            entity_type: *const c_char,
            first_json: *const c_char,
            second_json: *const c_char,
            reply: *mut federation_sync_reply_t,
        ),
    >,
    /// Called exactly once when the library no longer uses `user_data` (the sync was freed, or
    /// creating it failed after the call returned); may be NULL.
    pub release: Option<unsafe extern "C" fn(user_data: *mut c_void)>,
}

type Decide = unsafe extern "C" fn(
    *mut c_void,
    *const c_char,
    *const c_char,
    *const c_char,
    *mut federation_sync_reply_t,
);

/// A checked `federation_sync_conflict_t`, not yet owning its `user_data`.
pub(crate) struct ConflictSpec {
    types: Vec<String>,
    decide: Decide,
    release: Option<unsafe extern "C" fn(*mut c_void)>,
    user_data: UserData,
}

/// Checks `conflict` (NULL: no callback).
///
/// # Safety
/// `conflict` is NULL or points to a valid struct whose `entity_types` holds
/// `entity_types_count` NUL-terminated strings.
pub(crate) unsafe fn conflict_spec(
    conflict: *const federation_sync_conflict_t,
    user_data: *mut c_void,
) -> Result<Option<ConflictSpec>, Box<federation_error_t>> {
    // SAFETY: NULL or a valid struct per the caller.
    let Some(conflict) = (unsafe { conflict.as_ref() }) else {
        return Ok(None);
    };
    let bad = |m: &str| invalid(FEDERATION_ERROR_INVALID_REQUEST, m.to_owned());
    let decide = conflict
        .decide
        .ok_or_else(|| bad("`conflict->decide` is NULL"))?;
    let (ptr, count) = (conflict.entity_types, conflict.entity_types_count);
    // SAFETY: forwarded from the caller.
    let types = unsafe { c_str_list(ptr, count, "conflict->entity_types", MAX_NAME) }?
        .filter(|types| !types.is_empty())
        .ok_or_else(|| bad("`conflict->entity_types` lists no entity type"))?;
    Ok(Some(ConflictSpec {
        types,
        decide,
        release: conflict.release,
        user_data: UserData(user_data),
    }))
}

impl ConflictSpec {
    /// Registers the callback for each listed type; from here `release` runs once the last
    /// registration is dropped.
    pub(crate) fn register(self, mut builder: SyncBuilder) -> SyncBuilder {
        let shared = Arc::new(CConflict {
            decide: self.decide,
            release: self.release,
            user_data: self.user_data,
        });
        for entity_type in self.types {
            let name = to_c_string(entity_type.clone());
            let conflict = shared.clone();
            let callback: ConflictCallback = Arc::new(move |first: &Version, second: &Version| {
                conflict.resolve(&name, first, second)
            });
            builder = builder.callback(entity_type, callback);
        }
        builder
    }
}

/// The C callback, owning its `user_data`.
struct CConflict {
    decide: Decide,
    release: Option<unsafe extern "C" fn(*mut c_void)>,
    user_data: UserData,
}

// SAFETY: `federation_sync_new_with_conflict` documents that `decide` and `user_data` are used
// from library worker threads concurrently; the caller guarantees that.
unsafe impl Sync for CConflict {}

impl Drop for CConflict {
    fn drop(&mut self) {
        if let Some(release) = self.release {
            // SAFETY: the caller supplied this callback for this `user_data`; this is the one
            // call, after every `decide` returned (each holds a reference while it runs).
            unsafe { release(self.user_data.0) };
        }
    }
}

impl CConflict {
    fn resolve(&self, entity_type: &CString, first: &Version, second: &Version) -> Resolution {
        self.ask(entity_type, first, second)
            .unwrap_or_else(|reason| {
                eprintln!(
                    "federation: the conflict callback of {:?} failed ({reason}); last writer wins",
                    entity_type.to_string_lossy()
                );
                Resolution::Second
            })
    }

    fn ask(
        &self,
        entity_type: &CString,
        first: &Version,
        second: &Version,
    ) -> Result<Resolution, String> {
        let json = |v: &Version| {
            serde_json::to_string(v)
                .map(to_c_string)
                .map_err(|e| e.to_string())
        };
        let (first, second) = (json(first)?, json(second)?);
        let (raw, mut receiver) = reply();
        // SAFETY: the caller supplied this callback; the strings live until it returns;
        // ownership of `raw` passes to it.
        unsafe {
            (self.decide)(
                self.user_data.0,
                entity_type.as_ptr(),
                first.as_ptr(),
                second.as_ptr(),
                raw,
            );
        }
        match receiver.try_recv() {
            Ok((FEDERATION_SYNC_REPLY_OK, Some(text))) => parse_resolution(&text),
            Ok((FEDERATION_SYNC_REPLY_OK, None)) => Err("it answered OK without a decision".into()),
            Ok((FEDERATION_SYNC_REPLY_ERROR, text)) => {
                Err(text.unwrap_or_else(|| "it answered ERROR without a reason".into()))
            }
            Ok((status, _)) => Err(format!("it answered status {status}; allowed: OK or ERROR")),
            Err(TryRecvError::Empty) => Err("it returned without answering its reply".into()),
            Err(TryRecvError::Closed) => Err("its reply was freed without an answer".into()),
        }
    }
}

/// `first`, `second` or a JSON object (the merged record).
fn parse_resolution(text: &str) -> Result<Resolution, String> {
    match text.trim() {
        "first" => Ok(Resolution::First),
        "second" => Ok(Resolution::Second),
        other => serde_json::from_str::<Map<String, Value>>(other)
            .map(Resolution::Merged)
            .map_err(|_| {
                format!("it answered {other:?}; allowed: first, second or a JSON object (the merged record)")
            }),
    }
}

/// `federation_sync_new` for a configuration with `policy: callback` entity types: `conflict`
/// (copied; NULL allowed, then this is `federation_sync_new`) decides their conflicts, with
/// `conflict_user_data`. On success returns NULL, later calls `callback` as
/// `federation_sync_new` does, and `conflict->release(conflict_user_data)` runs exactly once
/// when the library is done with it (after `federation_sync_free` and the end of every
/// subscription, or when creating fails later). A listed type without `policy: callback`, or
/// such a type not listed, arrives as `CONFIG` through `callback`. Invalid input (also a NULL
/// `decide`, an empty or invalid type list) returns the error; `callback` and `release` then
/// never run.
///
/// # Safety
/// As `federation_sync_new`; `conflict` is NULL or points to a valid struct whose
/// `entity_types` holds `entity_types_count` NUL-terminated strings (borrowed for this call);
/// `decide` and `conflict_user_data` may be used from worker threads concurrently.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn federation_sync_new_with_conflict(
    config: *const c_char,
    format: federation_config_format_t,
    local_cluster: *const c_char,
    conflict: *const federation_sync_conflict_t,
    conflict_user_data: *mut c_void,
    callback: federation_sync_callback_t,
    user_data: *mut c_void,
    out_cancel: *mut *mut federation_cancel_t,
) -> *mut federation_error_t {
    catch(|| {
        // SAFETY (both): forwarded from the caller.
        let spec = unsafe { conflict_spec(conflict, conflict_user_data) }?;
        unsafe {
            start(
                config,
                format,
                local_cluster,
                spec,
                callback,
                user_data,
                out_cancel,
            )
        }
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn answers_parse_to_decisions_and_anything_else_names_what_is_allowed() {
        assert_eq!(parse_resolution("first"), Ok(Resolution::First));
        assert_eq!(parse_resolution(" second\n"), Ok(Resolution::Second));
        let merged = parse_resolution(r#"{"name":"ada"}"#);
        assert!(matches!(merged, Ok(Resolution::Merged(m)) if m["name"] == "ada"));
        let wrong = parse_resolution("[1]").expect_err("a list is no decision");
        assert!(wrong.contains("first, second or a JSON object"), "{wrong}");
    }

    unsafe extern "C" fn never(
        _: *mut c_void,
        _: *const c_char,
        _: *const c_char,
        _: *const c_char,
        _: *mut federation_sync_reply_t,
    ) {
    }

    fn refusal(conflict: &federation_sync_conflict_t) -> String {
        // SAFETY: a valid struct whose list is valid for its count.
        match unsafe { conflict_spec(conflict, std::ptr::null_mut()) } {
            Ok(_) => panic!("accepted"),
            Err(e) => e.message_text(),
        }
    }

    #[test]
    fn a_conflict_without_decide_or_entity_types_is_refused_by_field() {
        let types = c"user";
        let mut conflict = federation_sync_conflict_t {
            entity_types: types.as_ptr(),
            entity_types_count: 1,
            decide: None,
            release: None,
        };
        assert!(refusal(&conflict).contains("`conflict->decide` is NULL"));
        conflict.decide = Some(never);
        conflict.entity_types_count = 0;
        assert!(refusal(&conflict).contains("lists no entity type"));
        conflict.entity_types = std::ptr::null();
        assert!(refusal(&conflict).contains("lists no entity type"));
        conflict.entity_types = types.as_ptr();
        conflict.entity_types_count = 1;
        // SAFETY: as above.
        let spec = unsafe { conflict_spec(&conflict, std::ptr::null_mut()) };
        assert!(matches!(spec, Ok(Some(s)) if s.types == ["user"]));
        // SAFETY: NULL is allowed.
        assert!(matches!(
            unsafe { conflict_spec(std::ptr::null(), std::ptr::null_mut()) },
            Ok(None)
        ));
    }
}
