//! Scenario worlds through the C ABI (cargo feature `testkit`): any topology of Consul doubles
//! and programmable instances, driven by JSON commands, for the Go conformance runner.
//!
//! A conformance scenario must mean the same thing in every language, and a second, Go-written
//! copy of "start a cluster, kill an instance, garble Consul" would drift from the Rust one. So
//! the Go runner drives the very `TestkitWorld` the Rust runner uses: the topology is the
//! scenario's `topology` block as JSON, and each World operation of
//! `federation-conformance/src/driver.rs` is one JSON command (`{"op": "kill", "cluster": ...,
//! "service": ..., "index": ...}`) answered with JSON. The functions block the calling thread,
//! so never call them from a completion callback (reported as an error, not a deadlock).

use std::ffi::c_char;
use std::time::Duration;

use federation_conformance::driver::{InstanceRef, World};
use federation_conformance::schema::{BehaviorSpec, ConsulFaultSpec, Topology};
use federation_conformance::testkit_world::TestkitWorld;
use serde::Deserialize;
use serde_json::{Value, json};

use crate::error::{
    FEDERATION_ERROR_INTERNAL, FEDERATION_ERROR_INVALID_REQUEST, federation_error_t,
};
use crate::guard::{catch, catch_or};
use crate::input::{MAX_CONFIG, Tagged, c_str, free_handle, handle, invalid, write_out};
use crate::runtime::runtime;
use crate::sandbox::block_on;
use crate::text::federation_string_t;

const TAG: u64 = 0x6665_642d_776c_6431; // "fed-wld1"

/// A running scenario world. Free with `federation_world_free` (stops every server).
pub struct federation_world_t {
    tag: u64,
    world: TestkitWorld,
}

impl Tagged for federation_world_t {
    const TAG: u64 = TAG;
    const NAME: &'static str = "federation_world_t";
    fn tag(&self) -> u64 {
        self.tag
    }
}

/// One World operation.
#[derive(Deserialize)]
#[serde(tag = "op", rename_all = "snake_case", deny_unknown_fields)]
enum Command {
    Instances,
    ClusterSource {
        cluster: String,
    },
    Kill(Target),
    Revive(Target),
    Behavior {
        #[serde(flatten)]
        target: Target,
        spec: BehaviorSpec,
    },
    HealthStatus {
        #[serde(flatten)]
        target: Target,
        status: u16,
    },
    Consul {
        spec: ConsulFaultSpec,
    },
    WaitPassing {
        cluster: String,
        service: String,
        count: usize,
        timeout_ms: u64,
    },
    Requests(Target),
}

/// An instance by position.
#[derive(Deserialize)]
struct Target {
    cluster: String,
    service: String,
    index: usize,
}

fn bad(message: String) -> Box<federation_error_t> {
    invalid(FEDERATION_ERROR_INVALID_REQUEST, message)
}

fn find(world: &TestkitWorld, t: &Target) -> Result<InstanceRef, Box<federation_error_t>> {
    world
        .instances()
        .into_iter()
        .find(|i| i.cluster == t.cluster && i.service == t.service && i.index == t.index)
        .ok_or_else(|| {
            bad(format!(
                "no instance {}/{}/{}",
                t.cluster, t.service, t.index
            ))
        })
}

fn execute(world: &TestkitWorld, command: Command) -> Result<Value, Box<federation_error_t>> {
    let failed = |e: String| invalid(FEDERATION_ERROR_INTERNAL, e);
    Ok(match command {
        Command::Instances => Value::Array(
            world
                .instances()
                .into_iter()
                .map(|i| json!({"cluster": i.cluster, "service": i.service, "index": i.index, "id": i.id}))
                .collect(),
        ),
        Command::ClusterSource { cluster } => world.cluster_source(&cluster).map_err(bad)?,
        Command::Kill(t) => {
            let i = find(world, &t)?;
            block_on(world.kill(&i))?.map_err(failed)?;
            Value::Null
        }
        Command::Revive(t) => {
            let i = find(world, &t)?;
            block_on(world.revive(&i))?.map_err(failed)?;
            Value::Null
        }
        Command::Behavior { target, spec } => {
            world.set_behavior(&find(world, &target)?, &spec).map_err(bad)?;
            Value::Null
        }
        Command::HealthStatus { target, status } => {
            world
                .set_health_status(&find(world, &target)?, status)
                .map_err(bad)?;
            Value::Null
        }
        Command::Consul { spec } => {
            let _entered = runtime()?.enter();
            world.consul_fault(&spec).map_err(bad)?;
            Value::Null
        }
        Command::WaitPassing {
            cluster,
            service,
            count,
            timeout_ms,
        } => {
            let timeout = Duration::from_millis(timeout_ms);
            block_on(world.wait_passing(&cluster, &service, count, timeout))?.map_err(bad)?;
            Value::Null
        }
        Command::Requests(t) => json!(world.requests(&find(world, &t)?)),
    })
}

