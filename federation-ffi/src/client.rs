//! Client handles: create from configuration text or a file, inspect, free.
//!
//! A configuration problem must surface when the client is created, with every problem named,
//! not on the first call. Creation parses and validates the configuration and starts discovery
//! inside the global runtime (Consul watches are tasks on it). The handle wraps a cheap-to-clone
//! `FederatedServiceClient`; each call clones it, so freeing the handle while calls are in
//! flight is safe: those calls finish normally.

use std::ffi::c_char;
use std::time::Duration;

use federation_core::client::FederatedServiceClient;
use federation_core::config::{Config, ConfigFormat};

use crate::error::{FEDERATION_ERROR_CONFIG, FEDERATION_ERROR_INVALID_REQUEST, federation_error_t};
use crate::guard::{catch, catch_or};
use crate::input::{MAX_CONFIG, Tagged, c_str, free_handle, handle, invalid, write_out};
use crate::runtime::runtime;
use crate::text::federation_string_t;

/// A configuration text format: one of the `FEDERATION_CONFIG_*` values.
pub type federation_config_format_t = u32;
/// YAML configuration text.
pub const FEDERATION_CONFIG_YAML: federation_config_format_t = 1;
/// TOML configuration text.
pub const FEDERATION_CONFIG_TOML: federation_config_format_t = 2;
/// JSON configuration text.
pub const FEDERATION_CONFIG_JSON: federation_config_format_t = 3;

const TAG: u64 = 0x6665_642d_636c_6931; // "fed-cli1"

/// A federation client. Thread-safe: one handle may be used from many threads at once.
/// Free with `federation_client_free`.
pub struct federation_client_t {
    tag: u64,
    pub(crate) client: FederatedServiceClient,
}

impl Tagged for federation_client_t {
    const TAG: u64 = TAG;
    const NAME: &'static str = "federation_client_t";
    fn tag(&self) -> u64 {
        self.tag
    }
}

fn build(config: Config) -> Result<*mut federation_client_t, Box<federation_error_t>> {
    let rt = runtime()?;
    // Discovery watches are spawned while building, so build inside the runtime.
    let _entered = rt.enter();
    let client = FederatedServiceClient::from_config(config)
        .map_err(|e| federation_error_t::from_core(&e))?;
    Ok(Box::into_raw(Box::new(federation_client_t {
        tag: TAG,
        client,
    })))
}

pub(crate) fn format_of(
    format: federation_config_format_t,
) -> Result<ConfigFormat, Box<federation_error_t>> {
    match format {
        FEDERATION_CONFIG_YAML => Ok(ConfigFormat::Yaml),
        FEDERATION_CONFIG_TOML => Ok(ConfigFormat::Toml),
        FEDERATION_CONFIG_JSON => Ok(ConfigFormat::Json),
        other => Err(invalid(
            FEDERATION_ERROR_CONFIG,
            format!(
                "unknown configuration format {other}; use FEDERATION_CONFIG_YAML, _TOML or _JSON"
            ),
        )),
    }
}

/// Creates a client from configuration text in `format` (`FEDERATION_CONFIG_*`) and writes it
/// to `out_client`. Returns NULL on success, or an error (kind `FEDERATION_ERROR_CONFIG` for an
/// invalid configuration, listing every problem) and leaves `out_client` untouched.
///
/// # Safety
/// `config` is NULL or a NUL-terminated string (at most 16 MiB), borrowed for this call only;
/// `out_client` is valid for a write. Thread-safe.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn federation_client_new(
    config: *const c_char,
    format: federation_config_format_t,
    out_client: *mut *mut federation_client_t,
) -> *mut federation_error_t {
    catch(|| {
        if out_client.is_null() {
            return Err(invalid(
                FEDERATION_ERROR_CONFIG,
                "`out_client` is NULL".to_owned(),
            ));
        }
        // SAFETY: forwarded from the caller.
        let text = unsafe { c_str(config, "config", MAX_CONFIG, FEDERATION_ERROR_CONFIG) }?;
        let format = format_of(format)?;
        let config = Config::parse(text, format)
            .map_err(|e| federation_error_t::boxed(FEDERATION_ERROR_CONFIG, e.to_string()))?;
        let client = build(config)?;
        // SAFETY: checked non-NULL above; valid for a write per the caller.
        unsafe { write_out(out_client, client, "out_client") }
    })
}

/// Creates a client from a configuration file (format from the extension: `.yaml`/`.yml`,
/// `.toml`, `.json`) and writes it to `out_client`. Returns NULL on success or an error of kind
/// `FEDERATION_ERROR_CONFIG`.
///
/// # Safety
/// `path` is NULL or a NUL-terminated UTF-8 string, borrowed for this call only; `out_client`
/// is valid for a write. Thread-safe.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn federation_client_new_from_file(
    path: *const c_char,
    out_client: *mut *mut federation_client_t,
) -> *mut federation_error_t {
    catch(|| {
        if out_client.is_null() {
            return Err(invalid(
                FEDERATION_ERROR_CONFIG,
                "`out_client` is NULL".to_owned(),
            ));
        }
        // SAFETY: forwarded from the caller.
        let path = unsafe { c_str(path, "path", MAX_CONFIG, FEDERATION_ERROR_CONFIG) }?;
        let config = Config::from_file(path)
            .map_err(|e| federation_error_t::boxed(FEDERATION_ERROR_CONFIG, e.to_string()))?;
        let client = build(config)?;
        // SAFETY: checked non-NULL above.
        unsafe { write_out(out_client, client, "out_client") }
    })
}

