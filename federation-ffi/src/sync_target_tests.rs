//! The C target adapter without a broker: replies in and out of the callback, every status,
//! bad answers, and the release contract.

use std::ffi::{CString, c_char, c_void};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU32, Ordering};

use federation_sync::model::{ChangeEvent, Effect, EntityState};
use federation_sync::{AppliedChange, SyncTarget};

use super::*;

const STATE: &str = r#"{"data":{"name":"Ada"},"version":{"event_id":"e1","origin":"zervigo","hlc":{"wall_ms":5,"logical":0}},"seen":{"zervigo":{"wall_ms":5,"logical":0}}}"#;

/// What the test callbacks answer.
struct Script {
    status: federation_sync_reply_status_t,
    text: Option<CString>,
    /// Answer from another thread after the callback returned.
    later: bool,
    released: AtomicU32,
    writes: AtomicU32,
}

fn script(status: federation_sync_reply_status_t, text: Option<&str>, later: bool) -> Arc<Script> {
    Arc::new(Script {
        status,
        text: text.map(|t| CString::new(t).unwrap_or_default()),
        later,
        released: AtomicU32::new(0),
        writes: AtomicU32::new(0),
    })
}

struct Reply(*mut federation_sync_reply_t);
// SAFETY: a reply handle may be answered from any thread (its contract).
unsafe impl Send for Reply {}

fn respond(script: &Script, reply: *mut federation_sync_reply_t) {
    let (status, text) = (script.status, script.text.clone());
    let reply = Reply(reply);
    let send = move || {
        let reply = reply;
        let ptr = text.as_ref().map_or(std::ptr::null(), |t| t.as_ptr());
        // SAFETY: a live reply handle, answered once.
        let error = unsafe { federation_sync_reply(reply.0, status, ptr) };
        // SAFETY: NULL or an owned error.
        unsafe { crate::error::federation_error_free(error) };
    };
    if script.later {
        std::thread::spawn(send);
    } else {
        send();
    }
}

unsafe extern "C" fn read_cb(
    data: *mut c_void,
    _entity_type: *const c_char,
    _entity_id: *const c_char,
    reply: *mut federation_sync_reply_t,
) {
    // SAFETY: `data` is the test's `Script`, alive for the test.
    respond(unsafe { &*data.cast::<Script>() }, reply);
}

unsafe extern "C" fn write_cb(
    data: *mut c_void,
    change: *const c_char,
    len: usize,
    reply: *mut federation_sync_reply_t,
) {
    // SAFETY: as in `read_cb`; `change` has `len` bytes.
    let script = unsafe { &*data.cast::<Script>() };
    let text = unsafe { std::slice::from_raw_parts(change.cast::<u8>(), len) };
    let parsed: serde_json::Value = serde_json::from_slice(text).unwrap_or_default();
    if parsed["effect"] == "applied" && parsed["state"]["data"]["name"] == "Ada" {
        script.writes.fetch_add(1, Ordering::SeqCst);
    }
    respond(script, reply);
}

unsafe extern "C" fn release_cb(data: *mut c_void) {
    // SAFETY: as in `read_cb`.
    unsafe { &*data.cast::<Script>() }
        .released
        .fetch_add(1, Ordering::SeqCst);
}

fn target(script: &Arc<Script>) -> CTarget {
    CTarget {
        read: read_cb,
        write: write_cb,
        release: Some(release_cb),
        user_data: UserData(Arc::as_ptr(script).cast_mut().cast()),
        armed: AtomicBool::new(true),
    }
}

fn state() -> EntityState {
    serde_json::from_str(STATE).unwrap_or_else(|e| panic!("test state: {e}"))
}

fn change() -> AppliedChange {
    let event: ChangeEvent = serde_json::from_str(
        r#"{"v":1,"entity_type":"user","entity_id":"1","operation":"create","data":{"name":"Ada"},
            "stamp":{"event_id":"e1","origin":"zervigo","hlc":{"wall_ms":5,"logical":0}}}"#,
    )
    .unwrap_or_else(|e| panic!("test event: {e}"));
    AppliedChange {
        event,
        effect: Effect::Applied,
        state: state(),
        previous: None,
    }
}

#[tokio::test]
async fn a_read_answered_in_the_callback_or_later_gives_the_state() {
    for later in [false, true] {
        let ok = script(FEDERATION_SYNC_REPLY_OK, Some(STATE), later);
        let read = target(&ok).read("user", "1").await;
        assert_eq!(read, Ok(Some(state())), "later = {later}");
        let none = script(FEDERATION_SYNC_REPLY_OK, None, later);
        assert_eq!(target(&none).read("user", "1").await, Ok(None));
    }
}

#[tokio::test]
async fn errors_and_bad_state_are_handler_errors_naming_the_reason() {
    let failing = script(FEDERATION_SYNC_REPLY_ERROR, Some("db down"), true);
    let error = target(&failing).read("user", "1").await.err();
    assert!(
        error
            .as_ref()
            .is_some_and(|e| !e.is_stale() && e.to_string().contains("db down")),
        "{error:?}"
    );
    let garbage = script(FEDERATION_SYNC_REPLY_OK, Some("{not json"), false);
    let error = target(&garbage).read("user", "1").await.err();
    assert!(
        error
            .as_ref()
            .is_some_and(|e| e.to_string().contains("invalid state JSON")),
        "{error:?}"
    );
    let unknown = script(7, None, false);
    let error = target(&unknown).read("user", "1").await.err();
    assert!(
        error
            .as_ref()
            .is_some_and(|e| e.to_string().contains("unknown reply status 7")),
        "{error:?}"
    );
}

#[tokio::test]
async fn a_write_gets_the_change_json_and_stale_is_a_compare_and_set_miss() {
    let ok = script(FEDERATION_SYNC_REPLY_OK, None, true);
    assert_eq!(target(&ok).write(&change()).await, Ok(()));
    assert_eq!(ok.writes.load(Ordering::SeqCst), 1);
    let stale = script(FEDERATION_SYNC_REPLY_STALE, None, false);
    let error = target(&stale).write(&change()).await.err();
    assert!(error.is_some_and(|e| e.is_stale()));
}

#[test]
fn release_runs_once_when_dropped_and_never_when_disarmed() {
    let s = script(FEDERATION_SYNC_REPLY_OK, None, false);
    drop(target(&s));
    assert_eq!(s.released.load(Ordering::SeqCst), 1);
    let disarmed = target(&s);
    disarmed.armed.store(false, Ordering::Release);
    drop(disarmed);
    assert_eq!(s.released.load(Ordering::SeqCst), 1);
}

#[test]
fn replying_to_nothing_is_an_error_not_a_crash() {
    // SAFETY: NULL is allowed and reported.
    let error = unsafe { federation_sync_reply(std::ptr::null_mut(), 0, std::ptr::null()) };
    assert!(!error.is_null());
    // SAFETY: an owned error.
    let message = unsafe { &*error }.message_text();
    assert!(message.contains("`reply` is NULL"), "{message}");
    // SAFETY: an owned error.
    unsafe { crate::error::federation_error_free(error) };
}
