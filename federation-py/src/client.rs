//! `FederatedServiceClient` for Python: async methods returning awaitables and `*_sync` twins
//! that release the GIL (the call methods come from one template, [`crate::calls`]).
//!
//! **Failures prevented.** A blocking call that keeps the GIL stalls every other Python thread
//! for the length of a network round trip; a client built outside the runtime silently has no
//! Consul discovery; a client used after `close()` or after `fork()` must fail clearly, not hang.
//!
//! **Algorithm.** Constructors parse the configuration with the core (errors carry field paths;
//! `from_dict` serializes the dict to JSON first) and build the client inside the process
//! runtime. Each call converts its keyword arguments with the interpreter attached
//! ([`crate::request`]), then either hands the core call to the async bridge or blocks on the
//! runtime with the interpreter released. Either way the call is first polled once on the
//! calling thread (`federation_core::bindings::poll_here`): a cache hit is answered there
//! without a thread hop, and a miss has its request on the wire before it moves to the runtime.

use std::path::PathBuf;
use std::sync::{Mutex, PoisonError};
use std::time::Duration;

use federation_core::client::{FederatedServiceClient, RequestBuilder};
use federation_core::config::{Config, ConfigFormat};
use http::Method;
use pyo3::exceptions::PyRuntimeError;
use pyo3::prelude::*;
use pyo3::types::PyType;

use crate::bridge::{self, Deliver};
use crate::call_hook;
use crate::calls::client_methods;
use crate::errors;
use crate::ops;
use crate::request::{self, CallOptions};
use crate::response::PyResponse;
use crate::runtime::{self, Pinned};

/// A client for the logical services of a federation.
///
/// The async methods return an `asyncio.Future` (await it, gather it, `asyncio.wait_for` it, or
/// `asyncio.ensure_future` it; `asyncio.create_task` wants a coroutine). Cancelling it cancels
/// the call.
#[pyclass(
    frozen,
    name = "FederatedServiceClient",
    module = "federation._federation"
)]
pub(crate) struct PyClient {
    inner: Mutex<Option<Pinned<FederatedServiceClient>>>,
}

impl PyClient {
    fn from_config(
        py: Python<'_>,
        config: Result<Config, federation_core::config::ConfigError>,
    ) -> PyResult<Self> {
        Self::build(py, config, None)
    }

    /// A client for `config`, watching the file `watch.0` every `watch.1` when given.
    fn build(
        py: Python<'_>,
        config: Result<Config, federation_core::config::ConfigError>,
        watch: Option<(PathBuf, Duration)>,
    ) -> PyResult<Self> {
        let config = config.map_err(|e| errors::config_to_pyerr(py, e))?;
        let rt = runtime::current()?;
        let client = {
            let _context = rt.tokio().enter();
            let mut builder = FederatedServiceClient::builder().config(config);
            if let Some((path, every)) = watch {
                builder = builder.watch_config_file(path, every);
            }
            builder.build().map_err(|e| errors::to_pyerr(py, &e))?
        };
        Ok(Self {
            inner: Mutex::new(Some(Pinned::new(client, rt))),
        })
    }

    /// The live client and its runtime; `RuntimeError` once closed.
    pub(crate) fn client(&self) -> PyResult<(FederatedServiceClient, runtime::RtHandle)> {
        let guard = self.inner.lock().unwrap_or_else(PoisonError::into_inner);
        let pinned = guard
            .as_ref()
            .ok_or_else(|| PyRuntimeError::new_err("the FederatedServiceClient is closed"))?;
        Ok((pinned.get()?.clone(), pinned.rt().clone()))
    }