/// Replaces the client's configuration with `config` (text in `format`, `FEDERATION_CONFIG_*`)
/// without dropping calls in flight: calls already started finish on the configuration they
/// started with; breakers, load statistics and connections of instances still routed to are
/// kept. Returns NULL on success, or an error of kind `FEDERATION_ERROR_CONFIG` naming every
/// invalid field, and the running configuration stays. The generation (and the last rejected
/// reload) is in `federation_client_health`'s `config` object.
///
/// # Safety
/// `client` is a live client; `config` is NULL or a NUL-terminated string (at most 16 MiB),
/// borrowed for this call only. Thread-safe.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn federation_client_reload(
    client: *const federation_client_t,
    config: *const c_char,
    format: federation_config_format_t,
) -> *mut federation_error_t {
    catch(|| {
        // SAFETY: forwarded from the caller.
        let client = unsafe { handle(client, "client") }?;
        // SAFETY: forwarded from the caller.
        let text = unsafe { c_str(config, "config", MAX_CONFIG, FEDERATION_ERROR_CONFIG) }?;
        let format = format_of(format)?;
        // New discovery watches are spawned while reloading: do it inside the runtime.
        let _entered = runtime()?.enter();
        client
            .client
            .reload_text(text, format)
            .map(|_| ())
            .map_err(|e| federation_error_t::from_core(&e))
    })
}

/// The health of every service in every cluster as JSON (instances, availability, breaker
/// states, score, discovery freshness), written to `out_json` as an owned string.
///
/// # Safety
/// `client` is a live client; `out_json` is valid for a write. Thread-safe.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn federation_client_health(
    client: *const federation_client_t,
    out_json: *mut *mut federation_string_t,
) -> *mut federation_error_t {
    catch(|| {
        // SAFETY: forwarded from the caller.
        let client = unsafe { handle(client, "client") }?;
        let json = client.client.health().to_json_pretty();
        // SAFETY: forwarded from the caller.
        unsafe { write_out(out_json, federation_string_t::raw(json), "out_json") }
    })
}

/// The client's metrics in the Prometheus text exposition format, written to `out_text` as an
/// owned string.
///
/// # Safety
/// `client` is a live client; `out_text` is valid for a write. Thread-safe.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn federation_client_metrics(
    client: *const federation_client_t,
    out_text: *mut *mut federation_string_t,
) -> *mut federation_error_t {
    catch(|| {
        // SAFETY: forwarded from the caller.
        let client = unsafe { handle(client, "client") }?;
        let text = client.client.metrics_text();
        // SAFETY: forwarded from the caller.
        unsafe { write_out(out_text, federation_string_t::raw(text), "out_text") }
    })
}

/// Waits, at most `timeout_ms` milliseconds, until the registry of every cluster has answered
/// successfully once for every service it serves (the core's `wait_ready`, the one readiness
/// wait of every binding). Blocks the calling thread; NULL on success, else an error of kind
/// `FEDERATION_ERROR_DISCOVERY` naming each `service in cluster` still waiting and its last
/// registry error, or `FEDERATION_ERROR_INVALID_REQUEST` when called from a library thread (a
/// callback), which must not block.
///
/// # Safety
/// `client` is a live client. Thread-safe.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn federation_client_wait_ready(
    client: *const federation_client_t,
    timeout_ms: u64,
) -> *mut federation_error_t {
    catch(|| {
        // SAFETY: forwarded from the caller.
        let client = unsafe { handle(client, "client") }?;
        if tokio::runtime::Handle::try_current().is_ok() {
            return Err(federation_error_t::boxed(
                FEDERATION_ERROR_INVALID_REQUEST,
                "federation_client_wait_ready blocks; do not call it from a callback or a \
                 runtime thread"
                    .to_owned(),
            ));
        }
        let wait = client.client.wait_ready(Duration::from_millis(timeout_ms));
        runtime()?
            .block_on(wait)
            .map_err(|e| federation_error_t::from_core(&e))
    })
}

/// Frees a client. Calls in flight complete normally (they hold their own reference); their
/// callbacks still run. NULL is a no-op.
///
/// # Safety
/// `client` is NULL or a live client; it must not be used afterwards, and no other thread may
/// be using this handle in a `federation_client_*` function at the same time.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn federation_client_free(client: *mut federation_client_t) {
    catch_or((), || {
        // Dropping may stop discovery tasks: do it inside the runtime.
        let _entered = runtime().ok().map(|rt| rt.enter());
        // SAFETY: forwarded from the caller.
        unsafe { free_handle(client, |c| c.tag = 0) }
    });
}
