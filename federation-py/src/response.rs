//! `Response` and `Attempt`: the answer of a call and how it was served, as Python objects.
//!
//! A caller debugging a slow or wrong answer across two clusters needs more than a status: which
//! cluster and instance answered, every attempt and whether the cache served it. The wrapper
//! keeps the core response (the body is already read, cloning it is cheap) and converts fields
//! only when they are read, so a call that only looks at `.status` pays for nothing else.

use federation_core::client::{Attempt, Response, SplitOutcome};
use pyo3::prelude::*;
use pyo3::sync::PyOnceLock;
use pyo3::types::{PyBytes, PyDict};

use crate::errors;

/// The response of a call: status, headers, the whole body, and how it was served.
#[pyclass(frozen, name = "Response", module = "federation._federation")]
pub(crate) struct PyResponse {
    inner: Response,
}

impl PyResponse {
    pub(crate) fn new(inner: Response) -> Self {
        Self { inner }
    }
}

static JSON_LOADS: PyOnceLock<Py<PyAny>> = PyOnceLock::new();

#[pymethods]
impl PyResponse {
    /// The HTTP status code.
    #[getter]
    fn status(&self) -> u16 {
        self.inner.status().as_u16()
    }

    /// True for a status below 400.
    #[getter]
    fn ok(&self) -> bool {
        self.inner.status().as_u16() < 400
    }

    /// Response headers, names lower-case; repeated headers joined with `", "`.
    #[getter]
    fn headers<'py>(&self, py: Python<'py>) -> PyResult<Bound<'py, PyDict>> {
        let dict = PyDict::new(py);
        for name in self.inner.headers().keys() {
            let values: Vec<String> = self
                .inner
                .headers()
                .get_all(name)
                .iter()
                .map(|v| String::from_utf8_lossy(v.as_bytes()).into_owned())
                .collect();
            dict.set_item(name.as_str(), values.join(", "))?;
        }
        Ok(dict)
    }

    /// The body as bytes.
    #[getter]
    fn content<'py>(&self, py: Python<'py>) -> Bound<'py, PyBytes> {
        PyBytes::new(py, self.inner.body())
    }

    /// The body decoded as UTF-8 (invalid sequences replaced).
    fn text(&self) -> String {
        self.inner.text()
    }

    /// The body parsed as JSON (with Python's `json.loads`).
    fn json<'py>(&self, py: Python<'py>) -> PyResult<Bound<'py, PyAny>> {
        let loads = JSON_LOADS.get_or_try_init(py, || {
            Ok::<_, PyErr>(py.import("json")?.getattr("loads")?.unbind())
        })?;
        loads.bind(py).call1((PyBytes::new(py, self.inner.body()),))
    }

    /// The cluster that produced the response.
    #[getter]
    fn cluster(&self) -> &str {
        self.inner.served().cluster()
    }

    /// The instance id that produced the response.
    #[getter]
    fn instance(&self) -> &str {
        self.inner.served().instance()
    }

    /// Every attempt in order (empty for a cache hit).
    #[getter]
    fn attempts(&self) -> Vec<PyAttempt> {
        self.inner
            .served()
            .attempts()
            .iter()
            .map(PyAttempt::from)
            .collect()
    }

    /// The split arm of a service with a `split` (`None` for other services): the arm the
    /// call's key was assigned, the arm that served it, and why the assigned arm was left.
    #[getter]
    fn split(&self) -> Option<PySplit> {
        self.inner.served().split().map(PySplit::from)
    }

    /// Cache status: `"hit"`, `"miss"`, `"stale"` or `"bypass"`.
    #[getter]
    fn cache(&self) -> &'static str {
        self.inner.served().cache().as_str()
    }

    /// Total time of the call, in seconds.
    #[getter]
    fn elapsed(&self) -> f64 {
        self.inner.served().elapsed().as_secs_f64()
    }

    /// Returns the response for statuses below 400; raises `TransportError` (with `.status`)
    /// otherwise.
    fn raise_for_status(slf: &Bound<'_, Self>) -> PyResult<Py<Self>> {
        match slf.get().inner.clone().error_for_status() {
            Ok(_) => Ok(slf.clone().unbind()),
            Err(e) => Err(errors::to_pyerr(slf.py(), &e)),
        }
    }

    fn __repr__(&self) -> String {
        format!(
            "<Response [{}] cluster={:?} instance={:?} cache={}>",
            self.inner.status().as_u16(),
            self.inner.served().cluster(),
            self.inner.served().instance(),
            self.inner.served().cache().as_str()
        )
    }
}

/// One attempt of a call: where it went, what happened, how long it took.
#[pyclass(frozen, name = "Attempt", module = "federation._federation")]
pub(crate) struct PyAttempt {
    /// The cluster the attempt went to.
    #[pyo3(get)]
    cluster: String,
    /// The instance id the attempt went to.
    #[pyo3(get)]
    instance: String,
    /// `"success"`, `"retryable_status"`, `"connect_failed"`, `"timeout"`,
    /// `"connection_lost"`, `"body_too_large"` or `"cancelled"` (a parallel hedge answered first).
    #[pyo3(get)]
    outcome: &'static str,
    /// Duration of the attempt in seconds.
    #[pyo3(get)]
    duration: f64,
    /// HTTP status, when a response arrived.
    #[pyo3(get)]
    status: Option<u16>,
    /// Seconds from the start of the call to the start of this attempt.
    #[pyo3(get)]
    offset: f64,
    /// Whether it was a hedge: a backup request sent while an earlier attempt was unanswered.
    #[pyo3(get)]
    hedge: bool,
}

impl From<&Attempt> for PyAttempt {
    fn from(a: &Attempt) -> Self {
        Self {
            cluster: a.cluster().to_owned(),
            instance: a.instance().to_owned(),
            outcome: a.outcome().as_str(),
            duration: a.duration().as_secs_f64(),
            status: a.status().map(|s| s.as_u16()),
            offset: a.offset().as_secs_f64(),
            hedge: a.is_hedge(),
        }
    }
}

#[pymethods]
impl PyAttempt {
    fn __repr__(&self) -> String {
        format!(
            "<Attempt {}/{} {} {:.1} ms status={}>",
            self.cluster,
            self.instance,
            self.outcome,
            self.duration * 1e3,
            self.status
                .map_or_else(|| "None".to_owned(), |s| s.to_string())
        )
    }
}

/// How a call of a service with a `split` was assigned (`Response.split`).
#[pyclass(frozen, name = "Split", module = "federation._federation")]
pub(crate) struct PySplit {
    /// The arm the call was assigned (by its sticky key or at random).
    #[pyo3(get)]
    arm: String,
    /// The arm that took the call: the assigned one, another arm after a fallback, or `None`
    /// when no arm could serve and the service's usual routing took it.
    #[pyo3(get)]
    served_arm: Option<String>,
    /// Why the assigned arm was left (`"empty: …"` or `"ejected: …"` with each cluster's
    /// reason); `None` when it served the call.
    #[pyo3(get)]
    fallback: Option<String>,
}

impl From<&SplitOutcome> for PySplit {
    fn from(split: &SplitOutcome) -> Self {
        Self {
            arm: split.arm().to_owned(),
            served_arm: split.served_arm().map(str::to_owned),
            fallback: split.fallback().map(str::to_owned),
        }
    }
}

#[pymethods]
impl PySplit {
    fn __repr__(&self) -> String {
        format!(
            "<Split arm={:?} served_arm={:?} fallback={:?}>",
            self.arm, self.served_arm, self.fallback
        )
    }
}