/// Starts the topology given as JSON (a scenario's `topology` block: `{"clusters": [...]}`)
/// and writes the handle to `out_world`. Blocks until every server listens.
///
/// # Safety
/// `topology_json` is a NUL-terminated string; `out_world` is valid for a write. Not from a
/// callback.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn federation_world_start(
    topology_json: *const c_char,
    out_world: *mut *mut federation_world_t,
) -> *mut federation_error_t {
    catch(|| {
        // SAFETY: forwarded from the caller.
        let text = unsafe {
            c_str(
                topology_json,
                "topology_json",
                MAX_CONFIG,
                FEDERATION_ERROR_INVALID_REQUEST,
            )
        }?;
        let topology: Topology =
            serde_json::from_str(text).map_err(|e| bad(format!("invalid topology: {e}")))?;
        if out_world.is_null() {
            return Err(bad("`out_world` is NULL".to_owned()));
        }
        let world = block_on(TestkitWorld::start(&topology))?
            .map_err(|e| invalid(FEDERATION_ERROR_INTERNAL, e))?;
        let raw = Box::into_raw(Box::new(federation_world_t { tag: TAG, world }));
        // SAFETY: checked non-NULL.
        unsafe { write_out(out_world, raw, "out_world") }
    })
}

/// Runs one World command given as JSON and writes its JSON answer to `out_result` (`null`
/// for commands without one). Ops: `instances`; `cluster_source` (`cluster`); `kill`, `revive`,
/// `requests` (`cluster`, `service`, `index`); `behavior` (+ `spec`: a scenario behaviour);
/// `health_status` (+ `status`); `consul` (`spec`: a scenario Consul fault); `wait_passing`
/// (`cluster`, `service`, `count`, `timeout_ms`).
///
/// # Safety
/// `world` is a live world; `command_json` is a NUL-terminated string; `out_result` is valid
/// for a write. Not from a callback.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn federation_world_control(
    world: *const federation_world_t,
    command_json: *const c_char,
    out_result: *mut *mut federation_string_t,
) -> *mut federation_error_t {
    catch(|| {
        // SAFETY: forwarded from the caller.
        let w = unsafe { handle(world, "world") }?;
        // SAFETY: forwarded from the caller.
        let text = unsafe {
            c_str(
                command_json,
                "command_json",
                MAX_CONFIG,
                FEDERATION_ERROR_INVALID_REQUEST,
            )
        }?;
        let command: Command =
            serde_json::from_str(text).map_err(|e| bad(format!("invalid command: {e}")))?;
        let result = execute(&w.world, command)?.to_string();
        // SAFETY: forwarded from the caller.
        unsafe { write_out(out_result, federation_string_t::raw(result), "out_result") }
    })
}

/// Stops every server of the world and frees it. NULL is a no-op. Blocks until stopped.
///
/// # Safety
/// `world` is NULL or a live world; it must not be used afterwards. Not from a callback.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn federation_world_free(world: *mut federation_world_t) {
    catch_or((), || {
        // SAFETY: forwarded from the caller.
        if let Ok(w) = unsafe { handle(world.cast_const(), "world") } {
            let _ = block_on(w.world.shutdown());
        }
        let _entered = runtime().ok().map(|rt| rt.enter());
        // SAFETY: forwarded from the caller.
        unsafe { free_handle(world, |w| w.tag = 0) }
    });
}