    /// An async call: an `asyncio.Future[Response]`.
    fn start<'py>(
        &self,
        py: Python<'py>,
        method: Method,
        service: &str,
        path: &str,
        options: CallOptions<'py>,
    ) -> PyResult<Bound<'py, PyAny>> {
        let (client, rt) = self.client()?;
        let (builder, finish) = call_hook::build(py, &client, method, service, path, options)?;
        let future = bridge::spawn(py, &rt, send(builder))?;
        if let Some(finish) = finish {
            // A done callback also sees a call cancelled by asyncio (its Rust work is dropped).
            finish.when_done(&future)?;
        }
        Ok(future)
    }

    /// A blocking call; the interpreter is released only if the call needs I/O.
    fn run<'py>(
        &self,
        py: Python<'py>,
        method: Method,
        service: &str,
        path: &str,
        options: CallOptions<'_>,
    ) -> PyResult<Bound<'py, PyResponse>> {
        let (client, rt) = self.client()?;
        let (builder, finish) = call_hook::build(py, &client, method, service, path, options)?;
        let result = match rt.run(py, builder.send())? {
            Ok(response) => Bound::new(py, PyResponse::new(response)),
            Err(e) => Err(errors::to_pyerr(py, &e)),
        };
        if let Some(finish) = finish {
            finish.report(py, &result);
        }
        result
    }
}

async fn send(builder: RequestBuilder) -> Deliver {
    let outcome = builder.send().await;
    Box::new(move |py| match outcome {
        Ok(response) => Ok(Py::new(py, PyResponse::new(response))?.into_any()),
        Err(e) => Err(errors::to_pyerr(py, &e)),
    })
}

