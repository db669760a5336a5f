//! The testkit sandbox through the C ABI (cargo feature `testkit`, on by default), so Go and C
//! tests run against the same two-cluster world as the Rust tests, in-process.
//!
//! Tests in another language otherwise need a second process (`federation sandbox`) plus a
//! protocol to kill instances and switch Consul off, and every test would start it differently.
//! These functions start the sandbox on the global runtime and drive it; they block the calling
//! thread until done, so never call them from a completion callback (that is reported as an
//! error, not a deadlock).

use std::ffi::c_char;
use std::time::Duration;

use federation_testkit::consul::Fault;
use federation_testkit::instance::{Behavior, Mode, ServiceInstance};
use federation_testkit::sandbox::{Sandbox, SandboxOptions};

use crate::error::{
    FEDERATION_ERROR_INTERNAL, FEDERATION_ERROR_INVALID_REQUEST, federation_error_t,
};
use crate::guard::{catch, catch_or};
use crate::input::{MAX_NAME, Tagged, c_str, free_handle, handle, invalid, write_out};
use crate::runtime::runtime;
use crate::text::federation_string_t;

/// Sandbox start options. Zeroed fields mean the defaults.
#[repr(C)]
#[derive(Clone, Copy, Debug)]
pub struct federation_sandbox_options_t {
    /// Instances per seed service; 0: 3.
    pub instances_per_service: u32,
    /// Interval of the Consul health checks in milliseconds; 0: 200.
    pub check_interval_ms: u64,
    /// Timeout of each Consul health check in milliseconds; 0: 1000. Raise it under valgrind
    /// or on a loaded machine, where a slow check would mark a healthy instance critical.
    pub check_timeout_ms: u64,
    /// Record every request on every instance (for header assertions).
    pub record_requests: bool,
}

/// An instance behaviour mode: one of the `FEDERATION_SANDBOX_MODE_*` values.
pub type federation_sandbox_mode_t = u32;
/// Answer normally.
pub const FEDERATION_SANDBOX_MODE_NORMAL: federation_sandbox_mode_t = 0;
/// Read the request, never answer.
pub const FEDERATION_SANDBOX_MODE_HANG: federation_sandbox_mode_t = 1;
/// Read the request, then reset the connection.
pub const FEDERATION_SANDBOX_MODE_RESET: federation_sandbox_mode_t = 2;

const TAG: u64 = 0x6665_642d_7362_7831; // "fed-sbx1"

/// A running sandbox. Free with `federation_sandbox_free` (stops every server).
pub struct federation_sandbox_t {
    tag: u64,
    sandbox: Sandbox,
}

impl Tagged for federation_sandbox_t {
    const TAG: u64 = TAG;
    const NAME: &'static str = "federation_sandbox_t";
    fn tag(&self) -> u64 {
        self.tag
    }
}

fn internal(message: String) -> Box<federation_error_t> {
    invalid(FEDERATION_ERROR_INTERNAL, message)
}

pub(crate) fn block_on<T>(f: impl Future<Output = T>) -> Result<T, Box<federation_error_t>> {
    if tokio::runtime::Handle::try_current().is_ok() {
        return Err(invalid(
            FEDERATION_ERROR_INVALID_REQUEST,
            "sandbox functions block; do not call them from a callback or runtime thread"
                .to_owned(),
        ));
    }
    Ok(runtime()?.block_on(f))
}

/// The instances addressed by `(cluster, service, index)`; `index < 0` means all of them.
///
/// # Safety
/// `cluster` and `service` are NUL-terminated strings.
unsafe fn select(
    sandbox: &Sandbox,
    cluster: *const c_char,
    service: *const c_char,
    index: i64,
) -> Result<Vec<&ServiceInstance>, Box<federation_error_t>> {
    let kind = FEDERATION_ERROR_INVALID_REQUEST;
    // SAFETY: forwarded from the caller.
    let cluster = unsafe { c_str(cluster, "cluster", MAX_NAME, kind) }?;
    // SAFETY: forwarded from the caller.
    let service = unsafe { c_str(service, "service", MAX_NAME, kind) }?;
    let all = sandbox.try_instances(cluster, service).ok_or_else(|| {
        invalid(
            kind,
            format!("sandbox has no service `{service}` in cluster `{cluster}`"),
        )
    })?;
    if index < 0 {
        return Ok(all.iter().collect());
    }
    usize::try_from(index)
        .ok()
        .and_then(|i| all.get(i))
        .map(|i| vec![i])
        .ok_or_else(|| {
            invalid(
                kind,
                format!(
                    "`{service}` in `{cluster}` has {} instances; index {index} is out of range",
                    all.len()
                ),
            )
        })
}

