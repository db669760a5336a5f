//! The call methods of `FederatedServiceClient`, from one template.
//!
//! Every HTTP verb exists twice in Python — `get` returns an awaitable, `get_sync` blocks with
//! the GIL released — and both take the same nine keyword arguments. Written out by hand that
//! is ten copies of a twelve-parameter signature that drift apart one edit at a time (a keyword
//! added to `get` but not to `put_sync`). [`client_methods!`] generates `call`/`call_sync` and,
//! per verb, the async method and its `_sync` twin from one signature; each body is one line
//! into `PyClient::start` (async) or `PyClient::run` (blocking).
//!
//! PyO3 accepts no macro invocations inside a `#[pymethods]` block, so the macro emits the whole
//! block: the client's other methods are passed through verbatim after the `verbs` list (the
//! Consul agent methods are a second block, `client_agent.rs`, with PyO3's `multiple-pymethods`).

/// Emits `#[pymethods] impl PyClient` with the call methods of every verb in `verbs`, then the
/// methods given after the list.
macro_rules! client_methods {
    (
        verbs {
            $( $method:ident => $name:ident, $sync_name:ident, $doc:literal, $sync_doc:literal; )*
        }
        $($rest:tt)*
    ) => {
        #[pymethods]
        impl PyClient {
            /// Sends `method` to `path` of `service`; returns an `asyncio.Future[Response]`.
            #[pyo3(signature = (method, service, path, *, params=None, headers=None, json=None, content=None, timeout=None, attempt_timeout=None, idempotent=None, cluster=None, tags=None))]
            #[allow(clippy::too_many_arguments, reason = "the Python keyword arguments")]
            fn call<'py>(
                &self,
                py: Python<'py>,
                method: &str,
                service: &str,
                path: &str,
                params: Option<Bound<'py, PyAny>>,
                headers: Option<Bound<'py, PyAny>>,
                json: Option<Bound<'py, PyAny>>,
                content: Option<Bound<'py, PyAny>>,
                timeout: Option<f64>,
                attempt_timeout: Option<f64>,
                idempotent: Option<bool>,
                cluster: Option<String>,
                tags: Option<Bound<'py, PyAny>>,
            ) -> PyResult<Bound<'py, PyAny>> {
                let method = request::method(py, method)?;
                self.start(py, method, service, path, CallOptions { params, headers, json, content, timeout, attempt_timeout, idempotent, cluster, tags })
            }

            /// Blocking `call`: releases the GIL while waiting.
            #[pyo3(signature = (method, service, path, *, params=None, headers=None, json=None, content=None, timeout=None, attempt_timeout=None, idempotent=None, cluster=None, tags=None))]
            #[allow(clippy::too_many_arguments, reason = "the Python keyword arguments")]
            fn call_sync<'py>(
                &self,
                py: Python<'py>,
                method: &str,
                service: &str,
                path: &str,
                params: Option<Bound<'py, PyAny>>,
                headers: Option<Bound<'py, PyAny>>,
                json: Option<Bound<'py, PyAny>>,
                content: Option<Bound<'py, PyAny>>,
                timeout: Option<f64>,
                attempt_timeout: Option<f64>,
                idempotent: Option<bool>,
                cluster: Option<String>,
                tags: Option<Bound<'py, PyAny>>,
            ) -> PyResult<Bound<'py, PyResponse>> {
                let method = request::method(py, method)?;
                self.run(py, method, service, path, CallOptions { params, headers, json, content, timeout, attempt_timeout, idempotent, cluster, tags })
            }

            $(
                #[doc = $doc]
                #[pyo3(signature = (service, path, *, params=None, headers=None, json=None, content=None, timeout=None, attempt_timeout=None, idempotent=None, cluster=None, tags=None))]
                #[allow(clippy::too_many_arguments, reason = "the Python keyword arguments")]
                fn $name<'py>(
                    &self,
                    py: Python<'py>,
                    service: &str,
                    path: &str,
                    params: Option<Bound<'py, PyAny>>,
                    headers: Option<Bound<'py, PyAny>>,
                    json: Option<Bound<'py, PyAny>>,
                    content: Option<Bound<'py, PyAny>>,
                    timeout: Option<f64>,
                    attempt_timeout: Option<f64>,
                    idempotent: Option<bool>,
                    cluster: Option<String>,
                    tags: Option<Bound<'py, PyAny>>,
                ) -> PyResult<Bound<'py, PyAny>> {
                    self.start(py, Method::$method, service, path, CallOptions { params, headers, json, content, timeout, attempt_timeout, idempotent, cluster, tags })
                }

                #[doc = $sync_doc]
                #[pyo3(signature = (service, path, *, params=None, headers=None, json=None, content=None, timeout=None, attempt_timeout=None, idempotent=None, cluster=None, tags=None))]
                #[allow(clippy::too_many_arguments, reason = "the Python keyword arguments")]
                fn $sync_name<'py>(
                    &self,
                    py: Python<'py>,
                    service: &str,
                    path: &str,
                    params: Option<Bound<'py, PyAny>>,
                    headers: Option<Bound<'py, PyAny>>,
                    json: Option<Bound<'py, PyAny>>,
                    content: Option<Bound<'py, PyAny>>,
                    timeout: Option<f64>,
                    attempt_timeout: Option<f64>,
                    idempotent: Option<bool>,
                    cluster: Option<String>,
                    tags: Option<Bound<'py, PyAny>>,
                ) -> PyResult<Bound<'py, PyResponse>> {
                    self.run(py, Method::$method, service, path, CallOptions { params, headers, json, content, timeout, attempt_timeout, idempotent, cluster, tags })
                }
            )*

            $($rest)*
        }
    };
}

pub(crate) use client_methods;