client_methods! {
    verbs {
        GET => get, get_sync,
            "GET `path` of `service`; returns an `asyncio.Future[Response]`.",
            "Blocking GET: releases the GIL while waiting.";
        POST => post, post_sync,
            "POST to `path` of `service`; returns an `asyncio.Future[Response]`. Not retried once it \
             may have reached a server, unless `idempotent=True`.",
            "Blocking POST: releases the GIL while waiting.";
        PUT => put, put_sync,
            "PUT to `path` of `service`; returns an `asyncio.Future[Response]`.",
            "Blocking PUT: releases the GIL while waiting.";
        DELETE => delete, delete_sync,
            "DELETE `path` of `service`; returns an `asyncio.Future[Response]`.",
            "Blocking DELETE: releases the GIL while waiting.";
    }

    /// A client for the configuration file at `path` (YAML, TOML or JSON by extension). With
    /// `watch` (seconds), the file is re-read that often and an edit is applied as by
    /// `reload` (an invalid edit is rejected and shown in `health()["config"]`).
    #[classmethod]
    #[pyo3(signature = (path, *, watch=None))]
    fn from_file(
        _cls: &Bound<'_, PyType>,
        py: Python<'_>,
        path: PathBuf,
        watch: Option<f64>,
    ) -> PyResult<Self> {
        let watch = watch.map(|s| ops::timeout_arg(py, s)).transpose()?;
        let config = Config::from_file(&path);
        Self::build(py, config, watch.map(|every| (path, every)))
    }

    /// Replaces the configuration with `config` (a dict, as for `from_dict`, or the path of a
    /// file) without dropping calls in flight; breakers and statistics of instances still
    /// routed to are kept. Returns the new generation (`health()["config"]`).
    /// `ConfigError` naming each invalid field, and the running configuration stays, when
    /// `config` is invalid.
    fn reload<'py>(
        &self,
        py: Python<'py>,
        config: &Bound<'py, PyAny>,
    ) -> PyResult<Bound<'py, PyAny>> {
        let (client, rt) = self.client()?;
        let _context = rt.tokio().enter();
        let reloaded = match config.extract::<PathBuf>() {
            Ok(path) => client.reload_file(path),
            Err(_) => {
                let text = dict_json(config)?;
                client.reload_text(&text, ConfigFormat::Json)
            }
        };
        let generation = reloaded.map_err(|e| errors::to_pyerr(py, &e))?;
        let text = serde_json::to_string(&generation)
            .map_err(|e| PyRuntimeError::new_err(format!("generation: {e}")))?;
        py.import("json")?.call_method1("loads", (text,))
    }

    /// A client for a configuration given as a dict (the same schema as the files).
    #[classmethod]
    fn from_dict(
        _cls: &Bound<'_, PyType>,
        py: Python<'_>,
        config: &Bound<'_, PyAny>,
    ) -> PyResult<Self> {
        Self::from_config(py, config_from_dict(config)?)
    }

    /// A client for a YAML configuration text.
    #[classmethod]
    fn from_yaml(_cls: &Bound<'_, PyType>, py: Python<'_>, text: &str) -> PyResult<Self> {
        Self::from_config(py, Config::parse(text, ConfigFormat::Yaml))
    }

    /// A client for a JSON configuration text.
    #[classmethod]
    fn from_json(_cls: &Bound<'_, PyType>, py: Python<'_>, text: &str) -> PyResult<Self> {
        Self::from_config(py, Config::parse(text, ConfigFormat::Json))
    }

    /// A client for a TOML configuration text.
    #[classmethod]
    fn from_toml(_cls: &Bound<'_, PyType>, py: Python<'_>, text: &str) -> PyResult<Self> {
        Self::from_config(py, Config::parse(text, ConfigFormat::Toml))
    }

    /// The configured logical service names, sorted.
    fn services(&self) -> PyResult<Vec<String>> {
        Ok(self.client()?.0.services())
    }

    /// Waits until every service's discovery answered once in every cluster (awaitable);
    /// `DiscoveryError` naming the routes still waiting after `timeout` seconds.
    #[pyo3(signature = (timeout=10.0))]
    fn wait_ready<'py>(&self, py: Python<'py>, timeout: f64) -> PyResult<Bound<'py, PyAny>> {
        let (client, rt) = self.client()?;
        let timeout = ops::timeout_arg(py, timeout)?;
        bridge::spawn(py, &rt, ops::wait_deliver(client, timeout))
    }

    /// Blocking `wait_ready`: releases the GIL while waiting.
    #[pyo3(signature = (timeout=10.0))]
    fn wait_ready_sync(&self, py: Python<'_>, timeout: f64) -> PyResult<()> {
        let (client, rt) = self.client()?;
        let timeout = ops::timeout_arg(py, timeout)?;
        rt.block_on(py, ops::wait_discovered(client, timeout))?
            .map_err(|message| ops::wait_error(py, message))
    }

    /// Per service × cluster: instances, breakers, availability, score, selected cluster and
    /// discovery freshness, as a dict.
    fn health<'py>(&self, py: Python<'py>) -> PyResult<Bound<'py, PyAny>> {
        ops::health(py, &self.client()?.0)
    }

    /// This client's metrics in the Prometheus text format.
    fn metrics_text(&self) -> PyResult<String> {
        Ok(self.client()?.0.metrics_text())
    }

    /// Drops cached responses of `service`: for exactly `path`, for every path starting with
    /// `prefix`, or all of them when neither is given. False when the service has no cache.
    #[pyo3(signature = (service, path=None, *, prefix=None))]
    fn invalidate(
        &self,
        py: Python<'_>,
        service: &str,
        path: Option<&str>,
        prefix: Option<&str>,
    ) -> PyResult<bool> {
        let client = self.client()?.0;
        match (path, prefix) {
            (Some(_), Some(_)) => Err(errors::invalid_request(
                py,
                "pass either `path` or `prefix`, not both",
            )),
            (Some(path), None) => Ok(client.invalidate(service, path)),
            (None, Some(prefix)) => Ok(client.invalidate_prefix(service, prefix)),
            (None, None) => Ok(client.invalidate_prefix(service, "")),
        }
    }

    /// Fetches `paths` of `service` (GET) into its cache ahead of traffic, at most
    /// `cache.warm_concurrency` at once; returns an `asyncio.Future[dict]` with the counts
    /// `fetched` and `failed`. Progress also shows in `health()` (`cache_warm`).
    fn warm<'py>(
        &self,
        py: Python<'py>,
        service: String,
        paths: Vec<String>,
    ) -> PyResult<Bound<'py, PyAny>> {
        let (client, rt) = self.client()?;
        bridge::spawn(py, &rt, ops::warm_deliver(client, service, paths))
    }

    /// Blocking `warm`: releases the GIL while fetching.
    fn warm_sync(&self, py: Python<'_>, service: String, paths: Vec<String>) -> PyResult<Py<PyAny>> {
        let (client, rt) = self.client()?;
        let deliver = rt.block_on(py, ops::warm_deliver(client, service, paths))?;
        deliver(py)
    }

    /// Drops the cached answers of entity `entity` with this `id` in every service whose
    /// `cache.entities` maps the type (in every process sharing `cache.l2`). Returns how many
    /// paths or prefixes were dropped.
    fn invalidate_entity(&self, entity: &str, id: &str) -> PyResult<usize> {
        Ok(self.client()?.0.invalidate_entity(entity, id))
    }

    /// Drops every cached response of every service.
    fn clear_cache(&self) -> PyResult<()> {
        self.client()?.0.clear_cache();
        Ok(())
    }

    /// Stops discovery and releases connections; later calls raise `RuntimeError`. Idempotent.
    fn close(&self, py: Python<'_>) {
        let taken = self
            .inner
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .take();
        py.detach(move || drop(taken));
    }

    /// True once `close()` was called.
    #[getter]
    fn closed(&self) -> bool {
        self.inner
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .is_none()
    }

    fn __enter__(slf: Py<Self>) -> Py<Self> {
        slf
    }

    #[pyo3(signature = (*_exc))]
    fn __exit__(&self, py: Python<'_>, _exc: &Bound<'_, pyo3::types::PyTuple>) -> bool {
        self.close(py);
        false
    }

    fn __aenter__<'py>(slf: &Bound<'py, Self>) -> PyResult<Bound<'py, PyAny>> {
        ready(slf.py(), slf.clone().into_any())
    }

    #[pyo3(signature = (*_exc))]
    fn __aexit__<'py>(
        &self,
        py: Python<'py>,
        _exc: &Bound<'py, pyo3::types::PyTuple>,
    ) -> PyResult<Bound<'py, PyAny>> {
        self.close(py);
        ready(
            py,
            pyo3::types::PyBool::new(py, false).to_owned().into_any(),
        )
    }
}

