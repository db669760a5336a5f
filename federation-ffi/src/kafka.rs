//! The testkit's Kafka broker through the C ABI (cargo feature `testkit`), so Go and C sync
//! tests run against the same real broker recipe as the Rust and Python ones.
//!
//! A second recipe in Go (download jars, format storage, write `server.properties`, wait for
//! readiness) would drift from the testkit's and leak JVMs when a test fails. These functions
//! drive `federation_testkit::kafka::KafkaBroker`: it runs a single-node KRaft broker on free
//! loopback ports, is stopped and killed by its own pid, and freeing the handle kills the JVM
//! (a watchdog does it too if the test process dies). They block the calling thread, so never
//! call them from a completion callback (reported as an error, not a deadlock).

use federation_testkit::kafka::{KafkaBroker, java_available, skip_without_java};

use crate::error::{
    FEDERATION_ERROR_INTERNAL, FEDERATION_ERROR_INVALID_REQUEST, federation_error_t,
};
use crate::guard::{catch, catch_or};
use crate::input::{Tagged, free_handle, handle, invalid, write_out};
use crate::runtime::runtime;
use crate::sandbox::block_on;
use crate::text::{federation_string_t, give_string};

const TAG: u64 = 0x6665_642d_6b66_6b31; // "fed-kfk1"

/// A running (or stopped) test broker. Free with `federation_kafka_free` (kills the JVM and
/// deletes its data).
pub struct federation_kafka_t {
    tag: u64,
    broker: KafkaBroker,
}

impl Tagged for federation_kafka_t {
    const TAG: u64 = TAG;
    const NAME: &'static str = "federation_kafka_t";
    fn tag(&self) -> u64 {
        self.tag
    }
}

fn failed(message: String) -> Box<federation_error_t> {
    invalid(FEDERATION_ERROR_INTERNAL, message)
}

/// Whether broker tests must skip on this machine: writes NULL to `out_reason` when Java is
/// available, else the message to skip with. Under CI (`CI` set) a missing Java is an error
/// instead (CI must run these tests).
///
/// # Safety
/// `out_reason` is valid for a write. Thread-safe.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn federation_kafka_skip_reason(
    out_reason: *mut *mut federation_string_t,
) -> *mut federation_error_t {
    catch(|| {
        let reason = if std::env::var_os("CI").is_some() {
            java_available()
                .map_err(|reason| failed(format!("CI must run the Kafka tests, but {reason}")))?;
            None
        } else {
            skip_without_java()
        };
        // SAFETY: forwarded from the caller.
        unsafe { give_string(out_reason, reason, "out_reason") }
    })
}

/// Starts a broker (fetching the jars into the cache on first use) and waits until it accepts a
/// topic; writes the handle to `out_broker`. Blocks for seconds (up to ~90 s on a loaded
/// machine). No Java is an error (check `federation_kafka_skip_reason` first).
///
/// # Safety
/// `out_broker` is valid for a write. Not from a callback.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn federation_kafka_start(
    out_broker: *mut *mut federation_kafka_t,
) -> *mut federation_error_t {
    catch(|| {
        if out_broker.is_null() {
            return Err(invalid(
                FEDERATION_ERROR_INVALID_REQUEST,
                "`out_broker` is NULL".to_owned(),
            ));
        }
        let broker = block_on(KafkaBroker::start())?
            .map_err(|e| failed(format!("the Kafka broker did not start: {e}")))?;
        let raw = Box::into_raw(Box::new(federation_kafka_t { tag: TAG, broker }));
        // SAFETY: checked non-NULL.
        unsafe { write_out(out_broker, raw, "out_broker") }
    })
}

/// The broker's `host:port` for `bootstrap_servers` (unchanged across restarts), written to
/// `out_servers`.
///
/// # Safety
/// `broker` is a live handle; `out_servers` is valid for a write. Thread-safe.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn federation_kafka_bootstrap_servers(
    broker: *const federation_kafka_t,
    out_servers: *mut *mut federation_string_t,
) -> *mut federation_error_t {
    catch(|| {
        // SAFETY: forwarded from the caller.
        let broker = unsafe { handle(broker, "broker") }?;
        let servers = broker.broker.bootstrap_servers();
        // SAFETY: forwarded from the caller.
        unsafe { give_string(out_servers, Some(servers), "out_servers") }
    })
}

/// Stops the broker cleanly (SIGTERM, then waits; SIGKILL after 30 s). Data is kept for
/// `federation_kafka_restart`. Blocks.
///
/// # Safety
/// `broker` is a live handle. Not from a callback.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn federation_kafka_stop(
    broker: *const federation_kafka_t,
) -> *mut federation_error_t {
    catch(|| {
        // SAFETY: forwarded from the caller.
        let broker = unsafe { handle(broker, "broker") }?;
        block_on(broker.broker.stop())
    })
}

/// Kills the broker (SIGKILL by pid, like a crash). Data written so far is kept.
///
/// # Safety
/// `broker` is a live handle.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn federation_kafka_kill(
    broker: *const federation_kafka_t,
) -> *mut federation_error_t {
    catch(|| {
        // SAFETY: forwarded from the caller.
        unsafe { handle(broker, "broker") }?.broker.kill();
        Ok(())
    })
}

/// Starts the broker again on the same port with the same data (stopping it first if it runs)
/// and waits until it accepts a topic. Blocks.
///
/// # Safety
/// `broker` is a live handle. Not from a callback.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn federation_kafka_restart(
    broker: *const federation_kafka_t,
) -> *mut federation_error_t {
    catch(|| {
        // SAFETY: forwarded from the caller.
        let broker = unsafe { handle(broker, "broker") }?;
        block_on(broker.broker.restart())?
            .map_err(|e| failed(format!("the Kafka broker did not restart: {e}")))
    })
}

/// Kills the broker's JVM by pid and deletes its data. NULL is a no-op.
///
/// # Safety
/// `broker` is NULL or a live handle; it must not be used afterwards.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn federation_kafka_free(broker: *mut federation_kafka_t) {
    catch_or((), || {
        let _entered = runtime().ok().map(|rt| rt.enter());
        // SAFETY: forwarded from the caller.
        unsafe { free_handle(broker, |b| b.tag = 0) }
    });
}