/// Starts both clusters (Consul doubles and service instances) and waits until every instance
/// passes its check; writes the handle to `out_sandbox`. Blocks for up to ~20 s.
///
/// # Safety
/// `options` is NULL or valid; `out_sandbox` is valid for a write. Not from a callback.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn federation_sandbox_start(
    options: *const federation_sandbox_options_t,
    out_sandbox: *mut *mut federation_sandbox_t,
) -> *mut federation_error_t {
    catch(|| {
        let mut opts = SandboxOptions::default();
        // SAFETY: NULL or valid per the caller.
        if let Some(o) = unsafe { options.as_ref() } {
            if o.instances_per_service > 0 {
                opts = opts.instances_per_service(o.instances_per_service as usize);
            }
            if o.check_interval_ms > 0 {
                opts = opts.check_interval(Duration::from_millis(o.check_interval_ms));
            }
            if o.check_timeout_ms > 0 {
                opts.check_timeout = Duration::from_millis(o.check_timeout_ms);
            }
            opts = opts.record_requests(o.record_requests);
        }
        if out_sandbox.is_null() {
            return Err(invalid(
                FEDERATION_ERROR_INVALID_REQUEST,
                "`out_sandbox` is NULL".to_owned(),
            ));
        }
        let sandbox = block_on(Sandbox::start(opts))?
            .map_err(|e| internal(format!("cannot start the sandbox: {e}")))?;
        let raw = Box::into_raw(Box::new(federation_sandbox_t { tag: TAG, sandbox }));
        // SAFETY: checked non-NULL.
        unsafe { write_out(out_sandbox, raw, "out_sandbox") }
    })
}

/// The client configuration for this sandbox as YAML (pass it to `federation_client_new` with
/// `FEDERATION_CONFIG_YAML`), written to `out_yaml`.
///
/// # Safety
/// `sandbox` is a live sandbox; `out_yaml` is valid for a write. Thread-safe.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn federation_sandbox_config_yaml(
    sandbox: *const federation_sandbox_t,
    out_yaml: *mut *mut federation_string_t,
) -> *mut federation_error_t {
    catch(|| {
        // SAFETY: forwarded from the caller.
        let sb = unsafe { handle(sandbox, "sandbox") }?;
        let yaml = sb.sandbox.config_yaml();
        // SAFETY: forwarded from the caller.
        unsafe { write_out(out_yaml, federation_string_t::raw(yaml), "out_yaml") }
    })
}

/// Kills instance `index` (or all, when `index < 0`) of Consul service `service` in `cluster`,
/// like a crashed process: connections reset, port closed. Blocks until done.
///
/// # Safety
/// `sandbox` is a live sandbox; `cluster`, `service` are NUL-terminated strings.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn federation_sandbox_kill(
    sandbox: *const federation_sandbox_t,
    cluster: *const c_char,
    service: *const c_char,
    index: i64,
) -> *mut federation_error_t {
    catch(|| {
        // SAFETY: forwarded from the caller.
        let sb = unsafe { handle(sandbox, "sandbox") }?;
        // SAFETY: forwarded from the caller.
        let targets = unsafe { select(&sb.sandbox, cluster, service, index) }?;
        block_on(async {
            for instance in targets {
                instance.kill().await;
            }
        })
    })
}

/// Restarts killed instance(s) on their old ports. Blocks until listening.
///
/// # Safety
/// As `federation_sandbox_kill`.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn federation_sandbox_restart(
    sandbox: *const federation_sandbox_t,
    cluster: *const c_char,
    service: *const c_char,
    index: i64,
) -> *mut federation_error_t {
    catch(|| {
        // SAFETY: forwarded from the caller.
        let sb = unsafe { handle(sandbox, "sandbox") }?;
        // SAFETY: forwarded from the caller.
        let targets = unsafe { select(&sb.sandbox, cluster, service, index) }?;
        block_on(async {
            for instance in targets {
                instance.restart().await?;
            }
            Ok::<(), std::io::Error>(())
        })?
        .map_err(|e| internal(format!("cannot restart: {e}")))
    })
}

