//! A call that needs no I/O completes on the calling thread, before `federation_client_call`
//! returns (no hand-off to a runtime worker); one that waits for I/O completes later.
#![allow(unsafe_code, reason = "exercises the C ABI")]

use std::ffi::{CString, c_void};
use std::sync::Mutex;
use std::thread::ThreadId;

use federation::call::federation_client_call;
use federation::client::{
    FEDERATION_CONFIG_YAML, federation_client_free, federation_client_new, federation_client_t,
};
use federation::error::{federation_error_free, federation_error_t};
use federation::response::{federation_response_free, federation_response_t};

/// What the callback saw: the thread it ran on and whether it got an error.
type Seen = Mutex<Option<(ThreadId, bool)>>;

unsafe extern "C" fn record(
    data: *mut c_void,
    response: *mut federation_response_t,
    error: *mut federation_error_t,
) {
    // SAFETY: `data` is the `Seen` passed by the test, alive until the callback ran.
    let seen = unsafe { &*data.cast::<Seen>() };
    *seen.lock().unwrap_or_else(|e| e.into_inner()) =
        Some((std::thread::current().id(), !error.is_null()));
    // SAFETY: the callback owns both pointers (one is NULL).
    unsafe {
        federation_response_free(response);
        federation_error_free(error);
    }
}

fn client() -> *mut federation_client_t {
    // A port nothing listens on: a call to `svc` has to wait for a connection attempt.
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .map(|a| a.port())
        .unwrap_or(9);
    let config = CString::new(format!(
        "clusters:\n  a:\n    static:\n      svc-a: [{{ id: i0, address: 127.0.0.1, port: {port} }}]\n\
         services:\n  svc:\n    names: {{ a: svc-a }}\n"
    ))
    .unwrap_or_default();
    let mut client = std::ptr::null_mut();
    // SAFETY: valid string and out-pointer.
    let err =
        unsafe { federation_client_new(config.as_ptr(), FEDERATION_CONFIG_YAML, &mut client) };
    assert!(err.is_null(), "client config rejected");
    client
}

fn call(client: *mut federation_client_t, service: &str, seen: &Seen) {
    let service = CString::new(service).unwrap_or_default();
    // SAFETY: live client, NUL-terminated strings, `seen` outlives the call (the tests wait
    // for the callback before dropping it).
    let err = unsafe {
        federation_client_call(
            client,
            service.as_ptr(),
            c"GET".as_ptr(),
            c"/".as_ptr(),
            std::ptr::null(),
            0,
            std::ptr::null(),
            0,
            std::ptr::null(),
            Some(record),
            std::ptr::from_ref(seen).cast_mut().cast(),
            std::ptr::null_mut(),
        )
    };
    assert!(err.is_null(), "call rejected");
}

#[test]
fn call_without_io_completes_inline_on_the_calling_thread() {
    let client = client();
    let seen = Seen::new(None);
    call(client, "no-such-service", &seen);
    let got = *seen.lock().unwrap_or_else(|e| e.into_inner());
    assert_eq!(got, Some((std::thread::current().id(), true)));
    // SAFETY: live client, freed once.
    unsafe { federation_client_free(client) };
}

#[test]
fn call_waiting_for_io_completes_later_on_a_worker() {
    let client = client();
    let seen = Seen::new(None);
    call(client, "svc", &seen);
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(30);
    let got = loop {
        if let Some(got) = *seen.lock().unwrap_or_else(|e| e.into_inner()) {
            break got;
        }
        assert!(std::time::Instant::now() < deadline, "no completion");
        std::thread::sleep(std::time::Duration::from_millis(5));
    };
    assert_ne!(got.0, std::thread::current().id());
    assert!(got.1, "a closed port must fail the call");
    // SAFETY: live client, freed once.
    unsafe { federation_client_free(client) };
}