/// A configuration given as a dict (the same schema as the files), parsed through its JSON form;
/// `Err` only when the dict cannot be serialized at all (a `ConfigError`).
pub(crate) fn config_from_dict(
    config: &Bound<'_, PyAny>,
) -> PyResult<Result<Config, federation_core::config::ConfigError>> {
    Ok(Config::parse(&dict_json(config)?, ConfigFormat::Json))
}

/// A configuration dict as JSON text (`ConfigError` when it cannot be serialized).
fn dict_json(config: &Bound<'_, PyAny>) -> PyResult<String> {
    let py = config.py();
    let text: String = py
        .import("json")?
        .call_method1("dumps", (config,))
        .map_err(|e| {
            errors::config_to_pyerr(
                py,
                federation_core::config::ConfigError::single(
                    "",
                    None,
                    format!("not JSON-serializable: {e}"),
                ),
            )
        })?
        .extract()?;
    Ok(text)
}

/// An already-resolved asyncio future holding `value`.
pub(crate) fn ready<'py>(py: Python<'py>, value: Bound<'py, PyAny>) -> PyResult<Bound<'py, PyAny>> {
    let event_loop = py.import("asyncio")?.call_method0("get_running_loop")?;
    let future = event_loop.call_method0("create_future")?;
    future.call_method1("set_result", (value,))?;
    Ok(future)
}