/// Sets how instance(s) answer: `status` (0: 200), a fixed `delay_ms` before answering, and a
/// transport `mode` (`FEDERATION_SANDBOX_MODE_*`).
///
/// # Safety
/// As `federation_sandbox_kill`.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn federation_sandbox_set_behavior(
    sandbox: *const federation_sandbox_t,
    cluster: *const c_char,
    service: *const c_char,
    index: i64,
    status: u16,
    delay_ms: u64,
    mode: federation_sandbox_mode_t,
) -> *mut federation_error_t {
    catch(|| {
        // SAFETY: forwarded from the caller.
        let sb = unsafe { handle(sandbox, "sandbox") }?;
        // SAFETY: forwarded from the caller.
        let targets = unsafe { select(&sb.sandbox, cluster, service, index) }?;
        let mut behavior = if delay_ms > 0 {
            Behavior::delayed(Duration::from_millis(delay_ms))
        } else {
            Behavior::ok()
        };
        if status != 0 {
            behavior.status = Some(status);
        }
        behavior.mode = match mode {
            FEDERATION_SANDBOX_MODE_NORMAL => Mode::Normal,
            FEDERATION_SANDBOX_MODE_HANG => Mode::Hang,
            FEDERATION_SANDBOX_MODE_RESET => Mode::ResetAfterRequest,
            other => {
                return Err(invalid(
                    FEDERATION_ERROR_INVALID_REQUEST,
                    format!("unknown mode {other}"),
                ));
            }
        };
        for instance in targets {
            instance.set_behavior(behavior.clone());
        }
        Ok(())
    })
}

/// Writes to `out_count` how many requests instance(s) received (summed when `index < 0`).
///
/// # Safety
/// As `federation_sandbox_kill`; `out_count` is valid for a write.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn federation_sandbox_requests(
    sandbox: *const federation_sandbox_t,
    cluster: *const c_char,
    service: *const c_char,
    index: i64,
    out_count: *mut u64,
) -> *mut federation_error_t {
    catch(|| {
        // SAFETY: forwarded from the caller.
        let sb = unsafe { handle(sandbox, "sandbox") }?;
        // SAFETY: forwarded from the caller.
        let targets = unsafe { select(&sb.sandbox, cluster, service, index) }?;
        let total = targets.iter().map(|i| i.requests()).sum::<u64>();
        // SAFETY: forwarded from the caller.
        unsafe { write_out(out_count, total, "out_count") }
    })
}

/// Takes the Consul double of `cluster` down (`down` true: connections refused) or back up.
///
/// # Safety
/// `sandbox` is a live sandbox; `cluster` is a NUL-terminated string.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn federation_sandbox_consul_set_down(
    sandbox: *const federation_sandbox_t,
    cluster: *const c_char,
    down: bool,
) -> *mut federation_error_t {
    catch(|| {
        // SAFETY: forwarded from the caller.
        let sb = unsafe { handle(sandbox, "sandbox") }?;
        // SAFETY: forwarded from the caller.
        let name = unsafe {
            c_str(
                cluster,
                "cluster",
                MAX_NAME,
                FEDERATION_ERROR_INVALID_REQUEST,
            )
        }?;
        let consul = sb.sandbox.try_consul(name).ok_or_else(|| {
            invalid(
                FEDERATION_ERROR_INVALID_REQUEST,
                format!("sandbox has no cluster `{name}`"),
            )
        })?;
        let rt = runtime()?;
        let _entered = rt.enter();
        if down {
            consul.set_fault(Fault::Down);
        } else {
            consul.clear_fault();
        }
        Ok(())
    })
}

/// Waits until exactly `expected` instances of `service` pass their check in `cluster`'s
/// Consul, or fails after `timeout_ms`.
///
/// # Safety
/// As `federation_sandbox_kill`.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn federation_sandbox_wait_passing(
    sandbox: *const federation_sandbox_t,
    cluster: *const c_char,
    service: *const c_char,
    expected: u32,
    timeout_ms: u64,
) -> *mut federation_error_t {
    catch(|| {
        let kind = FEDERATION_ERROR_INVALID_REQUEST;
        // SAFETY: forwarded from the caller.
        let sb = unsafe { handle(sandbox, "sandbox") }?;
        // SAFETY: forwarded from the caller.
        let cluster = unsafe { c_str(cluster, "cluster", MAX_NAME, kind) }?;
        // SAFETY: forwarded from the caller.
        let service = unsafe { c_str(service, "service", MAX_NAME, kind) }?;
        let timeout = Duration::from_millis(timeout_ms);
        block_on(
            sb.sandbox
                .wait_for_passing(cluster, service, expected as usize, timeout),
        )?
        .map_err(|e| internal(format!("waiting for {expected} passing `{service}`: {e}")))
    })
}

/// Stops every server of the sandbox and frees it. NULL is a no-op. Blocks until stopped.
///
/// # Safety
/// `sandbox` is NULL or a live sandbox; it must not be used afterwards. Not from a callback.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn federation_sandbox_free(sandbox: *mut federation_sandbox_t) {
    catch_or((), || {
        // SAFETY: forwarded from the caller.
        if let Ok(sb) = unsafe { handle(sandbox.cast_const(), "sandbox") } {
            let _ = block_on(sb.sandbox.shutdown());
        }
        let _entered = runtime().ok().map(|rt| rt.enter());
        // SAFETY: forwarded from the caller.
        unsafe { free_handle(sandbox, |s| s.tag = 0) }
    });
}
